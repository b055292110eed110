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


def _math_load(limit: int | None = None, seed: int = 0) -> list[Task]:
    import reasoning_gym

    size = limit or 200
    per = {n: reasoning_gym.create_dataset(n, size=size, seed=seed) for n in MATH_DATASETS}
    tasks = []
    for i in range(size):
        name = MATH_DATASETS[i % len(MATH_DATASETS)]
        entry = json.loads(json.dumps(per[name][i // len(MATH_DATASETS)], default=_plain))
        tasks.append(
            Task(
                id=f"math-{i:04d}",
                suite="math",
                question=entry["question"],
                gold=str(entry["answer"]),
                data={"dataset": name, "entry": entry},
            )
        )
    return tasks


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
