"""The tools node: LangGraph's ToolNode with a billing wrapper, behind the budget guard."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

from langchain_core.messages import AIMessage, AnyMessage, ToolCall, ToolMessage
from langgraph.config import get_config
from langgraph.prebuilt import ToolNode
from langgraph.prebuilt.tool_node import ToolCallRequest
from langgraph.runtime import Runtime
from langgraph.types import interrupt

from podium.tools import cost_of
from podium.tools.cost import token_bound

from . import prompts
from .context import Context, context_of
from .ledger import bill, policy_cost, prompt_bound
from .ledger import entry as ledger_entry
from .resources import Resources, resolve
from .state import LedgerEntry, State, spent, with_cost
from .tracing import report_cost

LEDGER_KEY = "podium_ledger"
BLOCKED_ERROR = "blocked by the budget guard"
REPEATED_ERROR = "repeated call, not run again"
REJECTED_ERROR = "rejected by the user"
APPROVE_WORDS = frozenset({"approve", "approved", "yes", "y", "ok", "true", "run"})
OBSERVATION_RESERVE_TOKENS = 4096  # room kept for tool results in the final-answer turn


def tool_node(res: Resources) -> ToolNode:
    """A ToolNode over the pool whose wrappers bill every call (cheap to build per turn)."""
    return ToolNode(
        list(res.tools.values()),
        wrap_tool_call=record_call,
        awrap_tool_call=arecord_call,
        handle_tool_errors=True,
    )


def _attach_ledger(request: ToolCallRequest, msg: Any, seconds: float) -> Any:
    """Price a finished call and put its ledger entry on the ToolMessage."""
    if not isinstance(msg, ToolMessage) or request.tool is None:
        return msg
    usage = msg.artifact if isinstance(msg.artifact, dict) else {}
    error = usage.get("error", "") or (str(msg.content)[:500] if msg.status == "error" else "")
    if error:
        msg.status = "error"
    in_tok, out_tok = int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0))
    price = cost_of(request.tool)
    worst = price.worst_case(token_bound(json.dumps(request.tool_call["args"])))
    cost = bill(
        request.tool.name, price, worst, in_tok, out_tok, usage.get("compute_seconds", seconds)
    )
    msg.response_metadata[LEDGER_KEY] = ledger_entry(
        "tool",
        request.tool.name,
        call_id=msg.tool_call_id,
        input_tokens=in_tok,
        output_tokens=out_tok,
        seconds=seconds,
        cost_usd=cost,
        ok=not error,
        error=error,
    )
    return msg


def record_call(request: ToolCallRequest, execute: Callable[[ToolCallRequest], Any]) -> Any:
    """ToolNode wrapper: time the call and attach its ledger entry to the ToolMessage."""
    start = time.perf_counter()
    msg = execute(request)
    return _attach_ledger(request, msg, time.perf_counter() - start)


async def arecord_call(
    request: ToolCallRequest, execute: Callable[[ToolCallRequest], Awaitable[Any]]
) -> Any:
    """Async twin of :func:`record_call`."""
    start = time.perf_counter()
    msg = await execute(request)
    return _attach_ledger(request, msg, time.perf_counter() - start)


def _not_run(
    call: ToolCall,
    turn: int,
    note: str,
    error: str,
    messages: list[AnyMessage],
    entries: list[LedgerEntry],
) -> None:
    """Answer a call the guard did not run: a note for the policy and a $0 ledger entry."""
    messages.append(ToolMessage(note, tool_call_id=call["id"], name=call["name"], status="error"))
    entries.append(
        ledger_entry(
            "tool", call["name"], turn=turn, call_id=call["id"] or "", ok=False, error=error
        )
    )


def call_key(call: ToolCall) -> str:
    """Identity of a call: its tool and arguments."""
    return json.dumps([call["name"], call["args"]], sort_keys=True, default=str)


def _earlier_results(messages: list[AnyMessage]) -> dict[str, str]:
    """What each call already run in this conversation returned, by :func:`call_key`."""
    results = {m.tool_call_id: str(m.content) for m in messages if isinstance(m, ToolMessage)}
    return {
        call_key(c): results[c["id"]]
        for m in messages
        if isinstance(m, AIMessage)
        for c in m.tool_calls
        if c["id"] in results
    }


def approved(decision: Any) -> bool:
    """Whether a resume value approves the call.

    ``True``, ``"approve"``/``"yes"``, ``{"approve": true}`` or ``{"action": "approve"}``
    approve; anything else rejects.
    """
    if isinstance(decision, dict):
        decision = decision.get("approve", decision.get("action"))
    if isinstance(decision, bool):
        return decision
    return str(decision).strip().lower() in APPROVE_WORDS


def _ask_approval(call: ToolCall, bound: float, limit: float, left: float) -> bool:
    """Pause the run (``interrupt``) until a person approves or rejects ``call``.

    On resume LangGraph re-runs the node; the planning before this point is a pure function of
    the state, so each pending call is asked about once and answered in order.
    """
    decision = interrupt(
        {
            "question": prompts.APPROVAL.format(cost=bound, limit=limit),
            "tool": call["name"],
            "args": call["args"],
            "call_id": call["id"],
            "predicted_cost_usd": bound,
            "approve_above_usd": limit,
            "budget_left_usd": left,
            "resume_with": "approve | reject",
        }
    )
    return approved(decision)


def _plan_calls(
    state: State, runtime: Runtime[Context]
) -> tuple[Resources, list[ToolCall], dict[str, Any]]:
    """Admit the calls whose worst-case cost fits the budget; block the rest."""
    ctx = context_of(runtime)
    res = resolve(ctx)
    ai = state.messages[-1]
    assert isinstance(ai, AIMessage)
    left = ctx.budget_usd - spent(state.run_ledger())
    reserve = policy_cost(res).worst_case(
        prompt_bound(state.messages, {}) + OBSERVATION_RESERVE_TOKENS
    )
    admitted: list[ToolCall] = []
    messages: list[AnyMessage] = []
    entries: list[LedgerEntry] = []
    committed = 0.0
    earlier = _earlier_results(state.messages[:-1])
    for call in ai.tool_calls:
        previous = earlier.get(call_key(call))
        if previous is not None:  # the same call again: answer from the record, spend nothing
            _not_run(
                call,
                state.turns,
                prompts.REPEATED.format(result=previous),
                REPEATED_ERROR,
                messages,
                entries,
            )
            continue
        bound = cost_of(res.tools[call["name"]]).worst_case(token_bound(json.dumps(call["args"])))
        if committed + bound + reserve <= left:
            asks = 0 <= ctx.approve_above_usd < bound
            if asks and not _ask_approval(call, bound, ctx.approve_above_usd, left - committed):
                _not_run(call, state.turns, prompts.REJECTED, REJECTED_ERROR, messages, entries)
                continue
            admitted.append(call)
            committed += bound
            continue
        note = prompts.BLOCKED.format(bound=bound, left=max(left - committed, 0.0))
        _not_run(call, state.turns, note, BLOCKED_ERROR, messages, entries)
    update: dict[str, Any] = {"messages": messages, "ledger": entries}
    if any(e["error"] == BLOCKED_ERROR for e in entries):
        update["force_final"] = "budget"
    elif any(e["error"] == REPEATED_ERROR for e in entries):
        update["force_final"] = "answer"  # a policy repeating itself has what it will get
    return res, admitted, update


def _merge_results(state: State, update: dict[str, Any], results: Any) -> dict[str, Any]:
    if isinstance(results, dict):
        results = results["messages"]
    for msg in results:
        entry: LedgerEntry | None = msg.response_metadata.get(LEDGER_KEY)
        if entry is not None:
            update["ledger"].append(LedgerEntry(**{**entry, "turn": state.turns}))
        update["messages"].append(msg)
    report_cost(update["ledger"])
    return with_cost(state, update)


def tools(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Run the policy's calls that the budget allows; block the rest and force an answer."""
    res, admitted, update = _plan_calls(state, runtime)
    results = tool_node(res).invoke(admitted, get_config()) if admitted else []
    return _merge_results(state, update, results)


async def atools(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Async twin of :func:`tools`."""
    # Planning resolves the pool (file reads) off the event loop; interrupt() works there too,
    # as the thread runs in a copy of this context.
    res, admitted, update = await asyncio.to_thread(_plan_calls, state, runtime)
    results = await tool_node(res).ainvoke(admitted, get_config()) if admitted else []
    return _merge_results(state, update, results)
