"""``podium server status|stop``: the shared embedded llama.cpp server other commands start."""

from __future__ import annotations

import json

import typer

from ..console import console

app = typer.Typer(help="The embedded llama.cpp server.", no_args_is_help=True)


@app.command("status")
def status() -> None:
    """Show the embedded server, if one is running."""
    from podium.tools.llamacpp import EmbeddedServer

    print(json.dumps(EmbeddedServer().status()))


@app.command("stop")
def stop() -> None:
    """Stop the embedded server."""
    from podium.tools.llamacpp import EmbeddedServer

    console.print("stopped" if EmbeddedServer().stop() else "no embedded server was running")
