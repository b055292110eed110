"""The trajectory record every run writes, and the SQLite store that keeps them for training."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, messages_to_dict
from langchain_core.tools import BaseTool
from langgraph.runtime import Runtime

from podium.tools.paths import cache_dir

from .context import Context, context_of
from .render import OFFERED_KEY, policy_tools, tool_schemas
from .resources import resolve
from .state import State, spent

SCHEMA = """
CREATE TABLE IF NOT EXISTS trajectories (
    id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    question TEXT NOT NULL,
    answer TEXT NOT NULL,
    stopped_by TEXT NOT NULL,
    cost_usd REAL NOT NULL,
    latency_s REAL NOT NULL,
    turns INTEGER NOT NULL,
    profile TEXT NOT NULL,
    record TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS trajectories_created ON trajectories(created_at);
"""
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


def default_db() -> Path:
    """The default store: ``$PODIUM_TRAJECTORY_DB``, else ``trajectories.sqlite`` in the cache."""
    return Path(os.environ.get("PODIUM_TRAJECTORY_DB") or cache_dir() / "trajectories.sqlite")


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


WAL_ATTEMPTS = 20


class TrajectoryStore:
    """Trajectories in one SQLite file (WAL): a killed writer never corrupts earlier rows."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else default_db()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # WAL is a property of the file, set once. Switching to it answers SQLITE_BUSY at once,
        # without the busy timeout, when another run opens the new file at the same moment.
        for attempt in range(WAL_ATTEMPTS):
            try:
                with closing(sqlite3.connect(self.path, timeout=30)) as db:
                    db.execute("PRAGMA journal_mode=WAL")
                    with db:
                        db.executescript(SCHEMA)
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == WAL_ATTEMPTS - 1:
                    raise
                time.sleep(0.05 * (attempt + 1))

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # One transaction per use: a record is stored whole or not at all.
        with closing(sqlite3.connect(self.path, timeout=30)) as db, db:
            yield db

    def save(self, record: dict[str, Any]) -> None:
        """Insert or replace one record."""
        row = (
            record["id"],
            record["started_at"] or time.time(),
            record["question"],
            record["answer"],
            record["stopped_by"],
            record["cost_usd"],
            record["latency_s"],
            record["turns"],
            record["context"]["profile"],
            json.dumps(record, default=str),
        )
        with self._connect() as db:
            db.execute("INSERT OR REPLACE INTO trajectories VALUES (?,?,?,?,?,?,?,?,?,?)", row)

    def get(self, trajectory_id: str) -> dict[str, Any] | None:
        """The record with this id, or None."""
        with self._connect() as db:
            row = db.execute(
                "SELECT record FROM trajectories WHERE id = ?", (trajectory_id,)
            ).fetchone()
        return json.loads(row[0]) if row else None

    def latest(self, n: int = 1) -> list[dict[str, Any]]:
        """The ``n`` most recent records, newest first."""
        with self._connect() as db:
            rows = db.execute(
                "SELECT record FROM trajectories ORDER BY created_at DESC LIMIT ?", (n,)
            ).fetchall()
        return [json.loads(r[0]) for r in rows]

    def records(self, key: str = "") -> list[dict[str, Any]]:
        """Every record, oldest first; with ``key``, only records that hold that top-level key."""
        where = "WHERE json_extract(record, ?) IS NOT NULL" if key else ""
        args = (f'$."{key}"',) if key else ()
        with self._connect() as db:
            rows = db.execute(
                f"SELECT record FROM trajectories {where} ORDER BY created_at", args
            ).fetchall()
        return [json.loads(r[0]) for r in rows]

    def __len__(self) -> int:
        with self._connect() as db:
            return int(db.execute("SELECT COUNT(*) FROM trajectories").fetchone()[0])


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
