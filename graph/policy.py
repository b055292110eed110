"""The policy (router) node: one turn of the policy model, billed, parsed and routed."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
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
from langgraph.errors import GraphBubbleUp
from langgraph.runtime import Runtime

from podium.tools import ToolCost
from podium.tools.cost import trusted_tokens
from podium.tools.endpoints import billable, reported_usage
from podium.tools.redact import redact

from . import prompts
from .context import Context, ContextError, context_of
from .delegation import delegate_of, delegated_answer, experts_of
from .ledger import bill, policy_cost, prompt_bound
from .ledger import entry as ledger_entry
from .parsing import Parsed, parse_tool_calls
from .render import ANSWER, OFFERED_KEY, policy_tools, render, tool_schemas
from .resources import Resources, resolve
from .state import State, StopReason, spent, with_cost
from .tool_calls import call_key
from .tracing import report_cost


def _unique(calls: list[ToolCall]) -> list[ToolCall]:
    """Drop repeats of the same call in one turn (small models emit a call many times)."""
    kept: dict[str, ToolCall] = {}
    for call in calls:
        kept.setdefault(call_key(call), call)
    return list(kept.values())


def _refuse_bundle(parsed: Parsed, forced: bool) -> None:
    """Make an ``answer`` called together with other calls a malformed call: nothing runs.

    An answer written in the same turn as calls was written before their results existed:
    taking it would end the run on a guess and reward guessing. Running the calls and dropping
    the answer instead spends them after the policy had already answered — a small policy lists
    every tool, arguments copied from their descriptions, after its answer. So the turn is fed
    back: answer alone, or call what is still needed (a policy that writes the same bundle
    again is then made to answer, as one repeating a call is). A forced turn keeps its answer.
    """
    if forced or not any(c["name"] == ANSWER for c in parsed.calls):
        return
    if parsed.errors or any(c["name"] != ANSWER for c in parsed.calls):
        parsed.calls = []
        parsed.errors.insert(0, prompts.BUNDLED)


def _refuse_unknown_model(parsed: Parsed, pool: dict[str, BaseTool], forced: bool) -> None:
    """Make ``answer(model=X)`` naming no LLM expert of the pool a malformed call."""
    final = next((c for c in parsed.calls if c["name"] == ANSWER), None)
    model = delegate_of(final) if final is not None and not forced else ""
    experts = experts_of(pool)
    if model and model not in experts:
        parsed.calls = []
        names = ", ".join(experts) or "none in this pool"
        parsed.errors.insert(0, prompts.UNKNOWN_MODEL.format(model=model, names=names))


def _said_before(state: State, content: Any) -> bool:
    """Whether the policy's last turn of this run wrote exactly ``content`` (a stuck policy)."""
    run = state.messages[state.run_message_start :]
    last = next((m for m in reversed(run) if isinstance(m, AIMessage)), None)
    return last is not None and last.content == content


def _fallback_answer(messages: list[AnyMessage]) -> str:
    """The last plain text the policy wrote, for runs that end without a final turn."""
    for m in reversed(messages):
        if isinstance(m, AIMessage) and not m.tool_calls and str(m.content).strip():
            return str(m.content).strip()
    return ""


_RUN_FIELDS = (
    "stopped_by",
    "force_final",
    "answer",
    "malformed_calls",
    "trajectory_id",
    "started_at",
    "latency_s",
    "run_ledger_start",
    "run_turn_start",
    "run_message_start",
    "store_error",
)


def _follow_up(state: State) -> State:
    """The state of a new run on a thread whose last run finished.

    The conversation and the ledger are kept; the run's budget, turns and answer start afresh.
    """
    fresh = State()
    reset = {k: getattr(fresh, k) for k in _RUN_FIELDS}
    reset |= {
        "run_ledger_start": len(state.ledger),
        "run_turn_start": state.turns,
        "run_message_start": len(state.messages),
    }
    return State(**{**state.__dict__, **reset})


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
    worst_usd: float  # what the guard admitted this turn at
    first_tool: str = ""  # exploration: the tool this (first) turn's call must name

    def runnable(self) -> Runnable:
        """The policy with this turn's tools; a forced turn *must* call ``answer``.

        A named ``tool_choice`` makes llama.cpp, vLLM and OpenAI constrain decoding to the
        answer tool's schema, so even a policy stuck in calling tools writes an answer. The
        same mechanism forces an exploring run's first call to name ``first_tool``: the
        policy still writes its arguments, sampled, and decides everything after.
        """
        llm = self.res.chat_model()
        choice = ANSWER if self.forced else (self.first_tool or None)
        return llm.bind_tools(tool_schemas(self.tools.values()), tool_choice=choice)


def _begin_turn(state: State, runtime: Runtime[Context]) -> _Turn | dict[str, Any]:
    """Build the prompt of the next policy turn, or stop when the budget cannot pay for it."""
    ctx = context_of(runtime)
    res = resolve(ctx)
    update: dict[str, Any] = {}
    new: list[AnyMessage] = []
    if state.stopped_by is not None:  # a new question on a thread whose last run finished
        state = _follow_up(state)
        update |= {k: getattr(state, k) for k in _RUN_FIELDS}
        new.append(HumanMessage(state.question))
    written = delegated_answer(state.messages, state.run_message_start)
    if written is not None:  # the expert the policy named wrote the answer: the run ends
        return update | {"messages": new, "stopped_by": "answer", "answer": written}
    if not state.started_at:  # the run's first turn; a caller may have chosen its id
        update |= {"trajectory_id": state.trajectory_id or uuid.uuid4().hex}
        update |= {"started_at": time.time()}
    left = ctx.budget_usd - spent(state.run_ledger())
    turn = state.turns + 1
    run_turn = turn - state.run_turn_start
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
    if forced is None and run_turn >= ctx.max_turns:
        forced = "max_turns"
    if forced:
        reason = prompts.REASONS[forced]
        new.append(HumanMessage(prompts.FINAL.format(reason=reason)))
    elif state.messages and isinstance(state.messages[-1], ToolMessage):
        # Small policies re-call a tool with its own result; asking to answer fixes most.
        new.append(
            HumanMessage(
                prompts.OBSERVE.format(left=max(left, 0.0), turn=run_turn, max_turns=ctx.max_turns)
            )
        )
    tools = policy_tools(res.tools, forced=bool(forced))
    first = ctx.first_tool if run_turn == 1 and not forced else ""
    if first and first not in tools:
        raise ContextError(
            f"first_tool {first!r} is not offered in this run: use one of {', '.join(tools)}"
        )
    prompt = render([*state.messages, *new])
    cost = policy_cost(res)
    worst = cost.worst_case(prompt_bound(prompt, tools))
    if worst > left:
        return update | {
            "messages": new,
            "stopped_by": "budget",
            "answer": _fallback_answer(state.messages),
        }
    return _Turn(res, update, new, turn, forced, tools, prompt, cost, worst, first)


def _end_turn(
    t: _Turn, state: State, reply: AIMessage | Exception, seconds: float
) -> dict[str, Any]:
    """Bill the turn and turn the reply into tool calls, error feedback or the answer."""
    if isinstance(reply, Exception):  # endpoint down, 5xx after retries: end, keep the record
        error = redact(f"{type(reply).__name__}: {reply}")[:500]
        lost = billable(reply)  # a lost reply may be billed: its worst case, as admitted
        entry = ledger_entry(
            "policy", t.res.policy_model, turn=t.turn, seconds=seconds, ok=False, error=error,
            input_tokens=prompt_bound(t.prompt, t.tools) if lost else 0,
            output_tokens=t.res.max_tokens if lost else 0, cost_usd=t.worst_usd if lost else 0.0,
        )  # fmt: skip
        return t.update | {
            "messages": t.new,
            "ledger": [entry],
            "turns": t.turn,
            "stopped_by": "error",
            "answer": "",
        }
    tokens = trusted_tokens(reported_usage(reply))  # missing or invalid: the worst case
    usage = reply.usage_metadata if tokens else None  # an invalid report is not kept
    in_tok, out_tok = tokens or (prompt_bound(t.prompt, t.tools), t.res.max_tokens)
    entry = ledger_entry(
        "policy",
        t.res.policy_model,
        turn=t.turn,
        input_tokens=in_tok,
        output_tokens=out_tok,
        seconds=seconds,
        cost_usd=bill(t.res.policy_model, t.cost, t.worst_usd, in_tok, out_tok),
    )
    shown: dict[str, Any] = dict(reply.usage_metadata or {})  # costs ride beside the tokens
    report_cost([entry], shown_usd=float(shown.get("total_cost", 0.0)))
    update = t.update | {"ledger": [entry], "turns": t.turn}
    parsed = parse_tool_calls(reply, t.tools)
    parsed.calls = _unique(parsed.calls)
    if not (parsed.calls or parsed.errors or parsed.text.strip("[]{} \n")):
        parsed.errors.append(prompts.EMPTY)
    # llama.cpp answers HTTP 500 to an assistant turn with calls and no content: keep the text.
    content = reply.content or json.dumps(
        [{"name": c["name"], "arguments": c["args"]} for c in parsed.calls]
    )
    keep: dict[str, Any] = {
        "content": content,
        "id": reply.id,
        "usage_metadata": usage,
        # The tools this turn offered: training renders the turn with them (samples.py).
        "response_metadata": {**reply.response_metadata, OFFERED_KEY: list(t.tools)},
    }
    _refuse_bundle(parsed, bool(t.forced))
    _refuse_unknown_model(parsed, t.res.tools, bool(t.forced))
    final = next((c for c in parsed.calls if c["name"] == ANSWER), None)
    if final is not None and delegate_of(final) and not t.forced:
        # answer(model=X): X writes the answer; the guard prices the call, execute runs it.
        return update | {"messages": [*t.new, AIMessage(**keep, tool_calls=[final])]}
    if final is not None:
        return update | {
            "messages": [*t.new, AIMessage(**keep)],
            "stopped_by": t.forced or "answer",
            "answer": str(final["args"].get("text", "")).strip(),
        }
    if parsed.calls and not t.forced:  # the valid calls run; broken ones beside them are counted
        return update | {
            "messages": [*t.new, AIMessage(**keep, tool_calls=parsed.calls)],
            "malformed_calls": state.malformed_calls + len(parsed.errors),
        }
    if parsed.errors and not t.forced:
        feedback = HumanMessage(prompts.MALFORMED.format(errors="; ".join(parsed.errors)))
        if _said_before(state, content):  # feedback did not help: the next turn must answer
            update["force_final"] = "answer"
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
        return with_cost(state, t)
    start = time.perf_counter()
    try:
        reply = t.runnable().invoke(t.prompt)
    except GraphBubbleUp:
        raise
    except Exception as exc:
        reply = exc
    return with_cost(state, _end_turn(t, state, reply, time.perf_counter() - start))


async def apolicy(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Async twin of :func:`policy`."""
    # Resolving may read config files or start the embedded server: off the event loop.
    t = await asyncio.to_thread(_begin_turn, state, runtime)
    if isinstance(t, dict):
        return with_cost(state, t)
    start = time.perf_counter()
    try:
        reply = await t.runnable().ainvoke(t.prompt)
    except GraphBubbleUp:
        raise
    except Exception as exc:
        reply = exc
    return with_cost(state, _end_turn(t, state, reply, time.perf_counter() - start))


def route_policy(state: State) -> Literal["tools", "policy", "finish"]:
    """After a policy turn: run its calls, let it retry a malformed call, or finish."""
    if state.stopped_by:
        return "finish"
    last = state.messages[-1] if state.messages else None
    if isinstance(last, AIMessage) and last.tool_calls:
        return "tools"
    return "policy"
