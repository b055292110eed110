"""Graph runs spread over a Ray cluster, for ``podium collect --ray`` and ``podium eval --ray``.

Each Ray worker is an actor that runs podium's own graph against the configured policy
endpoint, at most ``in_flight`` runs at once; the driver keeps every worker that many runs
ahead and hands each result to a callback (progress, results file). A worker that dies is
restarted by Ray and its unfinished runs are retried there (``max_restarts`` and
``max_task_retries``), so a run may execute twice: callers give each run a fixed id and write
its record keyed by that id (``TrajectoryStore.save`` replaces), so it is stored exactly once.
"""

from __future__ import annotations

import asyncio
import importlib.util
import inspect
import logging
import os
import socket
import sys
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from podium.tools.errors import UserError

LOCAL = "local"  # ``--ray local``: start a one-machine cluster for the command
MAX_RESTARTS = 4  # a worker killed more often than this fails the collection
MAX_RETRIES = 4  # a run whose worker died is retried this often on the restarted worker
PROBE_TIMEOUT_S = 5.0


class RayError(UserError, ValueError):
    """Ray is missing, the cluster does not answer, or a local one would not stay on loopback."""


@dataclass(frozen=True)
class RayPlan:
    """Where and how wide to spread runs."""

    address: str = LOCAL
    workers: int = 2
    in_flight: int = 4  # runs in flight at once on each worker


def check_address(address: str) -> None:
    """Refuse a cluster address whose head does not accept a TCP connection, in seconds.

    Called while a request is checked, before any run or local cluster starts; ``ray.init``
    itself retries an unreachable address for a long time before failing.

    Raises:
        RayError: ray is not installed, or the address is malformed or does not answer.
    """
    if importlib.util.find_spec("ray") is None:
        raise RayError("ray is not installed: pip install 'podium[ray]'")
    if address in ("", LOCAL):
        return
    parts = urlsplit(address if "://" in address else f"tcp://{address}")
    if not parts.hostname or not parts.port:
        raise RayError(
            f"Ray address {address!r} is not HOST:PORT: fix --ray (HOST:PORT, or 'local')"
        )
    try:
        with socket.create_connection((parts.hostname, parts.port), timeout=PROBE_TIMEOUT_S):
            return
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
    raise RayError(
        f"Ray cluster at {address} is unreachable ({reason}): start it with `ray start --head` "
        "or fix --ray"
    )


# A local cluster is a one-machine Ray, every server on the loopback address. Ray 2.60 has no
# ray.init option for it: ``_node_ip_address="127.0.0.1"`` is turned into the host's routable
# address (``resolve_ip_for_localhost``), and by default GCS, raylets and workers listen on
# ``::`` (every interface). Ray's single-node mode, which it reads from this variable when it
# is imported, picks 127.0.0.1 as the node address and binds all of them there
# (docs/security.md#ray, tested in tests/integration/test_ray.py).
LOOPBACK_ENV = {"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0"}
LOOPBACK = ("127.0.0.1", "::1")


def connect(plan: RayPlan) -> None:
    """Join the cluster at ``plan.address``, or start a local one sized for ``plan.workers``.

    A local cluster listens on 127.0.0.1 only, without the dashboard, and keeps Ray's token
    authentication (asked for explicitly, so Ray does not warn that it turned it on).

    Raises:
        RayError: ray is not installed, the address does not answer, or a local cluster
            would not be confined to 127.0.0.1.
    """
    if plan.workers < 1 or plan.in_flight < 1:
        raise RayError("--ray-workers and --concurrency must be at least 1")
    check_address(plan.address)  # also finds a missing ray package, before it is imported
    local = plan.address in ("", LOCAL)
    if local and "ray" not in sys.modules:  # Ray reads both when imported, not later
        os.environ.update(LOOPBACK_ENV)
        os.environ.setdefault("RAY_AUTH_MODE", "token")
    import ray

    if ray.is_initialized():
        return
    quiet = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING}
    if local:
        ray.init(num_cpus=plan.workers, **quiet)
        node = ray.util.get_node_ip_address()
        if node not in LOOPBACK:
            ray.shutdown()
            raise RayError(
                f"a local Ray cluster would listen on {node}, not 127.0.0.1 (ray was imported "
                "before podium set RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0): export it, or start a "
                "cluster with `ray start --head` and pass its address to --ray"
            )
        return
    try:
        ray.init(address=plan.address, **quiet)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        fix = f"cannot join the Ray cluster at {plan.address} ({first}): fix --ray"
        raise RayError(fix) from None


class RunWorker:
    """A Ray actor (an asyncio actor: runs overlap on one event loop and its threads)."""

    async def run(self, fn: Callable[..., Any], args: tuple[Any, ...]) -> Any:
        """``fn(*args)``: awaited when it is a coroutine function, else on a thread."""
        if inspect.iscoroutinefunction(fn):
            return await fn(*args)
        return await asyncio.to_thread(fn, *args)

    async def pid(self) -> int:
        """The worker's process id (tests kill it)."""
        return os.getpid()


def start_workers(plan: RayPlan) -> list[Any]:
    """``plan.workers`` restartable :class:`RunWorker` actors on the connected cluster."""
    import ray

    actor = ray.remote(RunWorker).options(
        num_cpus=1,
        max_concurrency=plan.in_flight,
        max_restarts=MAX_RESTARTS,
        max_task_retries=MAX_RETRIES,
    )
    return [actor.remote() for _ in range(plan.workers)]


def run_all(
    fn: Callable[..., Any],
    jobs: Sequence[tuple[Any, ...]],
    workers: list[Any],
    in_flight: int,
    on_result: Callable[[Any], None],
) -> None:
    """Run ``fn(*job)`` for every job on ``workers``, ``in_flight`` at a time on each.

    ``on_result`` sees each result once, in the driver, as it arrives. A run that raises
    raises here (as Ray's wrapper of the run's exception).
    """
    import ray

    queue = deque(jobs)
    pending: dict[Any, Any] = {}

    def submit(worker: Any) -> None:
        pending[worker.run.remote(fn, queue.popleft())] = worker

    for worker in workers:
        for _ in range(in_flight):
            if queue:
                submit(worker)
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        worker = pending.pop(ready[0])
        on_result(ray.get(ready[0]))
        if queue:
            submit(worker)


def run_on_ray(
    fn: Callable[..., Any],
    jobs: Sequence[tuple[Any, ...]],
    plan: RayPlan,
    on_result: Callable[[Any], None],
) -> None:
    """Connect, start the workers, run every job, and stop the workers (not the cluster)."""
    import ray

    connect(plan)
    workers = start_workers(plan)
    try:
        run_all(fn, jobs, workers, plan.in_flight, on_result)
    finally:
        for worker in workers:
            ray.kill(worker)
