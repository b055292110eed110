"""How one task is run — its Context and its tools — the same for evaluation and for training.

A policy trained on prompts it is not evaluated with learns the wrong thing: rollouts collected
under another turn limit, budget, preference or tool list than ``podium eval`` uses teach
behaviour the evaluation never asks for. Evaluation (``runner.py``), collection and online
training (``training/grpo``) therefore all build a run here: the evaluation's defaults, then
the caller's settings, then the preference, and last what the task sets itself (a suite's
``prepare`` overrides, its own tools).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import suites

if TYPE_CHECKING:
    from podium.graph.context import Context
# The graph is imported where it is used: the CLI reads the defaults below at start-up.

MAX_TURNS = 8
"""Policy turns of an evaluated (and so of a collected) run before the answer is forced."""
BUDGET_USD = 1.0
"""Dollar cap of an evaluated (and so of a collected) run."""


def policy_endpoints(value: str) -> list[str]:
    """The endpoints ``--policy-base-url A,B,...`` names (replicas of one policy), in order."""
    return [url.strip() for url in value.split(",") if url.strip()]


def spread(base: Mapping[str, Any], run: int) -> dict[str, Any]:
    """``base`` with the policy endpoint of run number ``run``: the list's ``run mod n``-th.

    Round-robin per run: with several endpoints (vLLM servers, one per GPU or node) each gets
    every n-th run, so the load is even without any shared state between runs or workers.
    """
    urls = policy_endpoints(str(base.get("policy_base_url") or ""))
    return {**base, "policy_base_url": urls[run % len(urls)]} if urls else dict(base)


def task_context(
    base: Mapping[str, Any],
    task: suites.Task,
    workdir: Path,
    preference: str = "",
    vector: Mapping[str, float] | None = None,
) -> Context:
    """The Context of one run of ``task``.

    Args:
        base: Settings of the whole evaluation or collection (pool, endpoint, limits).
        task: The task; its suite's ``prepare`` may set up files in ``workdir`` and override
            any setting (a ToolScale task brings its environment and profile).
        workdir: A fresh folder for this run.
        preference: The preference stated to the policy; empty = none (what evaluation uses).
        vector: The preference's weights, for rewards and compliance reports.
    """
    from podium.graph.context import Context

    overrides = suites.prepare(task, workdir)
    values = {"max_turns": MAX_TURNS, "budget_usd": BUDGET_USD, **base}
    values |= {"preference": preference, "preference_vector": dict(vector) if vector else None}
    return Context(**(values | overrides))


@contextmanager
def task_tools(task: suites.Task, dialogue: suites.Dialogue | None = None) -> Iterator[None]:
    """Within the block, runs of ``task`` offer the task's own tools, if it brings any.

    A BFCL entry brings its functions, a conversation its domain's tools: they replace the pool.
    """
    from podium.graph.resources import tools_override

    own = dialogue.tools if dialogue is not None else suites.suite_tools(task)
    if own is None:
        yield
        return
    with tools_override(own):
        yield
