"""``podium server status|stop``: the shared embedded llama.cpp server other commands start."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from ..console import console

app = typer.Typer(help="The embedded llama.cpp server.", no_args_is_help=True)


def _servers() -> list[Any]:
    """The plain embedded server and, when the config sets ``[policy] adapter``, the adapted one."""
    from podium.tools import load_config
    from podium.tools.llamacpp import EmbeddedServer

    adapter = load_config().policy.adapter
    servers = [EmbeddedServer()]
    if adapter and Path(adapter).is_file():  # a missing adapter file has no server to stop
        servers.append(EmbeddedServer(adapter=adapter))
    return servers


@app.command("status")
def status() -> None:
    """Show the embedded server (the adapted one when [policy] adapter is set), if running."""
    print(json.dumps(_servers()[-1].status()))


@app.command("stop")
def stop() -> None:
    """Stop the embedded server (and the adapted one when [policy] adapter is set)."""
    stopped = [server.stop() for server in _servers()]
    console.print("stopped" if any(stopped) else "no embedded server was running")
