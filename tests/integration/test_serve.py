"""``podium serve --engine llamacpp``: the real server ends with it (vLLM: test_vllm.py)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest


def _env(tmp_path: Path, python: str) -> dict[str, str]:
    return {**os.environ, "PODIUM_VLLM_PYTHON": python, "PODIUM_CACHE_DIR": str(tmp_path)}


@pytest.mark.integration
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_llamacpp_server_stops_with_podium_serve(tmp_path, sig, processes):
    """The real ``--engine llamacpp`` server ends with ``podium serve``, even a SIGKILLed one."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    command = [sys.executable, "-m", "podium.studio.cli", "serve", "--engine", "llamacpp"]
    proc = subprocess.Popen(
        [*command, "--port", port],
        env=_env(tmp_path, ""),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        first = proc.stdout.readline()  # type: ignore[union-attr]
        assert "is serving" in first and f"127.0.0.1:{port}/v1" in first, proc.stderr
        files = (tmp_path / "serve" / f"llamacpp-{port}").glob("llamacpp-*.json")
        (state,) = [f for f in files if not f.name.endswith(".config.json")]
        server = json.loads(state.read_text())["pid"]
        assert processes.alive(server)
        proc.send_signal(sig)
        assert proc.wait(60) == (0 if sig == signal.SIGTERM else -signal.SIGKILL)
        assert processes.gone([server])  # SIGKILL: the kernel sends it SIGTERM (PR_SET_PDEATHSIG)
    finally:
        if proc.poll() is None:
            proc.kill()
