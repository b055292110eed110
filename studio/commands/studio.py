"""``podium studio``: LangGraph's dev server for Studio on this machine, offline, loopback only."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from podium.tools.localhost import free_port

from ..servers import STUDIO_URL, ServeError, check_port_free, dev_command, dev_env
from .options import Host


def studio(
    port: Annotated[int, typer.Option(help="Port; 0 = a free one.")] = 0,
    host: Host = "127.0.0.1",
    config: Annotated[Path, typer.Option(help="The langgraph.json to serve.")] = Path(
        "langgraph.json"
    ),
) -> None:
    """Run LangGraph's dev server for Studio on this machine (offline, loopback only)."""
    if not config.is_file():
        raise ServeError(
            f"{config} not found: run 'podium studio' in the podium checkout or pass --config"
        )
    port = port or free_port(host)
    check_port_free(host, port)
    argv = dev_command(config.resolve(), host, port)
    print(f"podium studio: API http://{host}:{port} (docs /docs)", flush=True)
    print(f"podium studio: Studio UI {STUDIO_URL.format(host=host, port=port)}", flush=True)
    os.chdir(config.resolve().parent)
    os.execve(argv[0], argv, dev_env())  # becomes the server: signals reach it directly
