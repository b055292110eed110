"""Helpers for the OpenAI-compatible servers podium starts on this machine (llama.cpp, vLLM).

Shared by the embedded server (:mod:`podium.tools.llamacpp`), ``podium serve`` and
``podium studio``: URLs, free ports, which models a server lists, the log line that says why a
server died, and tying a server's life to the process that started it.
"""

from __future__ import annotations

import contextlib
import ctypes
import ipaddress
import json
import re
import signal
import socket
import urllib.request

DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
"""An opener that never goes through a proxy: the servers are on loopback."""

_ERROR_LINE = re.compile(r"error|exception|failed", re.IGNORECASE)


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (the only kind podium's servers bind)."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def base_url(host: str, port: int) -> str:
    """The OpenAI-compatible base URL of a server on ``host:port``."""
    return f"http://[{host}]:{port}/v1" if ":" in host else f"http://{host}:{port}/v1"


def free_port(host: str = "127.0.0.1") -> int:
    """A port nothing listens on now, chosen by the kernel."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def served_models(url: str, timeout: float = 5.0) -> set[str]:
    """Model ids listed by ``GET {url}/models``; empty if nothing (sensible) answers there.

    Raises:
        TimeoutError: Something accepted the connection but did not answer in time.
    """
    try:
        with DIRECT.open(f"{url}/models", timeout=timeout) as response:
            return {entry["id"] for entry in json.load(response)["data"]}
    except TimeoutError:
        raise
    except OSError as error:  # URLError wraps a connect timeout in .reason
        if isinstance(getattr(error, "reason", None), TimeoutError):
            raise TimeoutError(str(error)) from None
        return set()
    except (ValueError, KeyError, TypeError):
        return set()


def telling_line(log: str) -> str:
    """The last line of ``log`` that reports an error, else its last line."""
    lines = [line.strip() for line in log.splitlines() if line.strip()]
    errors = [line for line in lines if _ERROR_LINE.search(line)]
    return (errors or lines or ["(empty log)"])[-1]


def die_with_parent() -> None:
    """In a child (``preexec_fn``): SIGTERM when its parent dies, even by SIGKILL (Linux).

    The kernel sends it when the *thread* that forked the child exits, so start such servers
    from the main thread.
    """
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
