"""The full human-eval benchmark (``benchmarks/humaneval.py``): its task split and its table.

The benchmark itself runs the real policy on 164 tasks (~90 min); its numbers are in
docs/learning.md, not in tests.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def humaneval():
    sys.path.insert(0, str(BENCHMARKS))  # it imports the loop's Setup as a sibling script
    try:
        spec = importlib.util.spec_from_file_location("podium_humaneval_benchmark",
                                                      BENCHMARKS / "humaneval.py")  # fmt: skip
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(BENCHMARKS))
    return module


def _row(router: str, task_id: str, correct: bool) -> dict:
    return {"router": router, "task_id": task_id, "question": task_id, "correct": correct,
            "status": "ok", "cost_usd": 0.0, "policy_cost_usd": 0.0, "tool_cost_usd": 0.0,
            "latency_s": 1.0, "tool_calls": [], "turns": 1, "malformed_calls": 0}  # fmt: skip


def test_the_loops_draws_are_what_it_judged(humaneval):
    from podium.training.eval.suites import load_suite

    setup = humaneval.Setup(looked_at=(3,), direct_tasks=5)
    assert humaneval.looked_at(setup) == {t.id for t in load_suite("code", limit=5, seed=3)}
    assert len(humaneval.looked_at(humaneval.Setup())) < humaneval.humaneval_size() == 164


def test_tasks_no_draw_held_are_judged_apart(humaneval):
    rows = [_row("policy", "a", True), _row("direct", "a", False),  # seen: gained
            _row("policy", "b", False), _row("direct", "b", True),  # unseen: lost
            _row("policy", "c", True), _row("direct", "c", True)]  # fmt: skip
    result = humaneval.compare(rows, seen={"a"})
    assert result["all"]["policy"]["correct"] == 2 and result["all"]["direct"]["correct"] == 2
    assert (result["all"]["mcnemar"]["gained"], result["all"]["mcnemar"]["lost"]) == (1, 1)
    assert result["unseen"]["mcnemar"]["tasks"] == 2
    assert (result["unseen"]["mcnemar"]["gained"], result["unseen"]["mcnemar"]["lost"]) == (0, 1)
    text = humaneval.table(result)
    assert "| all (3) | 2/3" in text and "| in no learning run's draw (2) | 1/2" in text


def test_no_unseen_task_leaves_its_row_out(humaneval):
    rows = [_row("policy", "a", True), _row("direct", "a", False)]
    result = humaneval.compare(rows, seen={"a"})
    assert result["unseen"] is None
    assert "no learning run" not in humaneval.table(result)
