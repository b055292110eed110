"""Counterfactual replay: fork a finished thread before turn K and run the rest another way.

LangGraph time travel: the thread's checkpoint history gives the state before turn K; that
checkpoint is copied to a new thread (so the original thread's head and its trajectory stay as
they were) and ``update_state`` gives the fork a trajectory id of its own. Running the fork
from there re-runs only turns K.. with the other choice: the prefix's ledger entries are
carried in the state, not billed again. The fork's trajectory record names the run it came from.
"""

from __future__ import annotations

import time
import uuid
from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from langgraph.graph.state import CompiledStateGraph

from podium.graph import Context, TrajectoryStore
from podium.graph.database import is_postgres
from podium.graph.resources import policy_override, resolve
from podium.graph.trajectory import FORK_KEY, record_outcome
from podium.tools.errors import UserError

from .durable import checkpoint_db, durable_graph, load_context, save_context
from .variants import Variant


class ReplayError(UserError, ValueError):
    """A replay that cannot be done (no such thread or turn, unfinished run)."""


@dataclass
class Fork:
    """The original run and its counterfactual branch, as stored trajectory records."""

    original: dict[str, Any]
    branch: dict[str, Any]
    thread_id: str
    fork_thread_id: str
    from_turn: int
    prefix_entries: int = 0


def _config(thread_id: str, **more: Any) -> dict[str, Any]:
    return {"configurable": {"thread_id": thread_id, **more}}


async def _before_turn(graph: CompiledStateGraph, thread_id: str, turn: int) -> tuple[Any, Any]:
    """The thread's final snapshot and its checkpoint just before run turn ``turn``."""
    final = await graph.aget_state(_config(thread_id))
    if not final.values:
        raise ReplayError(f"no thread {thread_id!r}: list runs with 'podium view' or check the id")
    if final.next:
        raise ReplayError(
            f"thread {thread_id} has an unfinished run: finish it with "
            f"'podium run --thread {thread_id}' before replaying it"
        )
    values = final.values
    run_turns = values.get("turns", 0) - values.get("run_turn_start", 0)
    if not 1 <= turn <= run_turns:
        raise ReplayError(
            f"thread {thread_id}'s last run has turns 1..{run_turns}, not {turn}: "
            f"pass --from-turn between 1 and {run_turns}"
        )
    wanted = values.get("run_turn_start", 0) + turn - 1
    async for snap in graph.aget_state_history(_config(thread_id)):  # newest first
        if snap.next == ("policy",) and snap.values.get("turns", 0) == wanted:
            return final, snap
    raise ReplayError(f"thread {thread_id} kept no checkpoint before turn {turn}: cannot fork it")


def _elapsed(snap: Any) -> float:
    """Seconds the run had taken when ``snap`` was checkpointed (0 before it started)."""
    started = snap.values.get("started_at") or 0.0
    if not started or not snap.created_at:
        return 0.0
    return max(0.0, datetime.fromisoformat(snap.created_at).timestamp() - started)


async def _copy_checkpoint(graph: CompiledStateGraph, snap: Any, fork_thread: str) -> Any:
    """Copy the checkpoint of ``snap`` to the new thread ``fork_thread``; its config there."""
    saver = graph.checkpointer
    saved = await saver.aget_tuple(snap.config)  # type: ignore[union-attr]
    if saved is None:
        raise ReplayError("the checkpoint to fork from is gone from the checkpoint file")
    target = _config(fork_thread, checkpoint_ns="")
    checkpoint = saved.checkpoint
    return await saver.aput(  # type: ignore[union-attr]
        target, checkpoint, saved.metadata, dict(checkpoint["channel_versions"])
    )


async def fork_thread(
    thread_id: str, from_turn: int, variant: Variant, path: Path | None = None
) -> Fork:
    """Fork ``thread_id``'s last run before ``from_turn`` and finish it under ``variant``.

    Raises:
        ReplayError: no such thread, an unfinished run, or no turn ``from_turn`` in it.
    """
    path = path or checkpoint_db()
    if not is_postgres(str(path)) and not Path(path).exists():
        raise ReplayError(f"no checkpoint file at {path}: run 'podium run' first")
    async with durable_graph(path) as graph:
        final, snap = await _before_turn(graph, thread_id, from_turn)
        ctx = load_context(path, thread_id) or Context()
        store = TrajectoryStore(ctx.trajectory_db or None)
        original = store.get(final.values.get("trajectory_id", ""))
        if original is None:
            raise ReplayError(f"thread {thread_id}'s run left no trajectory in {store.path}")
        model = variant.model(resolve(ctx))  # an unknown router or tool fails before a fork
        fork_id = f"{thread_id}-r{from_turn}-{uuid.uuid4().hex[:6]}"
        config = await _copy_checkpoint(graph, snap, fork_id)
        save_context(path, fork_id, ctx)
        prefix = len(snap.values.get("ledger", [])) - snap.values.get("run_ledger_start", 0)
        if snap.values.get("trajectory_id") == original["id"]:  # not the run's input checkpoint
            fresh = {"trajectory_id": uuid.uuid4().hex, "started_at": time.time() - _elapsed(snap)}
            config = await graph.aupdate_state(config, fresh)
        else:
            prefix = 0
        with policy_override(model) if model is not None else nullcontext():
            async for _ in graph.astream(None, config, context=ctx, durability="sync"):
                pass
        after = await graph.aget_state(_config(fork_id))
    if after.next:  # paused for a person's approval (the thread's --approve-above-usd)
        raise ReplayError(
            f"the fork {fork_id} waits for approval: resume it with "
            f"'podium run --thread {fork_id} --approve' or '--reject'"
        )
    state = after.values
    branch = store.get(state.get("trajectory_id", ""))
    if branch is None:
        raise ReplayError(f"the fork {fork_id} left no trajectory in {store.path}")
    branch[FORK_KEY] = {
        "trajectory_id": original["id"],
        "thread_id": thread_id,
        "fork_thread_id": fork_id,
        "from_turn": from_turn,
        "variant": variant.label,
        "prefix_entries": prefix,
    }
    store.save(branch)
    return Fork(original, branch, thread_id, fork_id, from_turn, prefix)


def branch_row(record: dict[str, Any]) -> dict[str, Any]:
    """What the side-by-side table shows of one branch."""
    return {
        "trajectory_id": record["id"],
        **record_outcome(record),
        "verdict": (record.get("training") or {}).get("verdict"),
    }


def verdicts(fork: Fork) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """Both branches judged by the checker of the original's task, when it came from a suite.

    Runs that ``podium collect`` or training stored name their task; a plain ``podium run``
    has no checker, and both verdicts are None.
    """
    info = fork.original.get("training") or {}
    if not (info.get("suite") and info.get("task_id")):
        return None, None
    from podium.training.eval import suites

    try:
        task = next(t for t in suites.load_suite(info["suite"]) if t.id == info["task_id"])
        judged = [suites.check(task, r.get("answer", ""), r) for r in (fork.original, fork.branch)]
    except (StopIteration, UserError, suites.CheckerError):
        return None, None
    first, second = ({"correct": v.correct, "score": v.score} for v in judged)
    return first, second
