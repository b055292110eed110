"""Where runs are kept: a SQLite file (the embedded default) or a PostgreSQL server a team shares.

A store location is a path or a ``postgresql://`` URL. For PostgreSQL each process keeps one
psycopg connection pool per URL; a pooled connection is checked before use, so a server killed
and restarted between runs costs one error, not a process full of dead connections. A server
that cannot be reached is a :class:`DatabaseError`: one line naming the server and the fix.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool

from podium.tools.errors import UserError

SCHEMES = ("postgresql://", "postgres://")
POOL_SIZE = 8
"""Connections per URL and process: runs hold one only for a statement or two."""
WAIT_S = 10.0
"""How long a run waits for a connection before the server counts as unreachable."""

# The pool's workers log each failed reconnection; the error the caller gets says it once.
logging.getLogger("psycopg").addHandler(logging.NullHandler())

_pools: dict[tuple[int, str], ConnectionPool] = {}
_lock = threading.Lock()


class DatabaseError(UserError, RuntimeError):
    """The database of a store cannot be reached; the message names the server and the fix."""


def is_postgres(location: str | Path | None) -> bool:
    """Whether ``location`` is a PostgreSQL URL (else it is a SQLite file path)."""
    return str(location or "").startswith(SCHEMES)


def describe(url: str) -> str:
    """``url`` without its password, for messages and logs."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "postgresql://(unparsable URL)"
    host, port = parts.get("host", "localhost"), parts.get("port", "5432")
    user = f"{parts['user']}@" if parts.get("user") else ""
    return f"postgresql://{user}{host}:{port}/{parts.get('dbname', '')}"


def unreachable(url: str, exc: BaseException, source: str) -> DatabaseError:
    """The one-line error for ``url`` failing with ``exc``; ``source`` names where it was set."""
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return DatabaseError(
        f"cannot reach the database {describe(url)} ({reason.rstrip('.')}): "
        f"start the server or fix {source}"
    )


def check_reachable(location: str | Path | None, source: str, timeout_s: float = 5.0) -> None:
    """Fail fast, before any run starts, when ``location`` is a PostgreSQL server that is down.

    Raises:
        DatabaseError: the server refuses, times out or rejects the URL.
    """
    if not is_postgres(location):
        return
    url = str(location)
    try:
        with psycopg.connect(url, connect_timeout=max(1, round(timeout_s))) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        raise unreachable(url, exc, source) from None


def pool(url: str) -> ConnectionPool:
    """This process's connection pool for ``url`` (a forked child opens its own)."""
    key = (os.getpid(), url)
    with _lock:
        if key not in _pools:
            _pools[key] = ConnectionPool(
                url,
                min_size=1,
                max_size=POOL_SIZE,
                timeout=WAIT_S,
                check=ConnectionPool.check_connection,
                name=f"podium-{len(_pools)}",
                open=True,
            )
        return _pools[key]


@contextmanager
def connection(url: str, source: str) -> Iterator[psycopg.Connection]:
    """A pooled connection to ``url`` in one transaction (committed on success).

    Raises:
        DatabaseError: the server is down or went away during the transaction.
    """
    try:
        with pool(url).connection() as conn:
            yield conn
    except psycopg.OperationalError as exc:
        _discard(url)  # its reconnection backs off for minutes: the next use starts afresh
        raise unreachable(url, exc, source) from None


def _discard(url: str) -> None:
    with _lock:
        stale = _pools.pop((os.getpid(), url), None)
    if stale is not None:
        stale.close(timeout=0)


def advisory_key(name: str) -> int:
    """A stable 63-bit key for ``pg_advisory_lock``: concurrent first runs create a schema once."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big") >> 1
