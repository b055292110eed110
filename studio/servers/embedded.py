"""The embedded llama.cpp server (:mod:`podium.tools.llamacpp`) run in the foreground.

``podium serve --engine llamacpp`` gives the server its own state files per port, so the
shared server other podium commands start on demand is left untouched. ``--lora PATH`` (or the
config's ``[policy] adapter``) applies a GGUF LoRA (``podium export``) to the policy.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from podium.tools.llamacpp import EmbeddedServer, ServerError, is_server
from podium.tools.paths import cache_dir

from .process import ServeError, ServeSpec, Stop, check_port_free, ignoring_stops, stop_signals

LLAMACPP_LORA = (
    "--lora {value}: llama.cpp applies one GGUF LoRA, to the policy: pass --lora PATH "
    "(from podium export)"
)


def llamacpp_adapter(values: Sequence[str]) -> str:
    """The GGUF LoRA of ``--lora PATH`` (or ``policy=PATH``), else ``[policy] adapter``.

    llama.cpp applies one adapter, to the policy model.
    """
    from podium.tools import load_config

    if not values:
        return load_config().policy.adapter
    name, sep, path = values[0].rpartition("=")
    if len(values) > 1 or (sep and name != "policy"):
        raise ServeError(LLAMACPP_LORA.format(value=" ".join(values)))
    return path


def serve_llamacpp(
    spec: ServeSpec, announce: Callable[[str, list[str], Path], None], adapter: str = ""
) -> int:
    """Run the embedded llama.cpp server until it exits or a stop signal; return an exit code."""
    check_port_free(spec.host, spec.port)
    try:
        server = EmbeddedServer(
            host=spec.host,
            port=spec.port,
            state_dir=cache_dir("serve", f"llamacpp-{spec.port}"),
            owned=True,
            adapter=adapter or None,
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
