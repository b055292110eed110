"""``podium run``: answer one question, durably, and account for every dollar and second."""

from __future__ import annotations

import asyncio
import json
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from podium.tools.errors import UserError

from ..console import console, model_text, plain, usd
from .options import (
    BudgetUsd,
    ConfigFile,
    JsonOut,
    LocalOnly,
    MaxTurns,
    Profile,
    UsageError,
    given_flags,
)

if TYPE_CHECKING:
    from podium.graph import Context

PAUSED = 3
"""Exit code of a run paused for a person's approval (resume it with --approve or --reject)."""


def run(
    click_ctx: typer.Context,
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
    estimate: Annotated[
        bool, typer.Option(help="Forecast cost, latency and tools from past runs; spend nothing.")
    ] = False,
    profile: Profile = "local",
    config: ConfigFile = "",
) -> None:
    """Answer QUESTION with the orchestrator and account for every dollar and second.

    Every run is checkpointed on a thread: a run killed mid-way resumes from its last step with
    'podium run --thread ID', and a finished thread takes follow-up questions.
    """
    from podium.graph import Context
    from podium.graph.context import check_text
    from podium.studio.durable import check_stores, new_thread_id
    from podium.tools import load_pool

    if not question.strip() and not thread:
        raise UsageError("the question is empty: pass the question as the first argument")
    check_text("the question", question, "the question")
    ctx = Context(
        explicit=given_flags(click_ctx),
        profile=profile,
        config=config,
        preference=preference,
        budget_usd=budget_usd,
        max_turns=max_turns,
        local_only=local_only,
        approve_above_usd=approve_above_usd,
    )
    pool = load_pool(profile, config=config or None, local_only=local_only)  # config errors first
    check_stores()  # a database that is down fails here, before the run starts
    if _forecast_first(question.strip(), ctx, pool, estimate=estimate, json_out=json_out):
        return
    thread_id = thread or new_thread_id()
    decision = None if approve is None else ("approve" if approve else "reject")
    state, waiting = _drive(thread_id, question.strip(), ctx, decision, quiet=json_out)
    result = run_result(state) | {"thread_id": thread_id, "pending_approval": waiting}
    if state.get("store_error"):  # the answer below is still printed: it was paid for
        print(f"podium: warning: the run was not stored: {state['store_error']}", file=sys.stderr)
    if json_out:
        print(json.dumps(result))
    elif waiting is None:
        _print_run(result)
    if waiting is not None:
        if not json_out:
            print(
                f"podium: paused: {plain(waiting['tool'])} ({plain(str(waiting['args']))}) is "
                "predicted to cost "
                f"{usd(waiting['predicted_cost_usd'])}: resume with "
                f"'podium run --thread {thread_id} --approve' or '--reject'",
                file=sys.stderr,
            )
        raise typer.Exit(PAUSED)
    if (state.get("stopped_by") or "error") == "error":
        raise typer.Exit(1)


def _forecast_first(
    question: str, ctx: Context, pool: list[Any], *, estimate: bool, json_out: bool
) -> bool:
    """Forecast a new question from past runs: warn over budget; with --estimate, show it.

    Returns whether the command is done (an estimate spends nothing and runs nothing).
    """
    from podium.graph import forecast

    if not question:
        if estimate:
            raise UsageError("--estimate forecasts a question: pass one as the first argument")
        return False
    try:
        outlook = forecast(question, ctx, tools={t.name: t for t in pool})
    except UserError as exc:  # an unreadable store: the run itself may still be answered
        if estimate:
            raise
        print(f"podium: warning: no forecast: {exc}", file=sys.stderr)
        return False
    if outlook.enough and outlook.high_usd > ctx.budget_usd:
        print(
            f"podium: warning: similar past runs cost up to ${outlook.high_usd:.6f} (90% bound), "
            f"over --budget-usd {ctx.budget_usd:g}: the run may stop at the budget",
            file=sys.stderr,
        )
    if estimate:
        _print_forecast(outlook, json_out)
    return estimate


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
    if node == "forecast":
        return "forecasting the cost from past runs"
    if node == "execute":
        return "reading tool results"
    return "saving the trajectory"


def _ask(waiting: dict[str, Any]) -> str:
    """Ask the person at the terminal about a pending call."""
    call = f"{waiting['tool']}({json.dumps(waiting['args'], ensure_ascii=False)})"
    console.print(model_text(waiting["question"], "bold"), "\n  ", model_text(call), sep="")
    return "approve" if typer.confirm("Run it?", default=False) else "reject"


def _print_run(result: dict[str, Any]) -> None:
    console.print(Text("Answer: ", style="bold"), model_text(result["answer"] or "(none)"), sep="")
    table = Table("tool", "ok", "cost", "seconds", title="Tool calls", title_justify="left")
    for call in result["tool_calls"]:
        table.add_row(
            model_text(call["tool"]),
            "yes" if call["ok"] else "no",
            usd(call["cost_usd"]),
            f"{call['latency_s']:.2f}",
        )
    if result["tool_calls"]:
        console.print(table)
    console.print(
        f"cost {usd(result['cost_usd'])} (policy {usd(result['policy_cost_usd'])}) · "
        f"{result['latency_s']:.1f}s · {result['turns']} turns · stopped by {result['stopped_by']}"
        f" · trajectory {result['trajectory_id']} · thread {plain(result['thread_id'])}",
        markup=False,
    )


def _print_forecast(outlook: Any, json_out: bool) -> None:
    """Show a forecast: cost and latency intervals and the likely tools, or why there is none."""
    if json_out:
        print(json.dumps(outlook.as_dict()))
        return
    if not outlook.enough:
        console.print(f"[bold]No forecast:[/bold] {outlook.note}")
        return
    (c0, c1, c2), (l0, l1, l2) = outlook.cost_usd, outlook.latency_s
    console.print(
        f"cost ${c1:.6f} (90%: ${c0:.6f}–${c2:.6f}) · latency {l1:.1f}s ({l0:.1f}–{l2:.1f}s)"
    )
    mix = ", ".join(f"{t} ×{n:.1f}" for t, n in outlook.tool_mix.items()) or "no tools"
    console.print(f"likely tools: {mix} · {outlook.note}")
