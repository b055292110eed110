"""The trajectory record every run writes; :mod:`.stores` keeps them for training."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from langchain_core.messages import AIMessage, messages_to_dict
from langchain_core.tools import BaseTool
from langgraph.runtime import Runtime

from .context import Context, context_of
from .render import OFFERED_KEY, policy_tools, tool_schemas
from .resources import resolve
from .state import State, spent
from .stores import TrajectoryStore, default_db

__all__ = ["TrajectoryStore", "build_record", "default_db", "finish", "save_trajectory"]

_CONTEXT_FIELDS = (
    "profile",
    "preference",
    "preference_vector",
    "budget_usd",
    "max_turns",
    "local_only",
    "policy_model",
    "environment",
)


def build_record(ctx: Context, state: State, tools: Mapping[str, BaseTool]) -> dict[str, Any]:
    """The full, JSON-ready record of a finished run with the pool ``tools``.

    It holds every policy turn's raw completion, parsed calls and offered tool names, every
    tool call with its arguments, observation, tokens, dollars and seconds, the answer and why
    the run stopped, and the schemas of the tools the run offered (``answer`` first, as bound):
    training renders each turn with what it was offered, not with a pool rebuilt later.
    No endpoint URL or key is recorded.
    """
    turns = []
    for msg in state.messages[state.run_message_start :]:
        if isinstance(msg, AIMessage):
            turns.append(
                {
                    "raw": msg.content,
                    "calls": [
                        {"id": c["id"], "tool": c["name"], "args": c["args"]}
                        for c in msg.tool_calls
                    ],
                    "tools": msg.response_metadata.get(OFFERED_KEY),
                }
            )
    return {
        "id": state.trajectory_id,
        "question": state.question,
        "preference": state.preference or ctx.preference,
        "context": {k: getattr(ctx, k) for k in _CONTEXT_FIELDS},
        "tools": sorted(tools),
        "tool_schemas": tool_schemas(policy_tools(dict(tools), forced=False).values()),
        "answer": state.answer,
        "stopped_by": state.stopped_by,
        "turns": state.run_turns(),
        "malformed_calls": state.malformed_calls,
        "cost_usd": spent(state.run_ledger()),
        "latency_s": state.latency_s,
        "started_at": state.started_at,
        "ledger": [dict(e) for e in state.run_ledger()],
        "policy_turns": turns,
        "messages": messages_to_dict(state.messages),
    }


def save_trajectory(ctx: Context, state: State, tools: Mapping[str, BaseTool]) -> dict[str, Any]:
    """Build the record of ``state`` (run with the pool ``tools``) and store it."""
    record = build_record(ctx, state, tools)
    TrajectoryStore(ctx.trajectory_db or None).save(record)
    return record


def finish(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Close the run: settle the answer and why it stopped, and store the trajectory."""
    ctx = context_of(runtime)
    now = time.time()
    update = {
        "stopped_by": state.stopped_by or "error",
        "answer": state.answer,
        "latency_s": now - state.started_at if state.started_at else 0.0,
    }
    save_trajectory(ctx, State(**{**state.__dict__, **update}), resolve(ctx).tools)
    return update
