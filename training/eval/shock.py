"""Price-shock evaluations: one suite under the normal prices and under a price file, compared.

The report says how each router's tool mix and cost move, and for the oracle on which tasks
its choice (the cheapest tool that solves the task) changed.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from podium.tools.paths import atomic_path
from podium.tools.price_shock import PriceShock

from .metrics import summarize
from .runner import RESULTS, EvalConfig, evaluate

REPORT = "price_shock.json"
BRANCHES = ("base", "shocked")


def evaluate_shock(cfg: EvalConfig, shock: PriceShock) -> dict[str, Any]:
    """Evaluate ``cfg`` under normal prices (``OUT/base``) and ``shock`` (``OUT/shocked``).

    Both halves resume like any evaluation; ``OUT/price_shock.json`` compares them.
    """
    for name, prices in zip(BRANCHES, (None, shock), strict=True):
        evaluate(replace(cfg, out=cfg.out / name, shock=prices))
    rows = {name: _rows(cfg.out / name / RESULTS) for name in BRANCHES}
    report = compare(rows["base"], rows["shocked"], cfg.routers) | {"prices": shock.source}
    with atomic_path(cfg.out / REPORT) as tmp:
        tmp.write_text(json.dumps(report, indent=2) + "\n")
    return report


def _rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def compare(
    base: list[dict[str, Any]], shocked: list[dict[str, Any]], routers: list[str]
) -> dict[str, Any]:
    """Per router: accuracy, mean cost and tool share before and after; the oracle's switches."""
    before, after = summarize(base, routers), summarize(shocked, routers)
    moved = {}
    for name in routers:
        if name in before and name in after:
            b, a = before[name], after[name]
            moved[name] = {
                "accuracy": [b["accuracy"], a["accuracy"]],
                "mean_cost_usd": [b["mean_cost_usd"], a["mean_cost_usd"]],
                "tool_share": {
                    t: [b["tool_share"].get(t, 0.0), a["tool_share"].get(t, 0.0)]
                    for t in sorted(set(b["tool_share"]) | set(a["tool_share"]))
                },
            }
    chosen = {r["task_id"]: r.get("oracle_tool") for r in base if r["router"] == "oracle"}
    switches = [
        {"task_id": r["task_id"], "from": chosen[r["task_id"]], "to": r.get("oracle_tool")}
        for r in shocked
        if r["router"] == "oracle"
        and r["task_id"] in chosen
        and chosen[r["task_id"]] != r.get("oracle_tool")
    ]
    oracle_tasks = len(chosen) if "oracle" in routers else 0
    return {"routers": moved, "oracle_switches": switches, "oracle_tasks": oracle_tasks}


def describe(report: dict[str, Any]) -> list[str]:
    """The report in lines a person reads."""
    lines = [f"prices: {report.get('prices', '?')}"]
    for name, m in report["routers"].items():
        (c0, c1), (a0, a1) = m["mean_cost_usd"], m["accuracy"]
        shares = ", ".join(
            f"{t} {s0:.0%}→{s1:.0%}" for t, (s0, s1) in m["tool_share"].items() if s0 != s1
        )
        lines.append(
            f"{name}: mean cost ${c0:.6f} → ${c1:.6f}, accuracy {a0:.0%} → {a1:.0%}"
            f"{'; tool mix ' + shares if shares else '; tool mix unchanged'}"
        )
    if report["oracle_tasks"]:
        switches = report["oracle_switches"]
        detail = ", ".join(f"{s['task_id']}: {s['from']} → {s['to']}" for s in switches)
        lines.append(
            f"oracle: choice changed on {len(switches)} of {report['oracle_tasks']} tasks"
            + (f" ({detail})" if detail else "")
        )
    return lines
