"""``podium replay``: fork a finished run before a turn and finish it with another choice."""

from __future__ import annotations

import asyncio
import json
from typing import Annotated, Any

import typer
from rich.table import Table

from ..console import console
from .options import JsonOut


def replay(
    thread: Annotated[str, typer.Argument(help="Thread of the run to fork (see 'podium run').")],
    from_turn: Annotated[int, typer.Option(help="Fork before this policy turn (1 = the start).")],
    router: Annotated[
        str, typer.Option(help="Finish with a fixed router: policy, strongest, cheapest, random.")
    ] = "",
    policy_adapter: Annotated[
        str, typer.Option(help="Finish with this LoRA adapter of the policy (a directory).")
    ] = "",
    swap: Annotated[
        str, typer.Option(help="TOOL=OTHER: send the policy's TOOL calls to OTHER.")
    ] = "",
    json_out: JsonOut = False,
) -> None:
    """Counterfactual replay: the run forked before --from-turn, the rest re-run another way.

    The prefix is reused from the thread's checkpoint (not paid again); the branch is stored as
    its own trajectory, linked to the original, and the two are printed side by side.
    """
    from podium.studio.replay import branch_row, fork_thread, verdicts
    from podium.studio.variants import parse_variant

    variant = parse_variant(router, policy_adapter, swap)
    fork = asyncio.run(fork_thread(thread, from_turn, variant))
    rows = [branch_row(fork.original), branch_row(fork.branch)]
    for row, verdict in zip(rows, verdicts(fork), strict=True):
        row["verdict"] = verdict
    if json_out:
        meta = {
            "fork_thread": fork.fork_thread_id,
            "from_turn": from_turn,
            "variant": variant.label,
        }
        print(json.dumps({"original": rows[0], "branch": rows[1], **meta}))
        return
    _print(rows, variant.label, fork.fork_thread_id, fork.prefix_entries)


def _print(rows: list[dict[str, Any]], label: str, fork_thread: str, prefix: int) -> None:
    table = Table("", "original", f"branch ({label})")
    shown = (
        ("answer", lambda r: r["answer"] or "(none)"),
        ("verdict", _verdict),
        ("cost $", lambda r: f"{r['cost_usd']:.6f}"),
        ("latency s", lambda r: f"{r['latency_s']:.2f}"),
        ("turns", lambda r: str(r["turns"])),
        ("tool calls", lambda r: ", ".join(r["tool_calls"]) or "none"),
        ("stopped by", lambda r: str(r["stopped_by"])),
        ("trajectory", lambda r: r["trajectory_id"]),
    )
    for name, cell in shown:
        table.add_row(name, cell(rows[0]), cell(rows[1]))
    console.print(table)
    console.print(
        f"prefix reused: {prefix} ledger entries not paid again · fork thread {fork_thread}"
    )


def _verdict(row: dict[str, Any]) -> str:
    verdict = row.get("verdict")
    if not verdict:
        return "no checker"
    return f"{'correct' if verdict['correct'] else 'wrong'} ({verdict['score']:.2f})"
