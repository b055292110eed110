"""Figures of an evaluation, computed from its per-task rows only (so they always agree)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
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
        "mean_latency_s": sum(r["latency_s"] for r in rows) / n if n else 0.0,
        "calls_per_task": n_calls / n if n else 0.0,
        "tool_calls": dict(sorted(calls.items())),
        "tool_errors": sum(r.get("tool_errors", 0) for r in rows),
        "tool_share": {k: v / n_calls for k, v in sorted(calls.items())},
        # The paper's preference compliance: the share of calls that respect the preference.
        "preference_compliance": (
            sum(r["preferred_calls"] for r in prefer_rows) / prefer_calls if prefer_calls else None
        ),
    }


def summarize(rows: Iterable[Mapping[str, Any]], order: Iterable[str] = ()) -> dict[str, Any]:
    """Per-router summaries, routers in ``order`` first, then any other found in ``rows``."""
    order = list(order)
    by_router: dict[str, list[Mapping[str, Any]]] = {}
    for row in rows:
        by_router.setdefault(row["router"], []).append(row)
    names = [r for r in order if r in by_router] + [r for r in by_router if r not in order]
    return {name: router_summary(by_router[name]) for name in dict.fromkeys(names)}
