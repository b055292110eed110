"""The ``math`` suite: reasoning-gym's seeded generators, scored by its own ``score_answer``."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from . import Task, Verdict, register_suite
from .answers import answer_candidates

MATH_DATASETS = ("gsm_symbolic", "basic_arithmetic")


def _plain(value: Any) -> Any:
    """JSON for what reasoning-gym metadata holds beyond JSON: tuples, sets, Fractions."""
    return list(value) if isinstance(value, tuple | set | frozenset) else str(value)


def reasoning_gym_tasks(datasets: tuple[str, ...], n: int, seed: int, prefix: str) -> list[Task]:
    """``n`` tasks cycling over reasoning-gym's ``datasets`` under ``seed``, scored as ``math``.

    Also the training side's generator (``training/synth/mixture.py``, other datasets and
    seeds): one reader of reasoning-gym entries, so both are judged alike.
    """
    import reasoning_gym

    per = -(-n // len(datasets))  # an entry depends on its seed and index, not the set's size
    sets = {d: reasoning_gym.create_dataset(d, size=per, seed=seed) for d in datasets}
    tasks = []
    for i in range(n):
        name = datasets[i % len(datasets)]
        entry = json.loads(json.dumps(sets[name][i // len(datasets)], default=_plain))
        tasks.append(
            Task(
                id=f"{prefix}-{i:04d}",
                suite="math",
                question=entry["question"],
                gold=str(entry["answer"]),
                data={"dataset": name, "entry": entry},
            )
        )
    return tasks


def _math_load(limit: int | None = None, seed: int = 0) -> list[Task]:
    return reasoning_gym_tasks(MATH_DATASETS, limit or 200, seed, "math")


def _math_check(task: Task, answer: str, record: Mapping[str, Any] | None) -> Verdict:
    import reasoning_gym

    score_fn = reasoning_gym.get_score_answer_fn(task.data["dataset"])
    best, best_form = 0.0, ""
    for form in answer_candidates(answer):
        score = float(score_fn(form, dict(task.data["entry"])))
        if score > best:
            best, best_form = score, form
    detail = f"matched {best_form!r}" if best >= 1.0 else f"expected {task.gold}"
    return Verdict(correct=best >= 1.0, score=best, detail=detail)


register_suite("math", _math_load, _math_check)
