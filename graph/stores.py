"""The trajectory store: one interface, a SQLite file (embedded default) or a PostgreSQL server.

``TrajectoryStore(where)`` opens the backend ``where`` names: a ``postgresql://`` URL, a path,
or nothing for ``$PODIUM_TRAJECTORY_DB`` (else ``trajectories.sqlite`` in the cache). Both keep
the same rows and answer the same queries; a record is stored whole or not at all.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from pathlib import Path
from typing import Any, ClassVar

from podium.tools.paths import PathError, cache_dir, writable_file

from . import database

SQLITE_SCHEMA = """
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
# The record is JSON text, exact (Postgres' json operators refuse an escaped NUL); ``keys``
# lists its top-level keys with a value, for ``records(key)``.
POSTGRES_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS trajectories (
        id TEXT PRIMARY KEY,
        created_at DOUBLE PRECISION NOT NULL,
        question TEXT NOT NULL,
        answer TEXT NOT NULL,
        stopped_by TEXT NOT NULL,
        cost_usd DOUBLE PRECISION NOT NULL,
        latency_s DOUBLE PRECISION NOT NULL,
        turns INTEGER NOT NULL,
        profile TEXT NOT NULL,
        record TEXT NOT NULL,
        keys TEXT[] NOT NULL
    )""",
    "CREATE INDEX IF NOT EXISTS trajectories_created ON trajectories(created_at)",
)
COLUMNS = "id, created_at, question, answer, stopped_by, cost_usd, latency_s, turns, profile"
SOURCE = "PODIUM_TRAJECTORY_DB (or the store's URL)"
WAL_ATTEMPTS = 20
FIX_STORE = "move it aside or use another file ($PODIUM_TRAJECTORY_DB, --db, --out)"


def default_db() -> str:
    """The default store: ``$PODIUM_TRAJECTORY_DB``, else ``trajectories.sqlite`` in the cache."""
    return os.environ.get("PODIUM_TRAJECTORY_DB") or str(cache_dir() / "trajectories.sqlite")


def _row(record: dict[str, Any]) -> tuple[Any, ...]:
    return (
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


class TrajectoryStore:
    """Trajectories by id; ``TrajectoryStore(where)`` picks the backend ``where`` names.

    Not an ``ABC``: the base class is what callers instantiate (``__new__`` returns the
    backend's subclass), and each backend implements every method below.
    """

    location: str
    """The path or URL the store was opened with (pass it on as ``Context.trajectory_db``)."""

    def __new__(cls, where: str | Path | None = None) -> TrajectoryStore:  # noqa: D102
        if cls is TrajectoryStore:
            location = str(where or default_db())
            cls = PostgresTrajectories if database.is_postgres(location) else SqliteTrajectories
        return super().__new__(cls)

    def save(self, record: dict[str, Any]) -> None:
        """Insert or replace one record."""
        raise NotImplementedError

    def get(self, trajectory_id: str) -> dict[str, Any] | None:
        """The record with this id, or None."""
        raise NotImplementedError

    def latest(self, n: int = 1) -> list[dict[str, Any]]:
        """The ``n`` most recent records, newest first."""
        raise NotImplementedError

    def records(self, key: str = "") -> list[dict[str, Any]]:
        """Every record, oldest first; with ``key``, only records that hold that top-level key."""
        raise NotImplementedError

    def __len__(self) -> int:
        raise NotImplementedError


class SqliteTrajectories(TrajectoryStore):
    """Trajectories in one SQLite file (WAL): a killed writer never corrupts earlier rows."""

    def __init__(self, where: str | Path | None = None) -> None:
        self.path = Path(where or default_db())
        self.location = str(self.path)
        writable_file(self.path, "trajectory store", FIX_STORE)
        # WAL is a property of the file, set once. Switching to it answers SQLITE_BUSY at once,
        # without the busy timeout, when another run opens the new file at the same moment.
        for attempt in range(WAL_ATTEMPTS):
            try:
                with closing(sqlite3.connect(self.path, timeout=30)) as db:
                    db.execute("PRAGMA journal_mode=WAL")
                    with db:
                        db.executescript(SQLITE_SCHEMA)
                break
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or attempt == WAL_ATTEMPTS - 1:
                    raise PathError(f"trajectory store {self.path}: {exc}: {FIX_STORE}") from None
                time.sleep(0.05 * (attempt + 1))
            except sqlite3.DatabaseError as exc:  # not SQLite at all, or a damaged file
                raise PathError(
                    f"trajectory store {self.path} is not a usable SQLite file ({exc}): {FIX_STORE}"
                ) from None

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        # One transaction per use: a record is stored whole or not at all.
        with closing(sqlite3.connect(self.path, timeout=30)) as db, db:
            yield db

    def save(self, record: dict[str, Any]) -> None:  # noqa: D102
        with self._connect() as db:
            sql = "INSERT OR REPLACE INTO trajectories VALUES (?,?,?,?,?,?,?,?,?,?)"
            db.execute(sql, _row(record))

    def get(self, trajectory_id: str) -> dict[str, Any] | None:  # noqa: D102
        with self._connect() as db:
            sql = "SELECT record FROM trajectories WHERE id = ?"
            row = db.execute(sql, (trajectory_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def latest(self, n: int = 1) -> list[dict[str, Any]]:  # noqa: D102
        with self._connect() as db:
            sql = "SELECT record FROM trajectories ORDER BY created_at DESC LIMIT ?"
            rows = db.execute(sql, (n,)).fetchall()
        return [json.loads(r[0]) for r in rows]

    def records(self, key: str = "") -> list[dict[str, Any]]:  # noqa: D102
        where = "WHERE json_extract(record, ?) IS NOT NULL" if key else ""
        args = (f'$."{key}"',) if key else ()
        with self._connect() as db:
            sql = f"SELECT record FROM trajectories {where} ORDER BY created_at"
            rows = db.execute(sql, args).fetchall()
        return [json.loads(r[0]) for r in rows]

    def __len__(self) -> int:
        with self._connect() as db:
            return int(db.execute("SELECT COUNT(*) FROM trajectories").fetchone()[0])


class PostgresTrajectories(TrajectoryStore):
    """Trajectories on a PostgreSQL server, shared by every process and machine using it."""

    _ready: ClassVar[set[str]] = set()  # URLs whose schema this process has made sure of

    def __init__(self, where: str | Path | None = None) -> None:
        self.location = str(where or default_db())
        if self.location in self._ready:
            return
        with self._connect() as db:
            # Concurrent first runs would race on CREATE TABLE IF NOT EXISTS: one at a time.
            db.execute("SELECT pg_advisory_xact_lock(%s)", (database.advisory_key("trajectories"),))
            for statement in POSTGRES_SCHEMA:
                db.execute(statement)
        self._ready.add(self.location)

    def _connect(self) -> Any:
        return database.connection(self.location, SOURCE)

    def save(self, record: dict[str, Any]) -> None:  # noqa: D102
        updates = ", ".join(
            f"{c} = EXCLUDED.{c}" for c in [*COLUMNS.split(", ")[1:], "record", "keys"]
        )
        sql = (
            f"INSERT INTO trajectories ({COLUMNS}, record, keys) VALUES ({', '.join(['%s'] * 11)})"
            f" ON CONFLICT (id) DO UPDATE SET {updates}"
        )
        # TEXT refuses NUL: the columns get U+FFFD, the JSON record keeps it escaped, exact.
        row = [v.replace("\0", "\ufffd") if isinstance(v, str) else v for v in _row(record)]
        row.append([k for k, v in record.items() if v is not None])
        with self._connect() as db:
            db.execute(sql, row)

    def get(self, trajectory_id: str) -> dict[str, Any] | None:  # noqa: D102
        with self._connect() as db:
            sql = "SELECT record FROM trajectories WHERE id = %s"
            row = db.execute(sql, (trajectory_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def latest(self, n: int = 1) -> list[dict[str, Any]]:  # noqa: D102
        with self._connect() as db:
            sql = "SELECT record FROM trajectories ORDER BY created_at DESC LIMIT %s"
            rows = db.execute(sql, (n,)).fetchall()
        return [json.loads(r[0]) for r in rows]

    def records(self, key: str = "") -> list[dict[str, Any]]:  # noqa: D102
        where = "WHERE %s = ANY(keys)" if key else ""
        with self._connect() as db:
            sql = f"SELECT record FROM trajectories {where} ORDER BY created_at"
            rows = db.execute(sql, (key,) if key else ()).fetchall()
        return [json.loads(r[0]) for r in rows]

    def __len__(self) -> int:
        with self._connect() as db:
            return int(db.execute("SELECT COUNT(*) FROM trajectories").fetchone()[0])
