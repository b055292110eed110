"""The nodes of the podium graph: the policy (router), the tools with their ledger, the finish."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    HumanMessage,
    SystemMessage,
    ToolCall,
    ToolMessage,
)
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool
from langgraph.config import get_config
from langgraph.errors import GraphBubbleUp
from langgraph.prebuilt.tool_node import ToolCallRequest
from langgraph.runtime import Runtime

from podium.tools import ToolCost, cost_of
from podium.tools.cost import token_bound

from . import prompts
from .context import Context
from .parsing import parse_tool_calls
from .render import ANSWER, policy_tools, render
from .resources import Resources, resolve
from .state import LedgerEntry, State, StopReason, spent
from .tracing import report_cost
from .trajectory import save_trajectory

LEDGER_KEY = "podium_ledger"
OBSERVATION_RESERVE_TOKENS = 4096  # room kept for tool results in the final-answer turn


def _entry(kind: Literal["policy", "tool"], name: str, **values: Any) -> LedgerEntry:
    base = LedgerEntry(
        kind=kind,
        name=name,
        turn=0,
        call_id="",
        input_tokens=0,
        output_tokens=0,
        seconds=0.0,
        cost_usd=0.0,
        ok=True,
        error="",
    )
    return LedgerEntry(**{**base, **values})  # type: ignore[typeddict-item]


def _context(runtime: Runtime[Context] | None) -> Context:
    ctx = getattr(runtime, "context", None)
    return ctx if isinstance(ctx, Context) else Context(**(ctx or {}))


def _policy_cost(res: Resources) -> ToolCost:
    """The policy billed like a token-priced tool: one formula for every dollar."""
    return ToolCost(
        input_usd_per_mtok=res.policy_price.input,
        output_usd_per_mtok=res.policy_price.output,
        max_output_tokens=res.max_tokens,
        price_source=res.policy_price.source,
    )


def _prompt_bound(prompt: list[AnyMessage], tools: dict[str, Any]) -> int:
    schemas = json.dumps([t.tool_call_schema.model_json_schema() for t in tools.values()])
    text = "".join(str(m.content) + json.dumps(getattr(m, "tool_calls", [])) for m in prompt)
    return token_bound(text + schemas + "".join(t.description for t in tools.values()))


def _unique(calls: list[ToolCall]) -> list[ToolCall]:
    """Drop repeats of the same call in one turn (small models emit a call many times)."""
    seen: set[str] = set()
    kept = []
    for call in calls:
        key = json.dumps([call["name"], call["args"]], sort_keys=True, default=str)
        if key not in seen:
            seen.add(key)
            kept.append(call)
    return kept


def _fallback_answer(messages: list[AnyMessage]) -> str:
    """The last plain text the policy wrote, for runs that end without a final turn."""
    for m in reversed(messages):
        if isinstance(m, AIMessage) and not m.tool_calls and str(m.content).strip():
            return str(m.content).strip()
    return ""


@dataclass
class _Turn:
    """A policy turn ready to call the model."""

    res: Resources
    update: dict[str, Any]
    new: list[AnyMessage]
    turn: int
    forced: StopReason | None
    tools: dict[str, BaseTool]
    prompt: list[AnyMessage]
    cost: ToolCost

    def runnable(self) -> Runnable:
        llm = self.res.chat_model()
        return llm.bind_tools(list(self.tools.values())) if self.tools else llm


def _begin_turn(state: State, runtime: Runtime[Context]) -> _Turn | dict[str, Any]:
    """Build the prompt of the next policy turn, or stop when the budget cannot pay for it."""
    ctx = _context(runtime)
    res = resolve(ctx, record_call, arecord_call)
    update: dict[str, Any] = {}
    new: list[AnyMessage] = []
    if not state.trajectory_id:
        update |= {"trajectory_id": uuid.uuid4().hex, "started_at": time.time()}
    left = ctx.budget_usd - spent(state.ledger)
    turn = state.turns + 1
    if not state.messages:  # the system prompt is fixed per run: the state is the exact prompt
        preference = state.preference or ctx.preference or prompts.NO_PREFERENCE
        new += [
            SystemMessage(
                prompts.SYSTEM.format(
                    preference=preference, budget=ctx.budget_usd, max_turns=ctx.max_turns
                )
            ),
            HumanMessage(state.question),
        ]
    forced: StopReason | None = state.force_final
    if forced is None and turn >= ctx.max_turns:
        forced = "max_turns"
    if forced:
        reason = prompts.REASON_BUDGET if forced == "budget" else prompts.REASON_TURNS
        new.append(HumanMessage(prompts.FINAL.format(reason=reason)))
    elif state.messages and isinstance(state.messages[-1], ToolMessage):
        # Small policies re-call a tool with its own result; asking to answer fixes most.
        new.append(
            HumanMessage(
                prompts.OBSERVE.format(left=max(left, 0.0), turn=turn, max_turns=ctx.max_turns)
            )
        )
    tools = policy_tools(res.tools, forced=bool(forced))
    prompt = render([*state.messages, *new])
    cost = _policy_cost(res)
    if cost.worst_case(_prompt_bound(prompt, tools)) > left:
        return update | {
            "messages": new,
            "stopped_by": "budget",
            "answer": _fallback_answer(state.messages),
        }
    return _Turn(res, update, new, turn, forced, tools, prompt, cost)


def _end_turn(
    t: _Turn, state: State, reply: AIMessage | Exception, seconds: float
) -> dict[str, Any]:
    """Bill the turn and turn the reply into tool calls, error feedback or the answer."""
    if isinstance(reply, Exception):  # endpoint down, 5xx after retries: end, keep the record
        error = f"{type(reply).__name__}: {reply}"[:500]
        entry = _entry(
            "policy", t.res.policy_model, turn=t.turn, seconds=seconds, ok=False, error=error
        )
        return t.update | {
            "messages": t.new,
            "ledger": [entry],
            "turns": t.turn,
            "stopped_by": "error",
            "answer": "",
        }
    usage = reply.usage_metadata
    in_tok = usage["input_tokens"] if usage else _prompt_bound(t.prompt, t.tools)
    out_tok = usage["output_tokens"] if usage else t.res.max_tokens
    entry = _entry(
        "policy",
        t.res.policy_model,
        turn=t.turn,
        input_tokens=in_tok,
        output_tokens=out_tok,
        seconds=seconds,
        cost_usd=t.cost.price(in_tok, out_tok),
    )
    report_cost([entry])
    update = t.update | {"ledger": [entry], "turns": t.turn}
    parsed = parse_tool_calls(reply, t.tools)
    parsed.calls = _unique(parsed.calls)
    # llama.cpp answers HTTP 500 to an assistant turn with calls and no content: keep the text.
    content = reply.content or json.dumps(
        [{"name": c["name"], "arguments": c["args"]} for c in parsed.calls]
    )
    keep = {
        "content": content,
        "id": reply.id,
        "usage_metadata": usage,
        "response_metadata": reply.response_metadata,
    }
    final = next((c for c in parsed.calls if c["name"] == ANSWER), None)
    if final is not None:
        return update | {
            "messages": [*t.new, AIMessage(**keep)],
            "stopped_by": t.forced or "answer",
            "answer": str(final["args"].get("text", "")).strip(),
        }
    if parsed.calls and not t.forced:
        return update | {"messages": [*t.new, AIMessage(**keep, tool_calls=parsed.calls)]}
    if parsed.errors and not t.forced:
        feedback = HumanMessage(
            prompts.MALFORMED.format(
                errors="; ".join(parsed.errors), example=next(iter(t.tools), "python")
            )
        )
        return update | {
            "messages": [*t.new, AIMessage(**keep), feedback],
            "malformed_calls": state.malformed_calls + len(parsed.errors),
        }
    answer = parsed.text  # a forced turn that still wrote a call answers with its prose only
    return update | {
        "messages": [*t.new, AIMessage(**keep)],
        "answer": answer,
        "stopped_by": t.forced or "answer",
    }


def policy(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """One policy turn: ask the router model what to do next, bill it, parse its calls."""
    t = _begin_turn(state, runtime)
    if isinstance(t, dict):
        return t
    start = time.perf_counter()
    try:
        reply = t.runnable().invoke(t.prompt)
    except GraphBubbleUp:
        raise
    except Exception as exc:
        reply = exc
    return _end_turn(t, state, reply, time.perf_counter() - start)


async def apolicy(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Async twin of :func:`policy`."""
    t = _begin_turn(state, runtime)
    if isinstance(t, dict):
        return t
    start = time.perf_counter()
    try:
        reply = await t.runnable().ainvoke(t.prompt)
    except GraphBubbleUp:
        raise
    except Exception as exc:
        reply = exc
    return _end_turn(t, state, reply, time.perf_counter() - start)


def _attach_ledger(request: ToolCallRequest, msg: Any, seconds: float) -> Any:
    """Price a finished call and put its ledger entry on the ToolMessage."""
    if not isinstance(msg, ToolMessage) or request.tool is None:
        return msg
    usage = msg.artifact if isinstance(msg.artifact, dict) else {}
    error = usage.get("error", "") or (str(msg.content)[:500] if msg.status == "error" else "")
    if error:
        msg.status = "error"
    in_tok, out_tok = int(usage.get("input_tokens", 0)), int(usage.get("output_tokens", 0))
    cost = cost_of(request.tool).price(in_tok, out_tok, usage.get("compute_seconds", seconds))
    msg.response_metadata[LEDGER_KEY] = _entry(
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


def _plan_calls(
    state: State, runtime: Runtime[Context]
) -> tuple[Resources, list[ToolCall], dict[str, Any]]:
    """Admit the calls whose worst-case cost fits the budget; block the rest."""
    ctx = _context(runtime)
    res = resolve(ctx, record_call, arecord_call)
    ai = state.messages[-1]
    assert isinstance(ai, AIMessage)
    left = ctx.budget_usd - spent(state.ledger)
    reserve = _policy_cost(res).worst_case(
        _prompt_bound(state.messages, {}) + OBSERVATION_RESERVE_TOKENS
    )
    admitted: list[ToolCall] = []
    messages: list[AnyMessage] = []
    entries: list[LedgerEntry] = []
    committed = 0.0
    for call in ai.tool_calls:
        bound = cost_of(res.tools[call["name"]]).worst_case(token_bound(json.dumps(call["args"])))
        if committed + bound + reserve <= left:
            admitted.append(call)
            committed += bound
            continue
        note = prompts.BLOCKED.format(bound=bound, left=max(left - committed, 0.0))
        messages.append(
            ToolMessage(note, tool_call_id=call["id"], name=call["name"], status="error")
        )
        entries.append(
            _entry(
                "tool",
                call["name"],
                turn=state.turns,
                call_id=call["id"] or "",
                ok=False,
                error="blocked by the budget guard",
            )
        )
    update: dict[str, Any] = {"messages": messages, "ledger": entries}
    if len(admitted) < len(ai.tool_calls):
        update["force_final"] = "budget"
    return res, admitted, update


def _merge_results(state: State, update: dict[str, Any], results: Any) -> dict[str, Any]:
    if isinstance(results, dict):
        results = results["messages"]
    for msg in results:
        entry = msg.response_metadata.get(LEDGER_KEY)
        if entry is not None:
            update["ledger"].append(LedgerEntry(**{**entry, "turn": state.turns}))
        update["messages"].append(msg)
    report_cost(update["ledger"])
    return update


def tools(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Run the policy's calls that the budget allows; block the rest and force an answer."""
    res, admitted, update = _plan_calls(state, runtime)
    results = res.tool_node().invoke(admitted, get_config()) if admitted else []
    return _merge_results(state, update, results)


async def atools(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Async twin of :func:`tools`."""
    res, admitted, update = _plan_calls(state, runtime)
    results = await res.tool_node().ainvoke(admitted, get_config()) if admitted else []
    return _merge_results(state, update, results)


def finish(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Close the run: settle the answer and why it stopped, and store the trajectory."""
    ctx = _context(runtime)
    now = time.time()
    update = {
        "stopped_by": state.stopped_by or "error",
        "answer": state.answer,
        "latency_s": now - state.started_at if state.started_at else 0.0,
    }
    tools = sorted(resolve(ctx, record_call, arecord_call).tools)
    save_trajectory(ctx, State(**{**state.__dict__, **update}), tools)
    return update


def route_policy(state: State) -> Literal["tools", "policy", "finish"]:
    """After a policy turn: run its calls, let it retry a malformed call, or finish."""
    if state.stopped_by:
        return "finish"
    last = state.messages[-1] if state.messages else None
    if isinstance(last, AIMessage) and last.tool_calls:
        return "tools"
    return "policy"
