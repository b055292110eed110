"""Several policy endpoints: collect and eval send each run to the next one in turn."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from podium.graph import TrajectoryStore
from podium.graph.resources import tools_override
from podium.graph.testing import calc_tool, fake_openai
from podium.training.eval.run_context import policy_endpoints, spread


@pytest.fixture(autouse=True)
def _calc_pool_and_no_env(monkeypatch):
    for key in [k for k in os.environ if k.startswith("PODIUM_")]:
        monkeypatch.delenv(key)
    with tools_override([calc_tool()]):
        yield


def answer(body: dict) -> dict:
    """Answer 4 at once: one policy request per run."""
    args = json.dumps({"text": "4"})
    call = {"id": "a", "type": "function", "function": {"name": "answer", "arguments": args}}
    return {"role": "assistant", "content": None, "tool_calls": [call]}


def suite(tmp_path: Path, n: int) -> str:
    path = tmp_path / "qs.jsonl"
    rows = [{"id": f"q{i}", "question": f"What is 2+2? (#{i})", "answer": "4"} for i in range(n)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return f"jsonl:{path}"


def test_spread_is_round_robin_and_leaves_a_single_or_no_endpoint_alone():
    base = {"policy_base_url": " http://a/v1, http://b/v1 ,", "max_turns": 3}
    assert policy_endpoints(base["policy_base_url"]) == ["http://a/v1", "http://b/v1"]
    assert [spread(base, n)["policy_base_url"] for n in range(4)] == [
        "http://a/v1",
        "http://b/v1",
    ] * 2
    assert spread(base, 1)["max_turns"] == 3
    assert spread({"policy_base_url": "http://a/v1"}, 5)["policy_base_url"] == "http://a/v1"
    assert spread({}, 1) == {}


def test_collect_spreads_its_runs_evenly_over_two_endpoints(tmp_path):
    from podium.training.grpo.collect import CollectConfig, collect

    with fake_openai(reply=answer) as a, fake_openai(reply=answer) as b:
        cfg = CollectConfig(
            tasks=suite(tmp_path, 3), out=str(tmp_path / "r.sqlite"), group_size=4,
            concurrency=4, policy_base_url=f"{a.base_url},{b.base_url}", max_turns=2,
        )  # fmt: skip
        summary = asyncio.run(collect(cfg))
    assert (a.probes, b.probes) == (1, 1)  # each checked (GET /v1/models) before any run
    assert summary["runs"] == 12 and summary["errors"] == 0 and summary["correct"] == 12
    assert (a.requests, b.requests) == (6, 6)  # one policy turn per run, every other run each
    assert len(TrajectoryStore(tmp_path / "r.sqlite")) == 12


def test_eval_spreads_its_runs_over_two_endpoints(tmp_path):
    from podium.training.eval.runner import EvalConfig, evaluate

    with fake_openai(reply=answer) as a, fake_openai(reply=answer) as b:
        cfg = EvalConfig(
            suite=suite(tmp_path, 5), out=tmp_path / "ev", concurrency=2, progress=False,
            context={"policy_base_url": f"{a.base_url},{b.base_url}", "max_turns": 2,
                     "trajectory_db": str(tmp_path / "t.sqlite")},
        )  # fmt: skip
        summary = evaluate(cfg)
    assert summary["routers"]["policy"]["accuracy"] == 1.0
    assert (a.requests, b.requests) == (3, 2)  # runs 0, 2, 4 and 1, 3
