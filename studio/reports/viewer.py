"""A self-contained HTML page of one trajectory: how a person debugs a run offline.

The page is a timeline of the run's ledger: each policy turn with its raw completion (the
reasoning) and the calls it made, each tool call with its arguments, observation, tokens,
dollars and seconds, running totals after every step, and where the run stopped and why.
"""

from __future__ import annotations

import json
import webbrowser
from pathlib import Path
from typing import Any

from podium.tools.errors import UserError
from podium.tools.paths import atomic_path, cache_dir
from podium.tools.redact import redact

from ..console import usd
from .page import STYLE, esc

STOPS = {
    "answer": "the policy answered",
    "budget": "the budget guard stopped the run: the next step could exceed the budget",
    "max_turns": "the turn limit forced a final answer",
    "error": "an error ended the run",
}
VIEW_STYLE = """
.step{border-left:4px solid #ccc;padding:.4em 1em;margin:.6em 0}.policy{border-color:#3b82f6}
.tool{border-color:#10b981}.failed{border-color:#b42318;background:#fff4f2}
pre{white-space:pre-wrap;background:#f7f7f7;padding:.5em;margin:.3em 0;max-height:24em;
overflow:auto}.meta{color:#555;font-size:90%}.stop{padding:.6em 1em;font-weight:bold;
background:#eef;border-left:4px solid #336}.stop.budget,.stop.error{background:#fff4f2;
border-color:#b42318}
"""


class ViewError(UserError, ValueError):
    """No such trajectory (or none at all)."""


def _observations(record: dict[str, Any]) -> dict[str, str]:
    obs = {}
    for msg in record.get("messages", []):
        data = msg.get("data", {})
        if msg.get("type") == "tool" and data.get("tool_call_id"):
            obs[data["tool_call_id"]] = str(data.get("content", ""))
    return obs


def _meta(entry: dict[str, Any], totals: dict[str, float]) -> str:
    return (
        f'<div class="meta">{entry["input_tokens"]} in / {entry["output_tokens"]} out tokens · '
        f"{usd(entry['cost_usd'])} · {entry['seconds']:.2f} s — running total "
        f'<span class="total">{usd(totals["cost"])}, {totals["seconds"]:.2f} s, '
        f"{int(totals['tokens'])} tokens</span></div>"
    )


def render_trajectory(record: dict[str, Any]) -> str:
    """The HTML page of one trajectory record (``graph/trajectory.py`` ``build_record``)."""
    turns = list(record.get("policy_turns", []))
    obs = _observations(record)
    totals = {"cost": 0.0, "seconds": 0.0, "tokens": 0.0}
    steps = []
    for entry in record.get("ledger", []):
        totals["cost"] += entry["cost_usd"]
        totals["seconds"] += entry["seconds"]
        totals["tokens"] += entry["input_tokens"] + entry["output_tokens"]
        failed = " failed" if not entry.get("ok", True) else ""
        error = f'<div class="bad">error: {esc(entry["error"])}</div>' if entry.get("error") else ""
        if entry["kind"] == "policy":
            turn = turns.pop(0) if entry.get("ok", True) and turns else {"raw": "", "calls": []}
            calls = "".join(
                f"<li><b>{esc(c['tool'])}</b> <code>{esc(json.dumps(c['args']))}</code></li>"
                for c in turn["calls"]
            )
            steps.append(
                f'<div class="step policy{failed}"><h3>Turn {entry["turn"]}: policy '
                f'({esc(entry["name"])})</h3><pre class="raw">{esc(turn["raw"])}</pre>'
                f"{f'<ul>{calls}</ul>' if calls else ''}{error}{_meta(entry, totals)}</div>"
            )
        else:
            call = next(
                (c for t in record.get("policy_turns", []) for c in t["calls"]
                 if c["id"] == entry["call_id"]), None,
            )  # fmt: skip
            args = esc(json.dumps(call["args"], indent=1)) if call else ""
            steps.append(
                f'<div class="step tool{failed}"><h3>Tool call: {esc(entry["name"])}</h3>'
                f"<div>arguments</div><pre>{args}</pre><div>observation</div>"
                f'<pre class="obs">{esc(obs.get(entry["call_id"], ""))}</pre>{error}'
                f"{_meta(entry, totals)}</div>"
            )
    stop = record.get("stopped_by") or "error"
    tools = esc(", ".join(record.get("tools", [])))
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<title>podium trajectory {esc(record.get("id", ""))}</title><style>{STYLE}{VIEW_STYLE}</style>
</head><body><h1>Trajectory <code>{esc(record.get("id", ""))}</code></h1>
<p><b>Question:</b> {esc(record.get("question", ""))}</p>
<p class="meta">preference: {esc(record.get("preference") or "none")} · budget
${record.get("context", {}).get("budget_usd", "?")} · tools: {tools}
· {record.get("turns", 0)} turns · {record.get("malformed_calls", 0)} malformed calls</p>
<div id="timeline">{"".join(steps)}</div>
<div class="stop {esc(stop)}" id="stop">Stopped: {esc(STOPS.get(stop, stop))}</div>
<p><b>Answer:</b> <span id="answer">{esc(record.get("answer", "") or "(none)")}</span></p>
<p id="totals"><b>Total:</b> {usd(record.get("cost_usd", 0.0))} ·
{record.get("latency_s", 0.0):.2f} s wall clock · {len(record.get("ledger", []))} billed steps</p>
</body></html>
"""
    return redact(page)


def write_view(record: dict[str, Any], target: Path | None = None) -> Path:
    """Write the page of ``record`` atomically (default: podium's cache ``views/``)."""
    target = target or cache_dir("views") / f"{record['id']}.html"
    with atomic_path(target) as tmp:
        tmp.write_text(render_trajectory(record), encoding="utf-8")
    return target


def find_record(trajectory_id: str | None, db: str | None = None) -> dict[str, Any]:
    """The record with this id (or the latest when None) from the trajectory store."""
    from podium.graph.trajectory import TrajectoryStore

    store = TrajectoryStore(db or None)
    if trajectory_id is None:
        latest = store.latest(1)
        if not latest:
            raise ViewError(f"no trajectories in {store.location}: run 'podium run QUESTION' first")
        return latest[0]
    record = store.get(trajectory_id)
    if record is None:
        raise ViewError(
            f"no trajectory {trajectory_id!r} in {store.location}: use --latest or an id "
            "from results.jsonl"
        )
    return record


def open_page(path: Path) -> bool:
    """Open ``path`` in a browser if there is one; never fails."""
    try:
        return bool(webbrowser.open(path.resolve().as_uri()))
    except Exception:
        return False
