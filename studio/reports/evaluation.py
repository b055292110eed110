"""The static evaluation report: cost–accuracy Pareto plot, tool usage, figures, per-task rows.

Everything is read from an evaluation's ``summary.json`` and ``results.jsonl``; the page embeds
its plots (also written as PNGs beside it), so ``report.html`` can be mailed or opened offline.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

from podium.tools.paths import atomic_path
from podium.tools.redact import redact

from ..console import usd
from .page import STYLE, esc

REPORT = "report.html"
PARETO_PNG = "pareto.png"
USAGE_PNG = "tool_usage.png"


def pareto_front(points: dict[str, tuple[float, float]]) -> list[str]:
    """Routers on the cost–accuracy frontier (no other is as cheap and more accurate)."""
    front, best = [], -1.0
    for name, (_cost, acc) in sorted(points.items(), key=lambda kv: (kv[1][0], -kv[1][1])):
        if acc > best:
            front.append(name)
            best = acc
    return front


def _figures(summary: dict[str, Any], out: Path) -> tuple[Path, Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    routers = summary["routers"]
    points = {n: (s["mean_cost_usd"], s["accuracy"]) for n, s in routers.items()}
    fig, ax = plt.subplots(figsize=(6.4, 4.4), dpi=110)
    for name, (cost, acc) in points.items():
        low, high = routers[name]["accuracy_ci95"]
        err = [[max(acc - low, 0.0)], [max(high - acc, 0.0)]]  # rounding may cross zero
        ax.errorbar([cost], [acc], yerr=err, fmt="o", capsize=4)
        ax.annotate(name, (cost, acc), textcoords="offset points", xytext=(6, 6))
    front = pareto_front(points)
    ax.plot([points[n][0] for n in front], [points[n][1] for n in front], "--", color="grey")
    if any(c > 0 for c, _ in points.values()):
        ax.set_xscale("symlog", linthresh=max(min(c for c, _ in points.values() if c > 0), 1e-9))
    ax.set_xlabel("mean cost per task (USD)")
    ax.set_ylabel("accuracy (95% CI)")
    ax.set_ylim(-0.05, 1.05)
    ax.set_title(f"{summary['suite']}: cost vs accuracy ({summary['tasks']} tasks)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    pareto = out / PARETO_PNG
    with atomic_path(pareto) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)

    tools = sorted({t for s in routers.values() for t in s["tool_calls"]})
    fig, ax = plt.subplots(figsize=(6.4, 3.6), dpi=110)
    bottom = [0.0] * len(routers)
    for tool in tools:
        shares = [s["tool_share"].get(tool, 0.0) for s in routers.values()]
        ax.bar(list(routers), shares, bottom=bottom, label=tool)
        bottom = [b + v for b, v in zip(bottom, shares, strict=True)]
    ax.set_ylabel("share of tool calls")
    ax.set_title("tool usage by router")
    if tools:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    usage = out / USAGE_PNG
    with atomic_path(usage) as tmp:
        fig.savefig(tmp, format="png")
    plt.close(fig)
    return pareto, usage


def _img(path: Path, element_id: str, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img id="{element_id}" alt="{esc(alt)}" src="data:image/png;base64,{data}">'


def _router_table(routers: dict[str, Any]) -> str:
    head = ("router", "accuracy", "95% CI", "mean cost", "mean latency s", "calls/task",
            "compliance", "errors", "n")  # fmt: skip
    rows = []
    for name, s in routers.items():
        low, high = s["accuracy_ci95"]
        comp = s["preference_compliance"]
        cells = (name, f"{s['accuracy']:.1%}", f"{low:.1%}–{high:.1%}",
                 usd(s["mean_cost_usd"]), f"{s['mean_latency_s']:.2f}",
                 f"{s['calls_per_task']:.2f}", "n/a" if comp is None else f"{comp:.1%}",
                 s["errors"], s["n"])  # fmt: skip
        rows.append("<tr>" + "".join(f"<td>{esc(c)}</td>" for c in cells) + "</tr>")
    header = "".join(f"<th>{esc(h)}</th>" for h in head)
    return f'<table id="routers"><tr>{header}</tr>{"".join(rows)}</table>'


def _answer_cell(row: dict[str, Any]) -> str:
    """The answer, or for a conversation (tau2) its transcript behind a disclosure."""
    if "dialogue" not in row:
        return esc(str(row.get("answer", ""))[:160])
    lines = []
    for m in row["dialogue"]:
        if m["role"] == "tool":
            lines.append(f'<div class="tool">→ {esc(str(m["content"])[:200])}</div>')
        elif m.get("tool_calls"):
            calls = "; ".join(f"{c['name']}({json.dumps(c['arguments'])})" for c in m["tool_calls"])
            lines.append(f'<div class="tool">{esc(calls[:300])}</div>')
        else:
            who = "customer" if m["role"] == "user" else "agent"
            lines.append(f"<div><b>{who}:</b> {esc(str(m['content'])[:400])}</div>")
    said = sum(m["role"] == "user" for m in row["dialogue"])
    summary = f"{said} customer messages, ended by {row.get('termination')}"
    return f'<details class="dialogue"><summary>{esc(summary)}</summary>{"".join(lines)}</details>'


def _task_table(rows: list[dict[str, Any]]) -> str:
    head = "".join(f"<th>{h}</th>" for h in ("task", "router", "result", "cost $", "s", "tools",
                                              "answer", "trajectory"))  # fmt: skip
    body = []
    for r in sorted(rows, key=lambda r: (r["task_id"], r["router"])):
        status = "error" if r["status"] == "error" else ("correct" if r["correct"] else "wrong")
        cls = {"error": "err", "correct": "ok", "wrong": "bad"}[status]
        cells = (
            f"<td>{esc(r['task_id'])}</td><td>{esc(r['router'])}</td>"
            f'<td class="{cls}" title="{esc(r.get("detail", ""))}">{status}</td>'
            f"<td>{usd(r['cost_usd'])}</td><td>{r['latency_s']:.1f}</td>"
            f"<td>{esc(', '.join(r['tool_calls']))}</td>"
            f"<td>{_answer_cell(r)}</td>"
            f'<td class="muted">{esc(r.get("trajectory_id", ""))}</td>'
        )
        body.append(f"<tr>{cells}</tr>")
    return f'<table id="tasks"><tr>{head}</tr>{"".join(body)}</table>'


def markdown_table(summary: dict[str, Any]) -> str:
    """The router figures as a Markdown table (what the README shows)."""
    lines = ["| router | accuracy | 95% CI | mean cost | mean latency s | calls/task |",
             "|---|---|---|---|---|---|"]  # fmt: skip
    for name, s in summary["routers"].items():
        low, high = s["accuracy_ci95"]
        lines.append(
            f"| {name} | {s['correct']}/{s['n']} ({s['accuracy']:.0%}) | {low:.0%}–{high:.0%} | "
            f"{usd(s['mean_cost_usd'])} | {s['mean_latency_s']:.1f} | {s['calls_per_task']:.2f} |"
        )
    return "\n".join(lines) + "\n"


def _share(calls: dict[str, float]) -> str:
    return ", ".join(f"{k} {v:.0%}" for k, v in sorted(calls.items(), key=lambda kv: -kv[1]))


def learning_markdown(report: dict[str, Any]) -> str:
    """The learning run's report (``training/eval/compare.py``) as Markdown.

    One router table, then the paired test, the hull and each part's accuracy for both policies.
    """
    lines = [
        "| router | accuracy (95% CI) | mean cost $ (policy + tools) | calls/task | turns/task "
        "| malformed | PGR | tool mix |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, s in report["routers"].items():
        low, high = s["accuracy_ci95"]
        gap = "–" if s.get("pgr") is None else f"{s['pgr']:.2f}"
        lines.append(
            f"| {name} | {s['correct']}/{s['n']} ({s['accuracy']:.0%}, {low:.0%}–{high:.0%}) | "
            f"{s['mean_cost_usd']:.2e} ({s['mean_policy_cost_usd']:.1e} + "
            f"{s['mean_tool_cost_usd']:.1e}) | {s['calls_per_task']:.2f} | "
            f"{s['turns_per_task']:.2f} | {s['malformed_calls']} | {gap} | "
            f"{_share(s['tool_share']) or 'none'} |"
        )
    m, hull = report["mcnemar"], report["hull"]
    aiqs = ", ".join(f"{k} {v:.3f}" for k, v in hull["aiq"].items())
    parts = "; ".join(
        f"{name}: " + ", ".join(f"{k} {v['correct']}/{v['n']}" for k, v in sorted(p.items()))
        for name, p in report["per_suite"].items()
    )
    paired = (
        f"McNemar, untrained → trained on {m['tasks']} paired tasks: {m['gained']} gained, "
        f"{m['lost']} lost, exact p = {m['p_value']:.3g}."
        if m
        else "McNemar: needs both policies' rows."
    )
    lines += [
        "",
        paired,
        f"AIQ over ${hull['cost_range_usd'][0]:.2e}–${hull['cost_range_usd'][1]:.2e} per task: "
        f"{aiqs}. On the cost–accuracy hull: {', '.join(hull['on_hull'])}.",
        f"Per part: {parts}.",
    ]
    if (fresh := report.get("unseen")) and fresh["tasks"]:
        u, t, m = fresh["routers"]["untrained"], fresh["routers"]["trained"], fresh["mcnemar"]
        seeds = ("seeds " if len(fresh["seeds"]) > 1 else "seed ") + ", ".join(
            map(str, fresh["seeds"])
        )
        lines.append(
            f"On the {fresh['tasks']} tasks in no held-out set inspected before ({seeds}): "
            f"untrained {u['correct']}/{u['n']}, trained {t['correct']}/{t['n']} (McNemar: "
            f"{m['gained']} gained, {m['lost']} lost, exact p = {m['p_value']:.3g})."
        )
    if tools := report.get("toolscale"):
        u, t, m = tools["routers"]["untrained"], tools["routers"]["trained"], tools["mcnemar"]
        lines.append(
            f"ToolScale ({m['tasks']} held-out tasks, only the environment's tools offered): "
            f"untrained {u['correct']}/{u['n']} ({u['calls_per_task']:.2f} calls/task), "
            f"trained {t['correct']}/{t['n']} ({t['calls_per_task']:.2f} calls/task; McNemar: "
            f"{m['gained']} gained, {m['lost']} lost, exact p = {m['p_value']:.3g})."
        )
    for key, who in (("direct_untrained", "untrained"), ("direct", "trained")):
        if direct := report.get(key):
            p, d, m = direct["policy"], direct["direct"], direct["mcnemar"]
            lines.append(
                f"Human-eval ({m['tasks']} tasks), the {who} policy through podium "
                f"{p['correct']}/{p['n']} against the same model asked directly "
                f"{d['correct']}/{d['n']} (McNemar: {m['gained']} gained, {m['lost']} lost, "
                f"exact p = {m['p_value']:.3g})."
            )
    return "\n".join(lines) + "\n"


def write_report(out: Path) -> Path:
    """Write ``report.html`` (and its PNGs) for the evaluation in ``out``; return its path."""
    summary = json.loads((out / "summary.json").read_text())
    lines = (
        (out / "results.jsonl").read_text().splitlines() if (out / "results.jsonl").exists() else []
    )
    rows = [json.loads(line) for line in lines if line.strip()]
    pareto, usage = _figures(summary, out)
    front = pareto_front(
        {n: (s["mean_cost_usd"], s["accuracy"]) for n, s in summary["routers"].items()}
    )
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>podium eval: {esc(summary["suite"])}</title><style>{STYLE}</style></head><body>
<h1>podium evaluation: {esc(summary["suite"])}</h1>
<p class="muted">{summary["tasks"]} tasks, seed {summary["seed"]}, preferred tools:
{esc(", ".join(summary.get("prefer") or []) or "none")}. Pareto-optimal routers:
<span id="front">{esc(", ".join(front))}</span>.</p>
<h2>Routers</h2>{_router_table(summary["routers"])}
<h2>Cost vs accuracy</h2>{_img(pareto, "pareto", "cost-accuracy Pareto plot")}
<h2>Tool usage</h2>{_img(usage, "tool-usage", "tool usage by router")}
<h2>Tasks</h2>{_task_table(rows)}
</body></html>
"""
    with atomic_path(out / "summary.md") as tmp:
        tmp.write_text(markdown_table(summary), encoding="utf-8")
    target = out / REPORT
    with atomic_path(target) as tmp:
        tmp.write_text(redact(page), encoding="utf-8")
    return target
