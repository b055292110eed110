"""Cost metadata, prices, config and pool profiles (no network, nothing started)."""

from __future__ import annotations

import math

import pytest

from podium.tools import ConfigError, ToolCost, cost_of, load_config, load_pool, pool_entries
from podium.tools.pricing import Prices


def test_price_is_the_sum_of_its_parts():
    cost = ToolCost(
        per_call_usd=0.01,
        input_usd_per_mtok=1.25,
        output_usd_per_mtok=10,
        per_second_usd=0.5,
        max_seconds=2,
    )
    assert math.isclose(cost.price(1000, 100, 1.0), 0.01 + 0.00125 + 0.001 + 0.5)
    assert math.isclose(cost.price(seconds=10), 0.01 + 1.0)  # billed up to max_seconds


def test_worst_case_bounds_every_price_and_is_infinite_without_caps():
    capped = ToolCost(
        output_usd_per_mtok=10, max_output_tokens=1000, prompt_tokens=50, input_usd_per_mtok=1
    )
    assert math.isclose(capped.worst_case(100), 150 / 1e6 + 1000 * 10 / 1e6)
    assert capped.worst_case(100) >= capped.price(150, 1000)
    assert ToolCost(per_second_usd=1).worst_case() == math.inf
    assert ToolCost(output_usd_per_mtok=1).worst_case() == math.inf
    assert ToolCost(per_call_usd=0.01).worst_case() == 0.01


def test_hosted_prices_come_from_genai_prices_and_local_from_our_table():
    prices = Prices(load_config())
    gpt5 = prices.model("openai:gpt-5")
    assert (gpt5.input, gpt5.output) == (1.25, 10.0) and gpt5.source.startswith("genai-prices")
    mini = prices.model("openai:gpt-5-mini")
    assert (mini.input, mini.output) == (0.25, 2.0)
    assert prices.model("qwen3-32b").input == 0.8
    with pytest.raises(ConfigError, match="no price for model"):
        prices.model("my-unknown-model")
    with pytest.raises(ConfigError, match="genai-prices does not know"):
        prices.model("openai:no-such-model")


def test_user_price_table_overrides(tmp_path, monkeypatch, write_config):
    prices = {"models": {"smollm2-135m-instruct": {"input": 1.0, "output": 2.0}}}
    prices_file = write_config(tmp_path / "prices.toml", prices)
    monkeypatch.setenv("PODIUM_PRICES", str(prices_file))
    assert Prices(load_config()).model("smollm2-135m-instruct").output == 2.0


def test_local_pool_lists_tools_with_cost_metadata(monkeypatch):
    monkeypatch.delenv("TAVILY_API_KEY", raising=False)
    entries = {e.name: e for e in pool_entries("local")}
    assert entries["web_search"].tool is None and "TAVILY_API_KEY" in entries["web_search"].reason
    python = entries["python"].tool
    assert cost_of(python).locality == "local" and cost_of(python).per_second_usd > 0
    assert "[local," in python.description  # the policy reads the price
    for tool in load_pool("local"):
        assert cost_of(tool).capability


def test_hosted_tools_appear_with_keys_and_local_only_removes_them(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    monkeypatch.setenv("TAVILY_API_KEY", "tvly-test")
    names = [t.name for t in load_pool("hosted")]
    assert {"ask_gpt5", "ask_gpt5_mini", "web_search"} <= set(names)
    assert (
        cost_of(next(t for t in load_pool("hosted") if t.name == "ask_gpt5")).locality == "remote"
    )
    local = load_pool("hosted", local_only=True)
    assert all(cost_of(t).locality == "local" for t in local)
    assert "ask_gpt5" not in {t.name for t in local} and "python" in {t.name for t in local}


def test_user_profile_and_expert(tmp_path, write_config):
    expert = {"model": "qwen3-8b", "base_url": "http://127.0.0.1:8000/v1", "price": "qwen3-8b",
              "capability": "a self-hosted Qwen3-8B"}  # fmt: skip
    cfg = write_config(
        tmp_path / "podium.toml",
        {"profiles": {"mine": {"tools": ["python", "ask_mine"]}}, "experts": {"ask_mine": expert}},
    )
    tools = {t.name: t for t in load_pool("mine", config=cfg)}
    assert cost_of(tools["ask_mine"]).locality == "local"  # a loopback endpoint is local
    assert cost_of(tools["ask_mine"]).input_usd_per_mtok == 0.2


@pytest.mark.parametrize(
    ("text", "match"),
    [
        (None, "unknown profile 'nope'"),
        ("[profiles.x\n", "not valid TOML"),
        ('[profiles.x]\ntools = ["teleport"]\n', "unknown tool 'teleport'"),
        ("[python]\ntimeout_s = -1\n", "python.timeout_s"),
        ("[policy]\nmodle = 'x'\n", "policy.modle"),
    ],
)
def test_config_mistakes_are_one_line_errors(tmp_path, write_config, text, match):
    cfg = tmp_path / "c.toml"
    if text is not None:
        write_config(cfg, text)
    profile = "x" if text and "profiles.x" in text else "nope"
    with pytest.raises(ConfigError, match=match) as err:
        pool_entries(profile, config=cfg if text is not None else None)
    assert "\n" not in str(err.value)


def test_missing_config_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "absent.toml")


def test_the_policy_key_variable_comes_from_the_users_config(tmp_path, write_config):
    from podium.graph import Context
    from podium.graph.resources import resolve

    cfg = write_config(tmp_path / "c.toml", {"policy": {"api_key_env": "MY_POLICY_KEY"}})
    res = resolve(Context(config=str(cfg), policy_base_url="http://127.0.0.1:9/v1"))
    assert res.policy_api_key_env == "MY_POLICY_KEY"


def test_python_with_no_code_is_a_failed_call_and_runs_nothing():
    from podium.tools.config import PythonConfig
    from podium.tools.python_tool import NO_CODE, python_tool

    tool = python_tool(PythonConfig(), Prices(load_config()))
    call = {"type": "tool_call", "name": "python", "args": {"code": " \n"}, "id": "c1"}
    msg = tool.invoke(call)
    assert msg.content == NO_CODE and msg.artifact["error"] == "no code given"
    assert msg.artifact["compute_seconds"] == 0.0
