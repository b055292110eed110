"""The embedded llama.cpp server (:mod:`podium.tools.llamacpp`) run in the foreground.

``podium serve --engine llamacpp`` gives the server its own state files per port, so the
shared server other podium commands start on demand is left untouched.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from pathlib import Path

from podium.tools.llamacpp import EmbeddedServer, ServerError, is_server
from podium.tools.paths import cache_dir

from .process import ServeError, ServeSpec, Stop, check_port_free, ignoring_stops, stop_signals


def serve_llamacpp(spec: ServeSpec, announce: Callable[[str, list[str], Path], None]) -> int:
    """Run the embedded llama.cpp server until it exits or a stop signal; return an exit code."""
    check_port_free(spec.host, spec.port)
    try:
        server = EmbeddedServer(
            host=spec.host,
            port=spec.port,
            state_dir=cache_dir("serve", f"llamacpp-{spec.port}"),
            owned=True,
        )
    except ValueError as exc:
        raise ServeError(str(exc)) from None
    try:
        with stop_signals():
            url = server.ensure(timeout=spec.timeout)
            announce(url, server.models, server.log_path)
            pid = (server.status() or {}).get("pid", -1)
            while is_server(pid):
                time.sleep(0.5)
            print("podium serve: the llama.cpp server exited", file=sys.stderr)
            return 1
    except Stop:
        return 0
    except ServerError as exc:
        raise ServeError(str(exc)) from None
    finally:
        with ignoring_stops():
            server.stop()
