"""The learning loop's parts (``benchmarks/learning.py``): its configs, resumable steps, report.

The loop itself runs real models for ~3 hours (``make learn``); its numbers are in
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
    fresh = "On the 2 tasks in no held-out set inspected before (seeds 0, 1, 2, 3, 4, 5, 6, 7, 8): "
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


def test_the_report_judges_both_policies_on_held_out_toolscale(learning, tmp_path):
    setup = learning.Setup(baselines=(), references=(), direct_tasks=0)
    _results(tmp_path / "before", {"policy": [False, False]})
    _results(tmp_path / "after", {"policy": [True, False]})
    TrajectoryStore(tmp_path / "explore.sqlite")
    assert learning.report(tmp_path, setup, [])["toolscale"] is None  # not run: not reported
    _results(tmp_path / "before-toolscale", {"policy": [True, False]})
    _results(tmp_path / "after-toolscale", {"policy": [False, False]})
    tools = learning.report(tmp_path, setup, [])["toolscale"]
    assert tools["routers"]["untrained"]["correct"] == 1 and tools["mcnemar"]["lost"] == 1
    assert "untrained 1/2 (0.00 calls/task), trained 0/2" in (tmp_path / "report.md").read_text()


def _earlier_run(learning, path: Path, **changes) -> None:
    path.mkdir()
    TrajectoryStore(path / "explore.sqlite")
    setup = {**learning.dataclasses.asdict(learning.Setup()), **changes}
    steps = [
        {"name": "baseline", "command": "podium eval mixture", "seconds": 60.0},
        {"name": "teacher", "command": "podium collect --explore", "seconds": 120.0},
        {"name": "demonstrate arith", "command": "podium collect --router", "seconds": 30.0},
    ]
    (path / "report.json").write_text(json.dumps({"setup": setup, "steps": steps}))


def test_a_run_may_train_on_an_earlier_runs_collection(learning, tmp_path):
    _earlier_run(learning, tmp_path / "earlier", heldout_seed=3)  # another held-out draw
    out = tmp_path / "out"
    out.mkdir()
    step = learning.Step(out)
    learning.reuse_collection(step, learning.Setup(), out, tmp_path / "earlier")
    assert (out / "explore.sqlite").read_bytes() == (
        tmp_path / "earlier/explore.sqlite"
    ).read_bytes()
    taken = json.loads((out / "steps.json").read_text())
    assert [s["name"] for s in taken] == ["teacher", "demonstrate arith"]  # not its baseline
    assert taken[0]["reused_from"] == str(tmp_path / "earlier")
    learning.Step(out).run("teacher", ["no-such-command"])  # taken: not run again
    _results(out / "before", {"policy": [False, False]})
    _results(out / "after", {"policy": [True, False]})
    assert learning.report(out, learning.Setup(), taken)["minutes"] == 2.5
    assert f"# 2.0 min, reused from {tmp_path / 'earlier'}" in (out / "report.md").read_text()


def _reuse(learning, monkeypatch, out: Path, earlier: Path) -> None:
    """``benchmarks/learning.py --out OUT --reuse-collection EARLIER``, as a user runs it."""
    argv = ["learning.py", "--out", str(out), "--reuse-collection", str(earlier)]
    monkeypatch.setattr(sys, "argv", argv)
    learning.main()


@pytest.mark.parametrize("changes", [{"train_tasks": 7}, {"teacher_tools": ["python"]}])
def test_a_collection_made_otherwise_is_refused_in_one_line(
    learning, tmp_path, capsys, monkeypatch, changes
):
    _earlier_run(learning, tmp_path / "earlier", **changes)
    with pytest.raises(SystemExit) as exit_:
        _reuse(learning, monkeypatch, tmp_path / "out", tmp_path / "earlier")
    assert exit_.value.code == 2 and not (tmp_path / "out/explore.sqlite").exists()
    err = capsys.readouterr().err
    assert "collect afresh" in err and len(err.strip().splitlines()) == 1
    with pytest.raises(SystemExit) as exit_:  # not a loop's output at all
        _reuse(learning, monkeypatch, tmp_path / "out", tmp_path / "x")
    assert exit_.value.code == 2
