"""User preferences for training: an instruction in words plus its preference vector.

As in ToolOrchestra, every training task carries a preference sampled for it: a text
instruction the policy reads in its system prompt and a vector P over the dimensions of a
trajectory — one weight per tool of the pool, then ``outcome``, ``cost`` and ``latency``. The
reward dots P with the trajectory's group-normalised measurements (``rewards.py``). Vectors
are plain ``dict[str, float]`` so they fit ``Context.preference_vector`` and a JSON record.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

OUTCOME, COST, LATENCY = "outcome", "cost", "latency"
EXTRA_DIMS = (OUTCOME, COST, LATENCY)
Locality = Literal["local", "remote"]


@dataclass(frozen=True)
class Preference:
    """A user preference: the instruction the policy sees and the vector the reward uses."""

    instruction: str
    vector: dict[str, float]
    kind: str


NO_PREFERENCE = Preference("", {}, "none")
"""What evaluation states: nothing (the reward then weighs outcome, cost and latency)."""


def dimensions(tools: list[str]) -> list[str]:
    """The order of a preference vector's dimensions: the tools, then outcome, cost, latency."""
    return [*tools, *EXTRA_DIMS]


def as_list(vector: Mapping[str, float], tools: list[str]) -> list[float]:
    """``vector`` as a list in :func:`dimensions` order (missing weights are 0)."""
    return [float(vector.get(d, 0.0)) for d in dimensions(tools)]


def _vector(tools: list[str], **weights: float) -> dict[str, float]:
    base = dict.fromkeys(dimensions(tools), 0.0)
    return base | weights


def preference_kinds(tools: Mapping[str, Locality]) -> list[str]:
    """The kinds of preference that make sense for a pool (``avoid_api`` needs a local tool)."""
    kinds = ["accuracy", "save_money", "be_fast"]
    if any(loc == "local" for loc in tools.values()):
        kinds.append("avoid_api")
    if tools:
        kinds += ["prefer_tool", "avoid_tool"]
    return kinds


def make_preference(kind: str, tools: Mapping[str, Locality], tool: str = "") -> Preference:
    """The preference of ``kind`` over the pool ``tools`` (name → locality).

    Every vector weighs the outcome, so a correct run always beats a wrong one of its group;
    ``tool`` names the tool of ``prefer_tool``/``avoid_tool``.

    Raises:
        ValueError: an unknown kind, or a tool that is not in the pool.
    """
    names = list(tools)
    if kind in ("prefer_tool", "avoid_tool") and tool not in tools:
        raise ValueError(f"{kind} needs a tool of the pool ({', '.join(names)}), got {tool!r}")
    if kind == "accuracy":
        return Preference("Getting the answer right matters most.", _vector(names, outcome=1), kind)
    if kind == "save_money":
        text = "Keep the cost as low as possible: use the cheapest tools that can answer."
        return Preference(text, _vector(names, outcome=1, cost=1), kind)
    if kind == "be_fast":
        text = "I need the answer quickly: prefer fast tools and few turns."
        return Preference(text, _vector(names, outcome=1, latency=1), kind)
    if kind == "avoid_api":
        local = {n: 1.0 for n, loc in tools.items() if loc == "local"}
        text = "Avoid API calls: use only tools that run locally whenever possible."
        return Preference(text, _vector(names, outcome=1, **local), kind)
    if kind == "prefer_tool":
        text = f"Please use the `{tool}` tool whenever it can help."
        return Preference(text, _vector(names, outcome=1, **{tool: 1.0}), kind)
    if kind == "avoid_tool":
        others = {n: 1.0 for n in names if n != tool}
        text = f"Do not use the `{tool}` tool; use the other tools instead."
        return Preference(text, _vector(names, outcome=1, **others), kind)
    raise ValueError(f"unknown preference kind {kind!r}: use one of {preference_kinds(tools)}")


def sample_preference(task_id: str, tools: Mapping[str, Locality], *, seed: int = 0) -> Preference:
    """The preference of one task, drawn uniformly over kinds (and tools), seeded per task.

    The same ``(task_id, pool, seed)`` always gives the same preference, so a group's runs
    share it and a rerun of ``podium collect`` reproduces it.
    """
    rng = random.Random(f"{seed}:{task_id}")
    kind = rng.choice(preference_kinds(tools))
    tool = rng.choice(sorted(tools)) if kind in ("prefer_tool", "avoid_tool") else ""
    return make_preference(kind, tools, tool)


def pool_localities(
    profile: str = "local", config: str | None = None, local_only: bool = False
) -> dict[str, Locality]:
    """Name → locality of the available tools of a pool profile."""
    from podium.tools import cost_of, pool_entries

    entries = pool_entries(profile, config=config, local_only=local_only)
    return {e.name: cost_of(e.tool).locality for e in entries if e.tool is not None}
