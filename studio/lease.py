"""One live run per thread, across processes: a lease row beside the checkpoints.

Two ``podium run`` processes on one thread would both call the policy and the tools and both
be billed, and write one trajectory twice. So a run first takes the thread's lease: a row in
``podium_thread_leases`` in the checkpoint file, naming its holder (host, pid, a random token)
and the question. The holder renews the row's heartbeat while the run goes on and deletes the
row at the end. A row is *stale*, and the next caller takes it over, when its heartbeat is
older than :data:`STALE_AFTER_S` or its holder is a dead process on this host; any other row
refuses the caller with a one-line :class:`LeaseError` that names the live run.

The statements are plain SQL (``INSERT ... ON CONFLICT``, ``UPDATE ... WHERE holder = ?``),
and taking the lease is one read-decide-write in a write transaction (``BEGIN IMMEDIATE``
here, ``SELECT ... FOR UPDATE`` on PostgreSQL), so a PostgreSQL checkpointer can keep the
same table.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import closing
from dataclasses import astuple, dataclass
from pathlib import Path

from podium.tools.errors import UserError

LEASES = """
CREATE TABLE IF NOT EXISTS podium_thread_leases (
    thread_id TEXT PRIMARY KEY,
    holder TEXT NOT NULL,
    host TEXT NOT NULL,
    pid INTEGER NOT NULL,
    question TEXT NOT NULL,
    started_at REAL NOT NULL,
    heartbeat_at REAL NOT NULL
)
"""
RENEW_EVERY_S = 5.0
"""How often a live run renews its heartbeat."""
STALE_AFTER_S = 30.0
"""A heartbeat older than this marks a lease stale (its holder hung, or died on another host)."""


class LeaseError(UserError, RuntimeError):
    """The thread runs in another live process; the message names that run."""


@dataclass(frozen=True)
class Lease:
    """One row of the lease table."""

    thread_id: str
    holder: str
    host: str
    pid: int
    question: str
    started_at: float
    heartbeat_at: float


def _connect(path: Path) -> sqlite3.Connection:
    # Autocommit mode: transactions are explicit (BEGIN IMMEDIATE), one per use.
    db = sqlite3.connect(path, timeout=30, isolation_level=None)
    db.execute(LEASES)
    return db


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, owned by another user
        return True
    return True


def is_stale(lease: Lease, now: float) -> bool:
    """Whether ``lease`` may be taken over: no heartbeat for a while, or its holder is dead."""
    if now - lease.heartbeat_at > STALE_AFTER_S:
        return True
    return lease.host == socket.gethostname() and not _pid_alive(lease.pid)


def holder_of(path: Path, thread_id: str) -> Lease | None:
    """The lease row of ``thread_id``, live or stale, or None."""
    with closing(_connect(path)) as db:
        row = db.execute(
            "SELECT * FROM podium_thread_leases WHERE thread_id = ?", (thread_id,)
        ).fetchone()
    return Lease(*row) if row else None


def _refusal(lease: Lease, now: float) -> LeaseError:
    question = " ".join(lease.question.split())
    shown = repr(question[:60] + ("…" if len(question) > 60 else "")) if question else "a resume"
    return LeaseError(
        f"thread {lease.thread_id} is running in another process (pid {lease.pid} on "
        f"{lease.host}, {shown}, started {now - lease.started_at:.0f}s ago): wait for it to "
        f"end, or if that process is gone, retry in {STALE_AFTER_S:.0f}s"
    )


def acquire(path: Path, thread_id: str, question: str) -> Lease:
    """Take the lease of ``thread_id`` or raise :class:`LeaseError` naming its live holder."""
    now = time.time()
    mine = Lease(
        thread_id,
        f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex}",
        socket.gethostname(),
        os.getpid(),
        question,
        now,
        now,
    )
    with closing(_connect(path)) as db:
        db.execute("BEGIN IMMEDIATE")  # one writer decides at a time
        try:
            row = db.execute(
                "SELECT * FROM podium_thread_leases WHERE thread_id = ?", (thread_id,)
            ).fetchone()
            if row and not is_stale(Lease(*row), now):
                raise _refusal(Lease(*row), now)
            db.execute(
                "INSERT INTO podium_thread_leases VALUES (?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (thread_id) DO UPDATE SET holder = excluded.holder, "
                "host = excluded.host, pid = excluded.pid, question = excluded.question, "
                "started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at",
                astuple(mine),
            )
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
    return mine


def renew(path: Path, lease: Lease) -> bool:
    """Refresh the heartbeat of ``lease``; False when another process took it over."""
    with closing(_connect(path)) as db:
        done = db.execute(
            "UPDATE podium_thread_leases SET heartbeat_at = ? WHERE thread_id = ? AND holder = ?",
            (time.time(), lease.thread_id, lease.holder),
        )
        return done.rowcount == 1


def release(path: Path, lease: Lease) -> None:
    """Delete ``lease`` if it is still ours."""
    with closing(_connect(path)) as db:
        db.execute(
            "DELETE FROM podium_thread_leases WHERE thread_id = ? AND holder = ?",
            (lease.thread_id, lease.holder),
        )


@contextlib.contextmanager
def thread_lease(path: Path, thread_id: str, question: str) -> Iterator[Lease]:
    """Hold the lease of ``thread_id`` for the block, renewed by a daemon thread.

    The heartbeat runs in its own OS thread, so a node that blocks the event loop (a long
    sandbox or expert call) does not let the lease go stale.
    """
    lease = acquire(path, thread_id, question)
    stop = threading.Event()

    def heartbeat() -> None:
        while not stop.wait(RENEW_EVERY_S):
            with contextlib.suppress(sqlite3.Error):
                if not renew(path, lease):
                    return  # taken over after a stall; the new holder's run decides

    beat = threading.Thread(target=heartbeat, name=f"lease-{thread_id}", daemon=True)
    beat.start()
    try:
        yield lease
    finally:
        stop.set()
        beat.join(timeout=RENEW_EVERY_S)
        with contextlib.suppress(sqlite3.Error):
            release(path, lease)
