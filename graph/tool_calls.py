"""Tool calls: the budget guard admits them, then LangGraph's ToolNode runs them, billed.

Two nodes, so that what was admitted is checkpointed before anything is sent: ``tools`` (the
guard: admission, approval, pending entries at the worst case) and ``execute``.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from langchain_core.messages import AIMessage, AnyMessage, ToolCall, ToolMessage
from langgraph.config import get_config
from langgraph.prebuilt import ToolNode
from langgraph.prebuilt.tool_node import ToolCallRequest
from langgraph.runtime import Runtime
from langgraph.types import interrupt

from podium.tools import cost_of
from podium.tools.cost import token_bound
from podium.tools.experts import holds_question
from podium.tools.redact import redact

from . import prompts
from .context import Context, context_of
from .delegation import delegate_of, expert_call
from .ledger import bill_report, policy_cost, prompt_bound
from .ledger import entry as ledger_entry
from .resources import Resources, resolve
from .state import LedgerEntry, PendingCall, State, spent, with_cost
from .tracing import report_cost

LEDGER_KEY = "podium_ledger"
BLOCKED_ERROR = "blocked by the budget guard"
REPEATED_ERROR = "repeated call, not run again"
REJECTED_ERROR = "rejected by the user"
INTERRUPTED_ERROR = "interrupted before its result was recorded: billed at its worst case"
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
    msg.content = redact(str(msg.content))  # an echoed key never reaches the state
    error = str(usage.get("error", "")) or (str(msg.content) if msg.status == "error" else "")
    error = redact(error)[:500]
    if error:
        msg.status = "error"
        if "error" in usage:
            msg.artifact = {**usage, "error": error}
    price = cost_of(request.tool)
    state = request.state if isinstance(request.state, dict) else {}
    sent = sent_args(request.tool_call, request.tool, str(state.get("question", "")))
    worst = price.worst_case(token_bound(json.dumps(sent)))
    in_tok, out_tok, cost = bill_report(request.tool.name, price, worst, usage, seconds)
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


def sent_args(call: ToolCall, tool: Any, question: str) -> dict[str, Any]:
    """What a call sends, as the guard and the ledger price it.

    Its arguments, and the user's question for a tool that is handed it
    (``ToolCost.sees_question``: LLM experts, whose ``task`` argument ToolNode fills from the
    state, ``InjectedState("question")``).
    """
    args = dict(call["args"])
    if tool is None or not question.strip() or not cost_of(tool).sees_question:
        return args
    if any(holds_question(str(v), question) for v in args.values()):
        return args  # sent alone (``expert_request``)
    return {**args, "task": question}


def run_as(call: ToolCall, state: State) -> ToolCall:
    """The call as it runs: ``answer(model=X)`` runs as X's call (``delegation``)."""
    if not delegate_of(call):
        return call
    return expert_call(call, state.question, state.messages[state.run_message_start :])


def _run_calls(calls: list[ToolCall], question: str) -> dict[str, Any]:
    """ToolNode's input: the calls, and the state fields its tools may be handed."""
    return {"messages": [AIMessage(content="", tool_calls=calls)], "question": question}


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


def _open_calls(state: State) -> tuple[list[ToolCall], int]:
    """The calls of the policy's last turn that have no result yet, and that turn's index.

    Normally all of them; after an interrupted execution (:func:`execute`) those the guard
    answered with a note are left out, so only the interrupted ones are planned again.
    """
    at = next(
        i
        for i in range(len(state.messages) - 1, -1, -1)
        if isinstance(state.messages[i], AIMessage) and state.messages[i].tool_calls  # type: ignore[union-attr]
    )
    ai = state.messages[at]
    assert isinstance(ai, AIMessage)
    answered = {m.tool_call_id for m in state.messages[at:] if isinstance(m, ToolMessage)}
    return [c for c in ai.tool_calls if c["id"] not in answered], at


def _plan_calls(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Admit the calls whose worst-case cost fits the budget; block the rest."""
    ctx = context_of(runtime)
    res = resolve(ctx)
    calls, at = _open_calls(state)
    left = ctx.budget_usd - spent(state.run_ledger())
    reserve = policy_cost(res).worst_case(
        prompt_bound(state.messages, {}) + OBSERVATION_RESERVE_TOKENS
    )
    admitted: list[tuple[ToolCall, float]] = []
    messages: list[AnyMessage] = []
    entries: list[LedgerEntry] = []
    committed = 0.0
    earlier = _earlier_results(state.messages[:at])
    for written in calls:
        previous = earlier.get(call_key(written))
        call = run_as(written, state)
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
        tool = res.tools[call["name"]]
        sent = sent_args(call, tool, state.question)
        bound = cost_of(tool).worst_case(token_bound(json.dumps(sent)))
        if committed + bound + reserve <= left:
            asks = 0 <= ctx.approve_above_usd < bound
            if asks and not _ask_approval(call, bound, ctx.approve_above_usd, left - committed):
                _not_run(call, state.turns, prompts.REJECTED, REJECTED_ERROR, messages, entries)
                continue
            admitted.append((call, bound))
            committed += bound
            continue
        note = prompts.BLOCKED.format(bound=bound, left=max(left - committed, 0.0))
        _not_run(call, state.turns, note, BLOCKED_ERROR, messages, entries)
    # Leased only now: an approval interrupt above re-runs this node, discarding this run.
    pending = [_lease(call, bound) for call, bound in admitted]
    update: dict[str, Any] = {"messages": messages, "ledger": entries, "pending": pending}
    if any(e["error"] == BLOCKED_ERROR for e in entries):
        update["force_final"] = "budget"
    elif any(e["error"] == REPEATED_ERROR for e in entries):
        update["force_final"] = "answer"  # a policy repeating itself has what it will get
    return update


# --- pending calls: admitted, at their worst case, before anything is sent -----------------

_leases: set[str] = set()  # leases of pending calls this process admitted and has not started
_leases_lock = threading.Lock()


def _lease(call: ToolCall, worst_usd: float) -> PendingCall:
    """Admit ``call``: a pending entry at its worst case, with a lease only this process holds.

    The guard's update (with the entry) is checkpointed before :func:`execute` sends anything.
    A run killed while the call was in flight resumes in a process that never held the lease,
    which is how :func:`execute` knows the request may have been sent and billed.
    """
    lease = uuid.uuid4().hex
    with _leases_lock:
        _leases.add(lease)
    return PendingCall(
        call_id=call["id"] or "", name=call["name"], worst_usd=worst_usd, lease=lease
    )


def release_leases() -> None:
    """Give up every lease this process holds, as a process that never admitted them would.

    The calls stay pending in their checkpoints; whoever resumes them bills each at its worst
    case before sending it again. For hand-overs (and tests) of runs between processes.
    """
    with _leases_lock:
        _leases.clear()


def _claim(pending: PendingCall) -> bool:
    """Take the lease of ``pending`` to send it: False if it was admitted elsewhere or taken."""
    with _leases_lock:
        if pending["lease"] in _leases:
            _leases.discard(pending["lease"])
            return True
        return False


def _interrupted(state: State, claimed: list[bool]) -> dict[str, Any]:
    """Bill pending calls an earlier execution may have sent, and hand them back to the guard.

    Each is a ledger entry at its admitted worst case (its reply is lost); the guard then
    admits the calls again against what is left, with fresh leases, so every request that
    may be billed is in the ledger, and a resumed run never sends a duplicate unbilled.
    """
    entries = [
        ledger_entry(
            "tool",
            p["name"],
            turn=state.turns,
            call_id=p["call_id"],
            cost_usd=p["worst_usd"],
            ok=False,
            error=INTERRUPTED_ERROR,
        )
        for p, live in zip(state.pending, claimed, strict=True)
        if not live
    ]
    report_cost(entries)
    return with_cost(state, {"ledger": entries, "pending": []})


def guard(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """The budget guard: admit the calls that fit (pending, at their worst case), block the rest."""
    return with_cost(state, _plan_calls(state, runtime))


async def aguard(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Async twin of :func:`guard`."""
    # Planning resolves the pool (file reads) off the event loop; interrupt() works there too,
    # as the thread runs in a copy of this context.
    return with_cost(state, await asyncio.to_thread(_plan_calls, state, runtime))


def route_guard(state: State) -> Literal["execute", "policy"]:
    """Run the admitted calls, or go back to the policy when the guard admitted none."""
    return "execute" if state.pending else "policy"


def _admitted(state: State) -> tuple[list[ToolCall], dict[str, Any] | None]:
    """The pending calls to send now, or the update billing an interrupted execution."""
    claimed = [_claim(p) for p in state.pending]
    if not all(claimed):
        return [], _interrupted(state, claimed)
    ids = {p["call_id"] for p in state.pending}
    return [c for c in _open_calls(state)[0] if (c["id"] or "") in ids], None


def _merge_results(state: State, results: Any) -> dict[str, Any]:
    if isinstance(results, dict):
        results = results["messages"]
    update: dict[str, Any] = {"messages": [], "ledger": [], "pending": []}
    for msg in results:
        entry: LedgerEntry | None = msg.response_metadata.get(LEDGER_KEY)
        if entry is not None:
            update["ledger"].append(LedgerEntry(**{**entry, "turn": state.turns}))
        update["messages"].append(msg)
    report_cost(update["ledger"])
    return with_cost(state, update)


def execute(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Run the calls the guard admitted; each is billed when its result is in."""
    calls, interrupted = _admitted(state)
    if interrupted is not None:
        return interrupted
    res = resolve(context_of(runtime))
    calls = [run_as(c, state) for c in calls]
    results = tool_node(res).invoke(_run_calls(calls, state.question), get_config())
    return _merge_results(state, results)


async def aexecute(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Async twin of :func:`execute`."""
    calls, interrupted = _admitted(state)
    if interrupted is not None:
        return interrupted
    res = await asyncio.to_thread(resolve, context_of(runtime))
    calls = [run_as(c, state) for c in calls]
    results = await tool_node(res).ainvoke(_run_calls(calls, state.question), get_config())
    return _merge_results(state, results)


def route_execute(state: State) -> Literal["tools", "policy"]:
    """Back to the policy with the results; to the guard when an interrupted call is open."""
    return "tools" if _open_calls(state)[0] else "policy"
