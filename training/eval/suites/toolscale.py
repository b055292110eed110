"""The ``toolscale`` suite: synthetic tool environments, their verified tasks, and the checker.

A run acts on a fresh copy of the task's environment (``prepare``), and the checker reads that
copy back: the run solves the task when (1) the database hashes equal to the gold actions'
result, (2) every required piece of information is in the answer, (3) every record the gold
actions touched was touched. The environments and tasks come from
:mod:`podium.training.synth.toolscale`.
"""

from __future__ import annotations

import shutil
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

from podium.tools.environment import db_hash, touched
from podium.tools.paths import atomic_path
from podium.training.synth.domains import DOMAINS
from podium.training.synth.tasks import mentioned
from podium.training.synth.toolscale import SUITE, TASKS_PER_DOMAIN, domain_tasks, resolve_env

from . import CheckerError, Task, Verdict, register_suite


def _pristine(task: Task) -> Path:
    """The untouched environment of ``task``, rebuilt in the cache if missing or changed."""
    data = task.data
    env = Path(data["env"])
    if env.is_file() and db_hash(env) == data["env_hash"]:
        return env
    rebuilt = resolve_env(data["domain"], int(data["env_seed"]))
    if db_hash(rebuilt) != data["env_hash"]:
        raise CheckerError(f"{task.id}: its environment changed; regenerate the tasks")
    return rebuilt


def prepare(task: Task, workdir: Path) -> dict[str, Any]:
    """Copy the task's pristine environment into ``workdir``; the run acts on the copy.

    The run gets only the environment's tools (profile ``environment``), as in ToolScale.
    """
    copy = workdir / f"{task.id}.sqlite"
    copy.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(copy) as tmp:
        shutil.copyfile(_pristine(task), tmp)
    return {"environment": str(copy), "profile": "environment"}


def check(task: Task, answer: str, record: Mapping[str, Any] | None) -> Verdict:
    """Judge a run of ``task`` by the environment it left, its answer and what it touched."""
    env = (record or {}).get("context", {}).get("environment") or (record or {}).get("environment")
    if not env or not Path(env).is_file():
        raise CheckerError(f"{task.id}: the run's environment is unknown (no trajectory record)")
    same_db = db_hash(env) == task.data["gold_hash"]
    missing = [r for r in task.data["required"] if not mentioned(r, answer)]
    untouched = sorted(set(task.data["touched"]) - touched(env))
    parts = [same_db, not missing, not untouched]
    problems = [
        *([] if same_db else ["the database differs from the gold result"]),
        *([f"answer lacks {', '.join(missing)}"] if missing else []),
        *([f"never touched {', '.join(untouched)}"] if untouched else []),
    ]
    return Verdict(all(parts), sum(parts) / 3, "; ".join(problems) or "solved")


def load(limit: int | None = None, seed: int = 0) -> list[Task]:
    """Tasks of every domain, interleaved (task 1 of each domain, then task 2, …).

    ``seed`` seeds each domain's environment (its rows) and its tasks.
    """
    per = TASKS_PER_DOMAIN
    if limit is not None:
        per = min(per, -(-limit // len(DOMAINS)))
    lists = [domain_tasks(d, seed)[:per] for d in DOMAINS]
    return [t for row in zip(*lists, strict=False) for t in row]


def train_load(limit: int | None = None, seed: int = 0) -> list[Task]:
    """Training tasks: the same domains in environments seeded apart from every evaluation seed.

    ``toolscale`` under seed N evaluates on environment N; training draws environment
    ``TRAIN_SEED + N``, whose rows, and so whose tasks, no evaluation seed below it shares.
    Their ids say so (``toolscale-train-…``): a task id means one task in a store.
    """
    from podium.training.synth.mixture import TRAIN_SEED

    prefix = f"{SUITE}-"
    return [
        replace(t, id=f"{SUITE}-train-{t.id.removeprefix(prefix)}")
        for t in load(limit, seed + TRAIN_SEED)
    ]


register_suite(SUITE, load, check, prepare)
register_suite(f"{SUITE}-train", train_load, check, prepare)
