"""Durable CLI runs: threads checkpointed in SQLite or PostgreSQL, so a run can continue or wait.

LangGraph's checkpointer keeps the *state* of every step; a run's :class:`Context` (budget,
profile, endpoint, approval threshold) is not part of the state, so it is kept beside the
checkpoints, and a resumed run continues with exactly the settings it started with. The store
is a SQLite file (the default) or, with ``PODIUM_CHECKPOINT_DB=postgresql://...``, a server
several processes and machines share: a thread started on one resumes on another.
"""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack, asynccontextmanager, closing, contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import psycopg
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph.state import CompiledStateGraph
from langgraph.types import Command
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from podium.graph import Context, build_graph
from podium.graph.database import (
    WAIT_S,
    advisory_key,
    check_reachable,
    connection,
    is_postgres,
    unreachable,
)
from podium.graph.stores import default_db
from podium.tools.errors import UserError
from podium.tools.paths import cache_dir

from .console import usd
from .lease import thread_lease

SOURCE = "PODIUM_CHECKPOINT_DB"
# One statement for both backends: SQLite reads DOUBLE PRECISION as REAL and has ON CONFLICT.
CONTEXTS = """
CREATE TABLE IF NOT EXISTS podium_thread_contexts (
    thread_id TEXT PRIMARY KEY,
    context TEXT NOT NULL,
    updated_at DOUBLE PRECISION NOT NULL
)
"""
SAVE_CONTEXT = (
    "INSERT INTO podium_thread_contexts VALUES (?, ?, ?) ON CONFLICT (thread_id) "
    "DO UPDATE SET context = excluded.context, updated_at = excluded.updated_at"
)
LOAD_CONTEXT = "SELECT context FROM podium_thread_contexts WHERE thread_id = ?"
RUN_CONNECTIONS = 2
"""PostgreSQL connections a run's checkpointer pools: ``N`` concurrent runs hold at most 2N."""


class ThreadError(UserError, ValueError):
    """A thread cannot do what was asked; the message names the command that can."""


def checkpoint_db() -> str:
    """Where CLI runs checkpoint: ``$PODIUM_CHECKPOINT_DB``, else a file in the cache dir.

    The variable holds a SQLite path or a ``postgresql://`` URL.
    """
    return os.environ.get("PODIUM_CHECKPOINT_DB") or str(cache_dir() / "checkpoints.sqlite")


def check_stores() -> None:
    """Refuse to start a run whose checkpoint or trajectory server is down: one line, exit 2."""
    check_reachable(checkpoint_db(), SOURCE)
    check_reachable(default_db(), "PODIUM_TRAJECTORY_DB")


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


@contextmanager
def _contexts(location: str | Path) -> Iterator[tuple[Any, str]]:
    """A transaction on the contexts table beside the checkpoints, and its placeholder."""
    if is_postgres(location):
        with connection(str(location), SOURCE) as db:
            db.execute("SELECT pg_advisory_xact_lock(%s)", (advisory_key(CONTEXTS),))
            db.execute(CONTEXTS)
            yield db, "%s"
        return
    with closing(sqlite3.connect(location, timeout=30)) as db, db:
        db.execute(CONTEXTS)
        yield db, "?"


def save_context(location: str | Path, thread_id: str, ctx: Context) -> None:
    """Remember the context ``thread_id`` runs with."""
    with _contexts(location) as (db, mark):
        args = (thread_id, json.dumps(asdict(ctx)), time.time())
        db.execute(SAVE_CONTEXT.replace("?", mark), args)


def load_context(location: str | Path, thread_id: str) -> Context | None:
    """The context ``thread_id`` last ran with, or None."""
    with _contexts(location) as (db, mark):
        row = db.execute(LOAD_CONTEXT.replace("?", mark), (thread_id,)).fetchone()
    if not row:
        return None
    stored = json.loads(row[0])
    return Context(**stored, explicit=frozenset(stored))  # as it ran: the env has no say


_ready: set[str] = set()  # URLs whose checkpoint tables this process has made sure of


async def _setup_once(saver: AsyncPostgresSaver, pool: AsyncConnectionPool, url: str) -> None:
    """Create or migrate the checkpoint tables, one process at a time, once per process.

    The lock is *tried*, not waited for: a session blocked on it would hold a snapshot, and
    the migrations' ``CREATE INDEX CONCURRENTLY`` waits for every such snapshot (a deadlock).
    """
    key = advisory_key(SOURCE)
    while url not in _ready:
        async with pool.connection() as conn:
            row = await (
                await conn.execute("SELECT pg_try_advisory_lock(%s) AS ok", (key,))
            ).fetchone()
            if not row or not row["ok"]:
                await asyncio.sleep(0.05)
                continue
            try:
                await saver.setup()
                _ready.add(url)
            finally:
                await conn.execute("SELECT pg_advisory_unlock(%s)", (key,))


@asynccontextmanager
async def _postgres_saver(url: str) -> AsyncIterator[BaseCheckpointSaver]:
    """LangGraph's PostgreSQL checkpointer on a small pool of its own."""
    kwargs = {"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row}
    pool = AsyncConnectionPool(
        url,
        min_size=1,
        max_size=RUN_CONNECTIONS,
        kwargs=kwargs,
        timeout=WAIT_S,
        check=AsyncConnectionPool.check_connection,
        open=False,
    )
    try:
        async with pool:
            await pool.wait(timeout=WAIT_S)
            saver = AsyncPostgresSaver(pool)  # type: ignore[arg-type]
            await _setup_once(saver, pool, url)
            yield saver
    except psycopg.OperationalError as exc:
        raise unreachable(url, exc, SOURCE) from None


@asynccontextmanager
async def durable_graph(location: str | Path | None = None) -> AsyncIterator[CompiledStateGraph]:
    """The podium graph compiled with a checkpointer at ``location`` (a path or a URL)."""
    location = str(location or checkpoint_db())
    if is_postgres(location):
        async with _postgres_saver(location) as saver:
            yield build_graph().compile(checkpointer=saver, name="podium")
        return
    Path(location).parent.mkdir(parents=True, exist_ok=True)
    async with AsyncSqliteSaver.from_conn_string(location) as saver:
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
    path: str,
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
                f"({usd(waiting['predicted_cost_usd'])}): resume it with "
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
    so a second caller on the same thread, in any process, is refused while this one runs
    (threads checkpointed in PostgreSQL take no lease yet).
    """
    location = checkpoint_db()
    with ExitStack() as stack:
        if not is_postgres(location):  # the lease table lives in the SQLite checkpoint file
            path = Path(location)
            try:  # the lease table is the file's first use: a corrupt or odd file shows here
                path.parent.mkdir(parents=True, exist_ok=True)
                stack.enter_context(thread_lease(path, thread_id, question))
            except (sqlite3.Error, OSError) as exc:
                raise unusable_store(path, exc) from None
        return await _run_leased(location, thread_id, question, ctx, decision, on_step)


async def _run_leased(
    path: str,
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
            raise unusable_store(Path(path), exc) from None
        config = {"configurable": {"thread_id": thread_id}}
        # "sync": the guard's checkpoint (calls admitted at their worst case, leased) is on disk
        # before ``execute`` sends them, so a run killed mid-call is billed on resume.
        async for chunk in graph.astream(
            step.input, config, context=step.context, stream_mode="updates", durability="sync"
        ):
            on_step(chunk)
        snapshot = await graph.aget_state(config)
        return dict(snapshot.values), pending_approval(snapshot)
