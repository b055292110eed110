"""Figures of an evaluation, computed from its per-task rows only (so they always agree)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from itertools import pairwise
from typing import Any

Z95 = 1.959963984540054


def wilson(correct: int, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95% by default); (0, 0) when ``n`` is 0."""
    if n == 0:
        return 0.0, 0.0
    p = correct / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def mcnemar(before: Sequence[bool], after: Sequence[bool]) -> dict[str, Any]:
    """McNemar's exact test of two routers' verdicts on the same tasks (paired, two-sided).

    Only the discordant pairs inform it: ``gained`` tasks only ``after`` solves, ``lost`` only
    ``before`` solves. Under "no difference" each discordant pair is a fair coin, so p is the
    exact two-sided binomial tail (scipy's ``binomtest`` when installed, else ``math.comb``).
    """
    if len(before) != len(after):
        raise ValueError(f"paired verdicts differ in length: {len(before)} vs {len(after)}")
    gained = sum(1 for b, a in zip(before, after, strict=True) if a and not b)
    lost = sum(1 for b, a in zip(before, after, strict=True) if b and not a)
    return {"gained": gained, "lost": lost, "p_value": binomial_two_sided(gained, gained + lost)}


def binomial_two_sided(k: int, n: int) -> float:
    """Exact two-sided p of ``k`` successes in ``n`` fair coin flips; 1.0 when ``n`` is 0."""
    if n == 0:
        return 1.0
    try:
        from scipy.stats import binomtest
    except ImportError:
        tail = sum(math.comb(n, i) for i in range(min(k, n - k) + 1)) / 2**n
        return min(1.0, 2 * tail)
    return float(binomtest(k, n, 0.5).pvalue)


def pgr(accuracy: float, weak: float, strong: float) -> float | None:
    """RouteLLM's performance gap recovered: where ``accuracy`` sits from weak (0) to strong (1).

    None when the two fixed routers are equally accurate (there is no gap to recover).
    """
    gap = strong - weak
    return None if gap == 0 else (accuracy - weak) / gap


def upper_hull(points: Iterable[tuple[float, float]]) -> list[tuple[float, float]]:
    """The non-decreasing concave hull of (cost, quality) points, cheapest first.

    RouterBench: mixing two routers at random reaches every point on the segment between
    them, and paying more for less is never chosen, so this is what the points can reach.
    """
    rising: list[tuple[float, float]] = []
    for cost, quality in sorted(points, key=lambda p: (p[0], -p[1])):
        if not rising or quality > rising[-1][1]:
            rising.append((cost, quality))
    hull: list[tuple[float, float]] = []
    for p in rising:
        while len(hull) >= 2 and _cross(hull[-2], hull[-1], p) >= 0:
            hull.pop()
        hull.append(p)
    return hull


def _cross(o: tuple[float, float], a: tuple[float, float], b: tuple[float, float]) -> float:
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])


def aiq(points: Iterable[tuple[float, float]], low: float, high: float) -> float:
    """RouterBench's average improvement in quality: the hull's mean height over [low, high].

    Below the cheapest point nothing is reachable (quality 0); beyond the dearest hull point
    the quality stays at its value. ``low == high`` gives the hull's height there.
    """
    hull = upper_hull(points)
    if not hull:
        return 0.0
    if high <= low:
        return _height(hull, low)
    xs = sorted({low, high, *(c for c, _ in hull if low < c < high)})
    area = sum(
        (_height(hull, a) + _height(hull, b)) / 2 * (b - a)
        for a, b in pairwise(xs)
        if a >= hull[0][0]  # nothing is reachable left of the cheapest point
    )
    return area / (high - low)


def _height(hull: list[tuple[float, float]], cost: float) -> float:
    if cost < hull[0][0]:
        return 0.0
    for (c0, q0), (c1, q1) in pairwise(hull):
        if c0 <= cost <= c1:
            return q0 + (q1 - q0) * (cost - c0) / (c1 - c0) if c1 > c0 else max(q0, q1)
    return hull[-1][1]


def router_summary(rows: list[Mapping[str, Any]]) -> dict[str, Any]:
    """Accuracy (with its 95% Wilson interval), cost, latency, tool use and compliance."""
    n = len(rows)
    correct = sum(bool(r["correct"]) for r in rows)
    calls = Counter(c for r in rows for c in r["tool_calls"])
    n_calls = sum(calls.values())
    prefer_rows = [r for r in rows if r.get("preferred_calls") is not None]
    prefer_calls = sum(len(r["tool_calls"]) for r in prefer_rows)
    low, high = wilson(correct, n)
    return {
        "n": n,
        "correct": correct,
        "errors": sum(r["status"] == "error" for r in rows),
        "accuracy": correct / n if n else 0.0,
        "accuracy_ci95": [low, high],
        "total_cost_usd": sum(r["cost_usd"] for r in rows),
        "mean_cost_usd": sum(r["cost_usd"] for r in rows) / n if n else 0.0,
        "mean_policy_cost_usd": _mean(rows, "policy_cost_usd"),
        "mean_tool_cost_usd": _mean(rows, "tool_cost_usd"),
        "mean_latency_s": sum(r["latency_s"] for r in rows) / n if n else 0.0,
        "turns_per_task": _mean(rows, "turns"),
        "malformed_calls": sum(r.get("malformed_calls") or 0 for r in rows),
        "calls_per_task": n_calls / n if n else 0.0,
        "tool_calls": dict(sorted(calls.items())),
        "tool_errors": sum(r.get("tool_errors", 0) for r in rows),
        "tool_share": {k: v / n_calls for k, v in sorted(calls.items())},
        # The paper's preference compliance: the share of calls that respect the preference.
        "preference_compliance": (
            sum(r["preferred_calls"] for r in prefer_rows) / prefer_calls if prefer_calls else None
        ),
    }


def _mean(rows: list[Mapping[str, Any]], key: str) -> float:
    return sum(r.get(key) or 0 for r in rows) / len(rows) if rows else 0.0


def summarize(rows: Iterable[Mapping[str, Any]], order: Iterable[str] = ()) -> dict[str, Any]:
    """Per-router summaries, routers in ``order`` first, then any other found in ``rows``."""
    order = list(order)
    by_router: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_router.setdefault(row["router"], []).append(row)
    names = [r for r in order if r in by_router] + [r for r in by_router if r not in order]
    return {name: router_summary(by_router[name]) for name in dict.fromkeys(names)}
