"""Durable CLI runs: threads checkpointed in SQLite, so a run can continue, resume or wait.

LangGraph's checkpointer keeps the *state* of every step; a run's :class:`Context` (budget,
profile, endpoint, approval threshold) is not part of the state, so it is kept beside the
checkpoints, and a resumed run continues with exactly the settings it started with.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import ExitStack, asynccontextmanager, closing
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command

from podium.graph import Context, build_graph
from podium.tools.errors import UserError
from podium.tools.paths import cache_dir

from .lease import thread_lease

CONTEXTS = """
CREATE TABLE IF NOT EXISTS podium_thread_contexts (
    thread_id TEXT PRIMARY KEY,
    context TEXT NOT NULL,
    updated_at REAL NOT NULL
)
"""


class ThreadError(UserError, ValueError):
    """A thread cannot do what was asked; the message names the command that can."""


def checkpoint_db() -> Path:
    """The checkpoint file of CLI runs: ``$PODIUM_CHECKPOINT_DB``, else in the cache dir."""
    return Path(os.environ.get("PODIUM_CHECKPOINT_DB") or cache_dir() / "checkpoints.sqlite")


def unusable_store(path: Path, exc: Exception) -> ThreadError:
    """The one-line error of a checkpoint file SQLite cannot use, with how to recover."""
    what = "is a directory" if path.is_dir() else f"cannot be used ({exc})"
    return ThreadError(
        f"checkpoint file {path} {what}: move it aside (its threads cannot be resumed) or "
        "set $PODIUM_CHECKPOINT_DB to another file"
    )


def new_thread_id() -> str:
    """A fresh thread id."""
    return uuid.uuid4().hex[:12]


def _contexts(path: Path) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=30)
    db.execute(CONTEXTS)
    return db


def save_context(path: Path, thread_id: str, ctx: Context) -> None:
    """Remember the context ``thread_id`` runs with."""
    with closing(_contexts(path)) as db, db:
        db.execute(
            "INSERT OR REPLACE INTO podium_thread_contexts VALUES (?, ?, ?)",
            (thread_id, json.dumps(asdict(ctx)), time.time()),
        )


def load_context(path: Path, thread_id: str) -> Context | None:
    """The context ``thread_id`` last ran with, or None."""
    with closing(_contexts(path)) as db:
        row = db.execute(
            "SELECT context FROM podium_thread_contexts WHERE thread_id = ?", (thread_id,)
        ).fetchone()
    if not row:
        return None
    stored = json.loads(row[0])
    return Context(**stored, explicit=frozenset(stored))  # as it ran: the env has no say


@asynccontextmanager
async def durable_graph(path: Path | None = None) -> AsyncIterator[CompiledStateGraph]:
    """The podium graph compiled with an async SQLite checkpointer at ``path``."""
    path = path or checkpoint_db()
    path.parent.mkdir(parents=True, exist_ok=True)
    async with AsyncSqliteSaver.from_conn_string(str(path)) as saver:
        yield build_graph().compile(checkpointer=saver, name="podium")


@dataclass
class Step:
    """What to feed the graph next on a thread, and with which context."""

    input: Any
    context: Context
    resumed: bool


def pending_approval(snapshot: Any) -> dict[str, Any] | None:
    """The approval a paused thread waits for (the interrupt's payload), or None."""
    return snapshot.interrupts[0].value if snapshot.interrupts else None


async def next_step(
    graph: CompiledStateGraph,
    path: Path,
    thread_id: str,
    question: str,
    ctx: Context,
    decision: str | None,
) -> Step:
    """Decide how a ``podium run`` on ``thread_id`` proceeds.

    An unfinished run resumes from its last checkpoint with its own context (a paused one with
    ``decision``); a finished or new thread takes ``question`` as a new run with ``ctx``.
    """
    snapshot = await graph.aget_state({"configurable": {"thread_id": thread_id}})
    if snapshot.next:
        if question:
            raise ThreadError(
                f"thread {thread_id} has an unfinished run: resume it with "
                f"'podium run --thread {thread_id}' (no question)"
            )
        stored = load_context(path, thread_id) or ctx
        waiting = pending_approval(snapshot)
        if waiting is None:
            return Step(None, stored, resumed=True)
        if decision is None:
            raise ThreadError(
                f"thread {thread_id} waits for approval of {waiting['tool']} "
                f"(${waiting['predicted_cost_usd']:.6f}): resume it with "
                f"'podium run --thread {thread_id} --approve' or '--reject'"
            )
        return Step(Command(resume=decision), stored, resumed=True)
    if decision is not None:
        raise ThreadError(f"thread {thread_id} waits for no approval: drop --approve/--reject")
    if not question:
        known = bool(snapshot.values)
        raise ThreadError(
            f"thread {thread_id} has no unfinished run: ask a follow-up question with "
            f"'podium run --thread {thread_id} \"...\"'"
            if known
            else "the question is empty: pass the question as the first argument"
        )
    save_context(path, thread_id, ctx)
    return Step({"question": question}, ctx, resumed=False)


async def run_thread(
    thread_id: str,
    question: str,
    ctx: Context,
    decision: str | None,
    on_step: Callable[[dict[str, Any]], None],
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Run (or resume) ``thread_id`` to its end or its next approval pause.

    Returns the thread's final state and the approval it waits for (None when it finished);
    ``on_step`` sees every node's update as it streams. The thread's lease is held throughout,
    so a second caller on the same thread, in any process, is refused while this one runs.
    """
    path = checkpoint_db()
    with ExitStack() as stack:
        try:  # the lease table is the file's first use: a corrupt or odd file shows here
            path.parent.mkdir(parents=True, exist_ok=True)
            stack.enter_context(thread_lease(path, thread_id, question))
        except (sqlite3.Error, OSError) as exc:
            raise unusable_store(path, exc) from None
        return await _run_leased(path, thread_id, question, ctx, decision, on_step)


async def _run_leased(
    path: Path,
    thread_id: str,
    question: str,
    ctx: Context,
    decision: str | None,
    on_step: Callable[[dict[str, Any]], None],
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """:func:`run_thread` once the thread's lease is held."""
    async with durable_graph(path) as graph:
        try:
            step = await next_step(graph, path, thread_id, question, ctx, decision)
        except sqlite3.Error as exc:
            raise unusable_store(path, exc) from None
        config = {"configurable": {"thread_id": thread_id}}
        # "sync": the guard's checkpoint (calls admitted at their worst case, leased) is on disk
        # before ``execute`` sends them, so a run killed mid-call is billed on resume.
        async for chunk in graph.astream(
            step.input, config, context=step.context, stream_mode="updates", durability="sync"
        ):
            on_step(chunk)
        snapshot = await graph.aget_state(config)
        return dict(snapshot.values), pending_approval(snapshot)
