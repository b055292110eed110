"""``podium studio``: LangGraph's dev server (the API behind LangGraph Studio) run offline.

The server is ``langgraph dev`` from ``langgraph-cli[inmem]``: podium only fixes how it is started
here (loopback, a chosen free port, no browser, no reload, no analytics or version check) and
then *becomes* it (``exec``), so Ctrl-C and signals reach the server itself and nothing is left
behind.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import Annotated

import typer

from podium.tools.localhost import free_port

from .serve import ServeError, check_port_free

OFFLINE_ENV = {
    "LANGGRAPH_CLI_NO_ANALYTICS": "1",
    "LANGGRAPH_NO_VERSION_CHECK": "true",
    "LANGSMITH_TRACING": "false",
}
"""Environment of an offline dev server (DESIGN §5); tracing stays on only with a LangSmith key."""
STUDIO_URL = "https://smith.langchain.com/studio/?baseUrl=http://{host}:{port}"


def dev_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The dev server's environment: the caller's, offline unless a LangSmith key is set."""
    env = dict(os.environ if base is None else base)
    offline = dict(OFFLINE_ENV)
    if env.get("LANGSMITH_API_KEY"):
        offline.pop("LANGSMITH_TRACING")
    return env | offline


def dev_command(config: Path, host: str, port: int) -> list[str]:
    """The ``langgraph dev`` command line for ``config``."""
    exe = Path(sys.executable).with_name("langgraph")
    langgraph = str(exe) if exe.exists() else shutil.which("langgraph")
    if langgraph is None:
        raise ServeError("the langgraph CLI is not installed: pip install 'langgraph-cli[inmem]'")
    return [
        langgraph,
        "dev",
        "--config",
        str(config),
        "--host",
        host,
        "--port",
        str(port),
        "--no-browser",
        "--no-reload",
    ]


def register(app: typer.Typer) -> None:
    """Add ``podium studio`` to the CLI."""

    @app.command()
    def studio(
        port: Annotated[int, typer.Option(help="Port; 0 = a free one.")] = 0,
        host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
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
        os.execve(argv[0], argv, dev_env())
