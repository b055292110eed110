"""Past traffic as a suite (``store:<path>``): every stored run's question, asked again.

``podium eval --replay STORE`` evaluates a new policy or router from the first turn of every
run in a trajectory store, so it can be compared with what was actually served. A run that
came from a suite (``podium collect`` or training names its task) is judged by that suite's
checker; any other run is judged by agreement with the answer it was served.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from . import CheckerError, SuiteError, Task, Verdict, check, load_suite

STORE_PREFIX = "store:"


def store_path(name: str) -> Path:
    """The trajectory store a ``store:<path>`` suite reads."""
    return Path(name[len(STORE_PREFIX) :]).expanduser()


def stored_loader(name: str) -> Any:
    """The loader of ``store:<path>``: one task per stored run (forks excluded), oldest first."""
    path = store_path(name)

    def load(limit: int | None = None, seed: int = 0) -> list[Task]:
        from podium.graph.trajectory import FORK_KEY, TrajectoryStore

        if not path.is_file():
            raise SuiteError(f"{path}: no such trajectory store; give store:<path of a .sqlite>")
        tasks = [
            Task(r["id"], name, r["question"], r.get("answer", ""), {"original": original(r)})
            for r in TrajectoryStore(path).records()
            if r.get("question") and FORK_KEY not in r
        ]
        if not tasks:
            raise SuiteError(f"{path} holds no stored runs: run 'podium run' or 'podium collect'")
        if seed:
            random.Random(seed).shuffle(tasks)
        return tasks

    return load


def original(record: Mapping[str, Any]) -> dict[str, Any]:
    """What a replayed evaluation compares with: the served run's outcome and its task."""
    from podium.graph.trajectory import record_outcome

    info = record.get("training") or {}
    return record_outcome(record) | {
        "suite": info.get("suite", ""),
        "task_id": info.get("task_id", ""),
    }


@lru_cache(maxsize=8)
def _tasks(suite: str) -> dict[str, Task]:
    return {t.id: t for t in load_suite(suite)}


def stored_check(task: Task, answer: str, record: Mapping[str, Any] | None) -> Verdict:
    """The original task's checker when the run came from a suite, else agreement."""
    served = task.data["original"]
    if served["suite"] and not served["suite"].startswith(STORE_PREFIX):
        try:
            source = _tasks(served["suite"]).get(served["task_id"])
        except SuiteError as exc:
            raise CheckerError(f"suite {served['suite']!r} of stored run {task.id}: {exc}") from exc
        if source is not None:
            return check(source, answer, record)
    same = answer.strip().casefold() == task.gold.strip().casefold()
    return Verdict(same, float(same), "agrees with the served answer" if same else "differs")


def stored_rows(name: str, tasks: list[Task]) -> list[dict[str, Any]]:
    """Result rows (router ``stored``) of what was served for ``tasks``, judged like the rest."""
    rows = []
    for task in tasks:
        served = task.data["original"]
        verdict = stored_check(task, served["answer"], None)
        rows.append(
            {
                "suite": name, "router": "stored", "task_id": task.id, "question": task.question,
                "gold": task.gold, "answer": served["answer"], "cost_usd": served["cost_usd"],
                "latency_s": served["latency_s"], "tool_calls": served["tool_calls"],
                "tool_errors": 0, "turns": served["turns"], "stopped_by": served["stopped_by"],
                "trajectory_id": task.id, "preferred_calls": None,
                "status": "error" if served["stopped_by"] == "error" else "ok",
                "correct": verdict.correct, "score": verdict.score, "detail": verdict.detail,
            }
        )  # fmt: skip
    return rows
