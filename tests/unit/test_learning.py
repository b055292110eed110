"""The learning loop's parts (``benchmarks/learning.py``): its configs, resumable steps, report.

The loop itself runs real models for ~45 minutes (``make learn``); its numbers are in
docs/learning.md, not in tests.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from podium.graph import TrajectoryStore

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "learning.py"


@pytest.fixture(scope="module")
def learning():
    spec = importlib.util.spec_from_file_location("podium_learning_benchmark", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through it
    spec.loader.exec_module(module)
    return module


def _results(path: Path, router_correct: dict[str, list[bool]], questions=("q0", "q1")) -> None:
    path.mkdir(parents=True)
    rows = [
        {"router": router, "task_id": f"wiki-{i}", "question": questions[i], "correct": c,
         "status": "ok",
         "cost_usd": 1e-5, "policy_cost_usd": 1e-5, "tool_cost_usd": 0.0, "latency_s": 1.0,
         "tool_calls": [], "turns": 1, "malformed_calls": 0}
        for router, correct in router_correct.items() for i, c in enumerate(correct)
    ]  # fmt: skip
    (path / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_report_puts_both_policies_and_the_baselines_in_one_table(learning, tmp_path):
    setup = learning.Setup(baselines=("cheapest",), references=("oracle",))
    _results(tmp_path / "before", {"policy": [False, False], "cheapest": [False, True],
                                   "oracle": [True, True]})  # fmt: skip
    _results(tmp_path / "after", {"policy": [True, False]})
    TrajectoryStore(tmp_path / "explore.sqlite")
    steps = [{"name": "baseline", "command": "podium eval mixture", "seconds": 60.0}]
    result = learning.report(tmp_path, setup, steps)
    assert list(result["routers"]) == ["untrained", "trained", "cheapest", "oracle"]
    assert result["mcnemar"]["gained"] == 1 and result["minutes"] == 1.0
    text = (tmp_path / "report.md").read_text()
    assert "| trained | 1/2 (50%" in text and "podium eval mixture   # 1.0 min" in text
    fresh = "On the 2 tasks in no held-out set inspected before (seeds 0, 1, 2, 3, 4, 5, 6, 7): "
    fresh += "untrained 0/2"
    assert fresh in text


def test_the_report_judges_again_on_the_tasks_no_inspected_run_held(learning, tmp_path):
    from podium.training.eval.suites import load_suite

    inspected = load_suite("mixture", limit=40, seed=0)[0].question
    setup = learning.Setup(baselines=(), references=(), direct_tasks=0)
    _results(tmp_path / "before", {"policy": [False, False]}, (inspected, "new"))
    _results(tmp_path / "after", {"policy": [True, True]}, (inspected, "new"))
    TrajectoryStore(tmp_path / "explore.sqlite")
    fresh = learning.report(tmp_path, setup, [])["unseen"]
    assert fresh["tasks"] == 1 and fresh["mcnemar"]["gained"] == 1
    assert fresh["routers"]["trained"]["correct"] == 1


def test_steps_are_skipped_once_done_and_failures_stop_the_loop(learning, tmp_path):
    step = learning.Step(tmp_path)
    step.run("tools", ["tools", "--help"])
    assert json.loads((tmp_path / "steps.json").read_text())[0]["name"] == "tools"
    again = learning.Step(tmp_path)
    again.run("tools", ["no-such-command"])  # done before: not run again
    with pytest.raises(SystemExit, match="step bad failed"):
        again.run("bad", ["no-such-command"])


def test_rft_config_names_the_store_and_the_recipe(learning, tmp_path):
    import tomllib

    rft = tomllib.loads(learning.rft_config(learning.Setup(), tmp_path).read_text())
    assert rft["mode"] == "rft" and rft["store"] == str(tmp_path / "explore.sqlite")
    assert rft["sft"]["num_train_epochs"] == 2 and rft["last_layers"] == 4
