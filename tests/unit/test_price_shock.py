"""Price shocks: an evaluation under another price table, and per-task price jitter."""

from __future__ import annotations

import json
import sys

import pytest
from langchain_core.tools import StructuredTool

from podium.graph import Context
from podium.graph.resources import resolve
from podium.graph.testing import calc_tool
from podium.tools import cost_of
from podium.tools.cost import ToolCost, Usage, with_cost
from podium.tools.price_shock import PriceFileError, jittered, load_shock, price_shock
from podium.training.eval.runner import EvalConfig, EvalError, plan_eval
from podium.training.eval.shock import describe, evaluate_shock


def abacus_tool(per_call: float) -> StructuredTool:
    """A second calculator, dearer than calc at normal prices."""

    def abacus(expression: str) -> tuple[str, Usage]:
        """Evaluate an arithmetic expression on an abacus."""
        return str(eval(expression, {"__builtins__": {}})), Usage()

    tool = StructuredTool.from_function(abacus, response_format="content_and_artifact")
    return with_cost(tool, ToolCost(per_call_usd=per_call, locality="local"))


@pytest.fixture
def suite(tmp_path):
    path = tmp_path / "tasks.jsonl"
    rows = [{"id": "t1", "question": "6*7", "answer": "42", "checker": "numeric"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return f"jsonl:{path}"


@pytest.fixture
def shock_file(tmp_path, write_config):
    return write_config(tmp_path / "shock.toml", {"tools": {"calc": {"scale": 2}}})


def test_doubling_one_price_changes_the_oracles_choice_and_the_report_says_so(
    fake_graph, suite, shock_file, tmp_path
):
    from .test_evaluate import ForcedFirstPolicy

    # The oracle is the best of the policy's runs with each tool forced first.
    _, ctx = fake_graph(
        ForcedFirstPolicy(arg="expression"), [calc_tool(0.001), abacus_tool(0.0015)]
    )
    cfg = EvalConfig(suite=suite, out=tmp_path / "ev", routers=["oracle"], context=ctx,
                     progress=False)  # fmt: skip
    report = evaluate_shock(cfg, load_shock(shock_file))
    assert report["oracle_switches"] == [{"task_id": "t1", "from": "calc", "to": "abacus"}]
    base, shocked = report["routers"]["oracle"]["mean_cost_usd"]
    policy_turns = 2 * (100 * 0.02 + 20 * 0.02) / 1e6  # the fake's tokens at the policy's price
    assert base == pytest.approx(0.001 + policy_turns) and shocked == pytest.approx(
        0.0015 + policy_turns
    )
    assert report["routers"]["oracle"]["tool_share"] == {"abacus": [0.0, 1.0], "calc": [1.0, 0.0]}
    lines = describe(report)
    assert "oracle: choice changed on 1 of 1 tasks (t1: calc → abacus)" in lines
    assert json.loads((tmp_path / "ev" / "price_shock.json").read_text()) == report


def test_a_repriced_tool_states_its_new_price_to_the_policy(fake_graph, shock_file):
    _, ctx = fake_graph([], [calc_tool(0.001)])
    with price_shock(load_shock(shock_file)):
        calc = resolve(Context(**ctx)).tools["calc"]
    assert cost_of(calc).per_call_usd == pytest.approx(0.002)
    assert calc.description.endswith("[local, $0.002/call, ~1s]")
    assert "0.001" not in calc.description
    assert cost_of(resolve(Context(**ctx)).tools["calc"]).per_call_usd == 0.001  # outside


def test_jitter_draws_a_price_per_task_within_its_range():
    factors = {jittered(0.5, f"task-{i}").factor("calc") for i in range(50)}
    assert len(factors) == 50 and all(1 / 1.5 <= f <= 1.5 for f in factors)
    assert jittered(0.5, "task-1").factor("calc") == jittered(0.5, "task-1").factor("calc")


def test_a_price_file_naming_a_tool_outside_the_pool_is_refused(
    fake_graph, suite, tmp_path, write_config
):
    _, ctx = fake_graph([], [calc_tool()])
    bad = write_config(tmp_path / "bad.toml", {"tools": {"slide_rule": {"scale": 3}}})
    cfg = EvalConfig(suite=suite, out=tmp_path / "ev", context=ctx, shock=load_shock(bad))
    with pytest.raises(EvalError, match="unknown tool 'slide_rule'"):
        plan_eval(cfg)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("[tools.calc\nscale = 2", "not TOML"),
        ("[tools.calc]\nscale = -1\n", "must be a finite number > 0"),
        ("[tools.calc]\nfactor = 2\n", "exactly one key, scale"),
        ("[taxes]\nvat = 0.2\n", "unknown table \\[taxes\\]"),
        ('[models."qwen3-8b"]\ninput = 1\n', "needs input and output"),
        ("", "no prices in it"),
    ],
)
def test_a_bad_price_file_is_one_line(tmp_path, write_config, text, match):
    path = write_config(tmp_path / "p.toml", text)
    with pytest.raises(PriceFileError, match=match) as err:
        load_shock(path)
    assert "\n" not in str(err.value)


def test_the_cli_exits_2_on_a_price_file_that_does_not_parse(
    tmp_path, monkeypatch, capsys, write_config
):
    from podium.studio import cli

    bad = write_config(tmp_path / "p.toml", "scale = = 2")
    monkeypatch.setattr(sys, "argv", ["podium", "eval", "math", "--prices", str(bad)])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and "not TOML" in err


def test_jittered_tasks_offer_the_policy_different_prices(fake_graph):
    _, ctx = fake_graph([], [calc_tool(0.001)])
    seen = set()
    for task in ("a", "b", "c"):
        with price_shock(jittered(1.0, f"0:{task}:0")):
            seen.add(resolve(Context(**ctx)).tools["calc"].description)
    assert len(seen) == 3


def test_a_negative_price_jitter_is_refused(train_config):
    from podium.training.grpo.config import TrainConfigError

    body = {"model": "m", "output_dir": "o", "store": "s.sqlite"}
    with pytest.raises(TrainConfigError, match="price_jitter must be a number >= 0"):
        train_config(body | {"price_jitter": -1})
    assert train_config(body | {"price_jitter": 0.5}).price_jitter == 0.5
