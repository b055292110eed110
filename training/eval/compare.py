"""One learning report from one run: the untrained and trained policy beside the fixed routers.

Computed from evaluation rows only (``results.jsonl`` of the run before training and of the run
after), so the figures always agree with the rows. Each router is summarised as
:func:`~.metrics.router_summary` does; the two policies are compared task by task (McNemar's
exact test); each router is placed between the cheapest and the strongest fixed router
(RouteLLM's PGR) and on the cost–accuracy hull (RouterBench's AIQ).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .metrics import aiq, mcnemar, pgr, router_summary, upper_hull

ORDER = ("untrained", "trained", "strongest", "cheapest", "random", "oracle")
FIXED = ("strongest", "cheapest", "random")
"""The routers that choose no tool per task: RouterBench's hull of them is the bar to beat."""


def by_task(rows: Sequence[Mapping[str, Any]]) -> dict[str, bool]:
    """Task id → correct."""
    return {r["task_id"]: bool(r["correct"]) for r in rows}


def paired_test(before: Sequence[Mapping[str, Any]], after: Sequence[Mapping[str, Any]]):
    """McNemar's test on the tasks both runs hold; ``tasks`` says how many were paired."""
    b, a = by_task(before), by_task(after)
    common = sorted(set(b) & set(a))
    return {"tasks": len(common), **mcnemar([b[t] for t in common], [a[t] for t in common])}


def per_suite(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, Any]]:
    """Accuracy of each part of the mixture (the task's own suite, read from its id)."""
    parts: dict[str, list[Mapping[str, Any]]] = {}
    for r in rows:
        parts.setdefault(str(r["task_id"]).split("-")[0], []).append(r)
    return {
        k: {"n": len(v), "correct": sum(bool(r["correct"]) for r in v)} for k, v in parts.items()
    }


def hull_figures(summary: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """AIQ of the fixed routers' hull, and of that hull with each other router added.

    The range is the cheapest to the dearest router of the report, so every AIQ is measured
    over the same costs; ``on_hull`` lists the routers that are vertices of the whole hull.
    """
    points = {k: (v["mean_cost_usd"], v["accuracy"]) for k, v in summary.items()}
    low, high = min(c for c, _ in points.values()), max(c for c, _ in points.values())
    fixed = [points[k] for k in FIXED if k in points]
    out: dict[str, Any] = {"cost_range_usd": [low, high], "aiq": {"fixed": aiq(fixed, low, high)}}
    for name in points:
        if name not in FIXED:
            out["aiq"][f"fixed+{name}"] = aiq([*fixed, points[name]], low, high)
    vertices = set(upper_hull(points.values()))
    out["on_hull"] = [k for k, p in points.items() if p in vertices]
    return out


def learning_report(rows: Mapping[str, Sequence[Mapping[str, Any]]]) -> dict[str, Any]:
    """The report of a learning run from its rows, by router name (see :data:`ORDER`).

    ``untrained`` and ``trained`` give the paired test, ``strongest`` and ``cheapest`` PGR; a
    router without rows is left out (not reported as 0%).
    """
    rows = {k: v for k, v in rows.items() if v}
    names = [n for n in ORDER if n in rows] + [n for n in rows if n not in ORDER]
    summary = {n: router_summary(list(rows[n])) for n in names}
    weak, strong = summary.get("cheapest"), summary.get("strongest")
    for s in summary.values():
        s["pgr"] = (
            pgr(s["accuracy"], weak["accuracy"], strong["accuracy"]) if weak and strong else None
        )
    return {
        "routers": summary,
        "mcnemar": (
            paired_test(rows["untrained"], rows["trained"])
            if "untrained" in rows and "trained" in rows
            else None
        ),
        "per_suite": {n: per_suite(rows[n]) for n in ("untrained", "trained") if n in rows},
        "hull": hull_figures(summary),
    }


def direct_comparison(rows: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The policy through podium against the same model asked directly, on the same tasks.

    From one evaluation with routers ``policy`` and ``direct``: each one's correct/n and
    Wilson interval on the tasks both hold (an evaluation stopped part-way leaves some tasks
    with one router only), and McNemar's test direct → policy (``gained``: tasks
    orchestration solved that the bare model did not). None when no task has both.
    """
    policy = [r for r in rows if r["router"] == "policy"]
    direct = [r for r in rows if r["router"] == "direct"]
    both = set(by_task(policy)) & set(by_task(direct))
    if not both:
        return None
    policy = [r for r in policy if r["task_id"] in both]
    direct = [r for r in direct if r["task_id"] in both]
    return {
        "policy": router_summary(policy),
        "direct": router_summary(direct),
        "mcnemar": paired_test(direct, policy),
    }
