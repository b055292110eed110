"""LangGraph's dev server (the API behind LangGraph Studio), run offline for ``podium studio``.

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

from .process import ServeError

OFFLINE_ENV = {
    "LANGGRAPH_CLI_NO_ANALYTICS": "1",
    "LANGGRAPH_NO_VERSION_CHECK": "true",
    "LANGSMITH_TRACING": "false",
}
"""Environment of an offline dev server: no analytics, no version check, no tracing.

Tracing stays on only when a LangSmith key is set (then the user asked for it).
"""
STUDIO_URL = "https://smith.langchain.com/studio/?baseUrl=http://{host}:{port}"


def dev_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The dev server's environment: the caller's, offline unless a LangSmith key is set."""
    env = dict(os.environ if base is None else base)
    offline = dict(OFFLINE_ENV)
    if env.get("LANGSMITH_API_KEY"):
        offline.pop("LANGSMITH_TRACING")
    env.setdefault("PODIUM_FORECAST", "1")  # Studio shows each run's forecast before turn 1
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
