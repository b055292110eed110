"""``podium run``: answer one question, durably, and account for every dollar and second."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table

from ..console import console, usd
from .options import BudgetUsd, ConfigFile, JsonOut, LocalOnly, MaxTurns, Profile, UsageError

if TYPE_CHECKING:
    from podium.graph import Context

PAUSED = 3
"""Exit code of a run paused for a person's approval (resume it with --approve or --reject)."""


def run(
    question: Annotated[str, typer.Argument(help="The question; omit to resume --thread.")] = "",
    preference: Annotated[str, typer.Option(help="Tool preference, e.g. 'save money'.")] = "",
    budget_usd: BudgetUsd = 1.0,
    max_turns: MaxTurns = 50,
    thread: Annotated[
        str,
        typer.Option(help="Thread to resume (no question) or to follow up."),
    ] = "",
    approve_above_usd: Annotated[
        float, typer.Option(help="Ask before a tool call predicted to cost more (negative: never).")
    ] = -1.0,
    approve: Annotated[
        bool | None, typer.Option("--approve/--reject", help="Answer the approval a thread awaits.")
    ] = None,
    local_only: LocalOnly = False,
    json_out: JsonOut = False,
    profile: Profile = "local",
    config: ConfigFile = "",
) -> None:
    """Answer QUESTION with the orchestrator and account for every dollar and second.

    Every run is checkpointed on a thread: a run killed mid-way resumes from its last step with
    'podium run --thread ID', and a finished thread takes follow-up questions.
    """
    from podium.graph import Context
    from podium.graph.context import check_length
    from podium.studio.durable import check_stores, new_thread_id
    from podium.tools import load_pool

    if not question.strip() and not thread:
        raise UsageError("the question is empty: pass the question as the first argument")
    check_length("the question", question, "shorten it")
    ctx = Context(
        profile=profile,
        config=config,
        preference=preference,
        budget_usd=budget_usd,
        max_turns=max_turns,
        local_only=local_only,
        approve_above_usd=approve_above_usd,
    )
    load_pool(profile, config=config or None, local_only=local_only)  # config errors first
    check_stores()  # a database that is down fails here, before the run starts
    thread_id = thread or new_thread_id()
    decision = None if approve is None else ("approve" if approve else "reject")
    state, waiting = _drive(thread_id, question.strip(), ctx, decision, quiet=json_out)
    result = run_result(state) | {"thread_id": thread_id, "pending_approval": waiting}
    if json_out:
        print(json.dumps(result))
    elif waiting is None:
        _print_run(result)
    if waiting is not None:
        if not json_out:
            print(
                f"podium: paused: {waiting['tool']} ({waiting['args']}) is predicted to cost "
                f"{usd(waiting['predicted_cost_usd'])}: resume with "
                f"'podium run --thread {thread_id} --approve' or '--reject'",
                file=sys.stderr,
            )
        raise typer.Exit(PAUSED)
    if (state.get("stopped_by") or "error") == "error":
        raise typer.Exit(1)


def _drive(
    thread_id: str, question: str, ctx: Context, decision: str | None, *, quiet: bool
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Run the thread; a person at the terminal answers each approval pause on the spot."""
    from podium.studio.durable import run_thread

    while True:
        if quiet:
            state, waiting = asyncio.run(
                run_thread(thread_id, question, ctx, decision, lambda _: None)
            )
        else:
            with console.status("starting…") as status:
                state, waiting = asyncio.run(
                    run_thread(
                        thread_id,
                        question,
                        ctx,
                        decision,
                        lambda c: status.update(_describe_step(c)),
                    )
                )
        if waiting is None or quiet or not sys.stdin.isatty():
            return state, waiting
        question, decision = "", _ask(waiting)  # a person at the terminal answers now


def run_result(state: dict[str, Any]) -> dict[str, Any]:
    """The ``--json`` object of a finished run."""
    from podium.graph.state import spent

    ledger = state.get("ledger", [])
    policy_cost = sum(e["cost_usd"] for e in ledger if e["kind"] == "policy")
    return {
        "answer": state.get("answer", ""),
        "cost_usd": spent(ledger),
        "policy_cost_usd": policy_cost,
        "latency_s": state.get("latency_s", 0.0),
        "turns": state.get("turns", 0),
        "stopped_by": state.get("stopped_by") or "error",
        "trajectory_id": state.get("trajectory_id", ""),
        "tool_calls": [
            {"tool": e["name"], "cost_usd": e["cost_usd"], "latency_s": e["seconds"], "ok": e["ok"]}
            for e in ledger
            if e["kind"] == "tool"
        ],
    }


def _describe_step(chunk: dict[str, Any]) -> str:
    node, update = next(iter(chunk.items()))
    if node == "__interrupt__":
        return "waiting for approval"
    update = update or {}
    if node == "policy":
        msgs = update.get("messages") or []
        calls = [c["name"] for m in msgs for c in getattr(m, "tool_calls", [])]
        turn = update.get("turns", "?")
        return f"turn {turn}: calling {', '.join(calls)}" if calls else f"turn {turn}: answering"
    if node == "tools":
        return "admitting the calls against the budget"
    if node == "execute":
        return "reading tool results"
    return "saving the trajectory"


def _ask(waiting: dict[str, Any]) -> str:
    """Ask the person at the terminal about a pending call."""
    console.print(
        f"[bold]{waiting['question']}[/bold]\n  {waiting['tool']}({json.dumps(waiting['args'])})"
    )
    return "approve" if typer.confirm("Run it?", default=False) else "reject"


def _print_run(result: dict[str, Any]) -> None:
    console.print(f"[bold]Answer:[/bold] {result['answer'] or '(none)'}")
    table = Table("tool", "ok", "cost", "seconds", title="Tool calls", title_justify="left")
    for call in result["tool_calls"]:
        table.add_row(
            call["tool"],
            "yes" if call["ok"] else "no",
            usd(call["cost_usd"]),
            f"{call['latency_s']:.2f}",
        )
    if result["tool_calls"]:
        console.print(table)
    console.print(
        f"cost {usd(result['cost_usd'])} (policy {usd(result['policy_cost_usd'])}) · "
        f"{result['latency_s']:.1f}s · {result['turns']} turns · stopped by {result['stopped_by']}"
        f" · trajectory {result['trajectory_id']} · thread {result['thread_id']}"
    )
