"""A server child in the foreground: what to serve, a free port, stop signals and a clean stop.

``podium serve`` owns the server it starts: a busy port fails before anything starts, a stop
signal (Ctrl-C, SIGTERM, SIGHUP) stops the server with all its children, and a second signal
during that stop cannot leave it half done.
"""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from podium.tools.errors import UserError

DEFAULT_PORT = 8000
STOP_GRACE_S = 20.0
PORT_BUSY = "port {port} on {host} is already in use: stop what listens there or pass --port"
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


class ServeError(UserError, RuntimeError):
    """A mistake in ``podium serve``'s arguments or setup; one line, exit code 2."""


class Stop(Exception):
    """A stop signal (SIGINT, SIGTERM, SIGHUP) arrived."""


@dataclass
class ServeSpec:
    """What to serve and where."""

    model: str
    served_model_name: str = "policy"
    loras: dict[str, Path] = field(default_factory=dict)
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    extra: list[str] = field(default_factory=list)
    timeout: float = 600.0
    tensor_parallel_size: int = 1  # GPUs one model replica is split over (vLLM)
    data_parallel_size: int = 1  # replicas behind the one endpoint (vLLM)


def check_port_free(host: str, port: int) -> None:
    """Raise :class:`ServeError` naming the port when something already listens there.

    Only "address in use" means the port is taken; a host that is no address at all, or
    none of this machine's, gets its own message (it is the host that needs fixing).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as probe:
        # As servers do: SO_REUSEADDR ignores TIME_WAIT leftovers, a listener still fails it.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except socket.gaierror:
            raise ServeError(
                f"--host {host!r} is not a valid IP address or host name: pass e.g. 127.0.0.1"
            ) from None
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ServeError(PORT_BUSY.format(port=port, host=host)) from None
            raise ServeError(
                f"cannot listen on {host} port {port} ({exc.strerror}): pass --host an "
                "address of this machine (e.g. 127.0.0.1) or another --port"
            ) from None


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group, SIGKILL what is left after a grace period."""
    pgid = process.pid  # started with start_new_session: it leads its own group
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, sig)
        end = time.monotonic() + STOP_GRACE_S
        while time.monotonic() < end:
            process.poll()  # reap the leader so the group can empty
            if process.returncode is not None and not _group_alive(pgid):
                return
            time.sleep(0.1)
    process.wait()


def endpoint_text(engine: str, url: str, models: list[str], log: Path | None) -> str:
    """What ``podium serve`` prints once the server answers: the endpoint and how to use it."""
    lines = [
        f"podium serve: {engine} is serving {', '.join(models)} at {url}",
        "point podium at it with the environment:",
        f"  export PODIUM_POLICY_BASE_URL={url}",
        f"  export PODIUM_POLICY_MODEL={models[0]}",
        "or in ~/.config/podium/config.toml:",
        "  [policy]",
        f'  base_url = "{url}"',
        f'  model = "{models[0]}"',
    ]
    if log is not None:
        lines.append(f"server log: {log}")
    return "\n".join([*lines, "Ctrl-C stops the server."])


@contextlib.contextmanager
def ignoring_stops() -> Iterator[None]:
    """Ignore further stop signals while the server is being stopped (no half-done stop)."""
    old = {s: signal.signal(s, signal.SIG_IGN) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)


@contextlib.contextmanager
def stop_signals() -> Iterator[None]:
    """Turn SIGINT, SIGTERM and SIGHUP into :class:`Stop` while serving.

    SIGINT is caught even where the shell ignores it (a job started with ``&``): stopping is
    what it asks for. An ignored SIGHUP (``nohup``) stays ignored.
    """

    def handler(signum: int, _frame: Any) -> None:
        raise Stop(signum)

    stops = [signal.SIGINT, signal.SIGTERM]
    if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
        stops.append(signal.SIGHUP)
    old = {s: signal.signal(s, handler) for s in stops}
    try:
        yield
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)
