"""The trajectory record every run writes; :mod:`.stores` keeps them for training."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Mapping
from typing import Any

from langchain_core.messages import AIMessage, messages_to_dict
from langchain_core.tools import BaseTool
from langgraph.runtime import Runtime

from podium.tools.errors import UserError

from .context import Context, context_of
from .render import OFFERED_KEY, policy_tools, tool_schemas
from .resources import resolve
from .state import State, spent
from .stores import FIX_STORE, TrajectoryStore, default_db

__all__ = [
    "TrajectoryStore",
    "build_record",
    "default_db",
    "finish",
    "record_outcome",
    "save_trajectory",
]

_CONTEXT_FIELDS = (
    "profile",
    "preference",
    "preference_vector",
    "budget_usd",
    "max_turns",
    "local_only",
    "policy_model",
    "environment",
    "first_tool",
)


def build_record(
    ctx: Context,
    state: State,
    tools: Mapping[str, BaseTool],
    adapter: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The full, JSON-ready record of a finished run with the pool ``tools``.

    It holds every policy turn's raw completion, parsed calls and offered tool names, every
    tool call with its arguments, observation, tokens, dollars and seconds, the answer and why
    the run stopped, the schemas of the tools the run offered (``answer`` first, as bound):
    training renders each turn with what it was offered, not with a pool rebuilt later — and
    the LoRA adapter the policy answered with (path and sha256; None for the base model).
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
        "policy_adapter": adapter,
        # Exploration flag: the first call's tool was imposed, not chosen by the policy.
        "explore": {"first_tool": ctx.first_tool} if ctx.first_tool else None,
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


FORK_KEY = "replay_of"
"""Key of a record made by ``podium replay``: the run it forked (a counterfactual, not traffic)."""


def record_outcome(record: Mapping[str, Any]) -> dict[str, Any]:
    """What a stored run came to: answer, dollars, seconds, turns, why it stopped, tools called.

    The one summary that runs are compared by, whether a replay's branches side by side or
    served traffic against a replayed evaluation; defaults stand in for what an older record
    lacks.
    """
    return {
        "answer": record.get("answer", ""),
        "cost_usd": record.get("cost_usd", 0.0),
        "latency_s": record.get("latency_s", 0.0),
        "turns": record.get("turns", 0),
        "stopped_by": record.get("stopped_by"),
        "tool_calls": [e["name"] for e in record.get("ledger", []) if e["kind"] == "tool"],
    }


def save_trajectory(
    ctx: Context,
    state: State,
    tools: Mapping[str, BaseTool],
    adapter: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Build the record of ``state`` (run with the pool ``tools``) and store it."""
    record = build_record(ctx, state, tools, adapter)
    TrajectoryStore(ctx.trajectory_db or None).save(record)
    return record


def finish(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Close the run: settle the answer and why it stopped, and store the trajectory.

    The run is paid for by now: a store that cannot take the record (corrupt, a directory,
    read-only, disk full) must not lose the answer, so the failure is kept in
    ``store_error`` for the caller to report, and the run ends as it would have.
    """
    ctx = context_of(runtime)
    now = time.time()
    update: dict[str, Any] = {
        "stopped_by": state.stopped_by or "error",
        "answer": state.answer,
        "latency_s": now - state.started_at if state.started_at else 0.0,
        "store_error": "",
    }
    resources = resolve(ctx)
    try:
        save_trajectory(
            ctx, State(**{**state.__dict__, **update}), resources.tools, resources.active_adapter()
        )
    except UserError as exc:  # the store named itself and the fix
        update["store_error"] = str(exc)
    except (sqlite3.Error, OSError) as exc:  # read-only, disk full, I/O error
        where = ctx.trajectory_db or "the trajectory store"
        update["store_error"] = f"{where} cannot be written ({exc}): {FIX_STORE}"
    return update
