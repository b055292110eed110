"""The vLLM path on CPU: ``podium serve --engine vllm`` serves a tiny policy and its LoRA adapter,
and the podium graph runs against both through the same ``ChatOpenAI`` seam.

Needs the vLLM venv (``make install-vllm``; ``make test`` installs it). One server is shared by the
module (vLLM takes a minute or more to start on 2 cores); the SIGTERM test stops it, last.
"""

from __future__ import annotations

import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from podium.studio.servers import ServeError, vllm_python
from podium.tools.localhost import free_port
from podium.training.grpo.tiny import build_tiny_lora, build_tiny_policy

pytestmark = pytest.mark.integration

BASE, LORA = "tiny", "policy-lora"
MAX_TOKENS = 12
PRICE_IN, PRICE_OUT = 0.2, 0.6  # $ per million tokens, the test config's policy price
START_TIMEOUT_S = 900
CONFIG = {
    "policy": {"max_tokens": MAX_TOKENS, "price": "tiny-test-policy"},
    "prices": {"models": {"tiny-test-policy": {"input": PRICE_IN, "output": PRICE_OUT}}},
    "profiles": {"sandbox": {"description": "Only the python sandbox.", "tools": ["python"]}},
}


def podium_command() -> list[str]:
    script = Path(sys.executable).with_name("podium")
    return [str(script)] if script.exists() else [sys.executable, "-m", "podium.studio.cli"]


def stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (state, ppid, pgrp, ...); None if gone."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None


def processes() -> dict[int, list[str]]:
    found = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := stat(int(entry.name))) and fields[0] != "Z":
            found[int(entry.name)] = fields
    return found


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, write_config) -> Iterator[dict[str, Any]]:
    """``podium serve --engine vllm`` of a tiny policy and a LoRA adapter, with its endpoint."""
    try:
        vllm_python()
    except ServeError as exc:
        if os.environ.get("CI"):
            raise
        pytest.skip(str(exc))
    root = tmp_path_factory.mktemp("vllm")
    base = build_tiny_policy(root / "policy", seed=0)
    lora = build_tiny_lora(base, root / "lora", r=8, seed=0)
    config = write_config(root / "config.toml", CONFIG)
    port = free_port()
    command = [*podium_command(), "serve", "--engine", "vllm", "--model", str(base)]
    command += ["--served-model-name", BASE, "--lora", f"{LORA}={lora}", "--port", str(port)]
    command += ["--json", "--max-model-len", "4096"]  # an extra flag, passed through to vLLM
    env = {**os.environ, "PODIUM_CACHE_DIR": str(root / "cache")}
    proc = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in proc.stdout], daemon=True).start()
    info: dict[str, Any] = {}
    deadline = time.monotonic() + START_TIMEOUT_S
    while not info and proc.poll() is None and time.monotonic() < deadline:
        try:
            info = json.loads(lines.get(timeout=1.0))
        except queue.Empty:
            continue
    if not info:
        proc.terminate()
        proc.wait(60)
        pytest.fail(f"podium serve did not announce its endpoint: {proc.stderr.read()[-3000:]}")
    yield {**info, "proc": proc, "port": port, "config": str(config), "base": base, "root": root}
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        proc.wait(120)


def run_graph(served: dict[str, Any], model: str) -> dict[str, Any]:
    from podium.graph import Context, graph

    ctx = Context(
        policy_base_url=served["base_url"],
        policy_model=model,
        config=served["config"],
        profile="sandbox",
        max_turns=2,
        trajectory_db=str(served["root"] / "trajectories.sqlite"),
    )
    return graph.invoke({"question": "What is 17 * 23?"}, context=ctx)


def test_endpoint_lists_the_base_model_and_the_adapter(served):
    assert served["base_url"] == f"http://127.0.0.1:{served['port']}/v1"
    assert served["models"] == [BASE, LORA]
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(f"{served['base_url']}/models", timeout=30) as response:
        listed = {m["id"]: m for m in json.load(response)["data"]}
    assert set(listed) == {BASE, LORA}
    assert listed[LORA]["parent"] == BASE
    assert listed[BASE]["max_model_len"] == 4096  # the passed-through vLLM flag took effect


@pytest.mark.parametrize("model", [BASE, LORA])
def test_graph_runs_and_bills_the_policys_real_tokens(served, model):
    from langchain_core.messages import AIMessage

    state = run_graph(served, model)
    assert state["stopped_by"] in {"answer", "max_turns"}, state["ledger"]
    policy = [e for e in state["ledger"] if e["kind"] == "policy"]
    replies = [m for m in state["messages"] if isinstance(m, AIMessage)]
    assert policy and len(policy) == len(replies)
    for entry, reply in zip(policy, replies, strict=True):
        usage = reply.usage_metadata
        assert entry["ok"] and entry["name"] == model
        assert reply.response_metadata["model_name"] == model
        assert usage and entry["input_tokens"] == usage["input_tokens"] > 100  # prompt + tools
        assert entry["output_tokens"] == usage["output_tokens"]
        assert 1 <= entry["output_tokens"] <= MAX_TOKENS
        cost = (entry["input_tokens"] * PRICE_IN + entry["output_tokens"] * PRICE_OUT) / 1e6
        assert entry["cost_usd"] == pytest.approx(cost)


def test_the_adapter_changes_the_answer(served):
    from podium.tools.endpoints import chat_model

    def reply(model: str) -> str:
        llm = chat_model(base_url=served["base_url"], model=model, api_key="", max_tokens=12)
        return str(llm.invoke("The capital of France is").content)

    assert reply(BASE) == reply(BASE)  # greedy: deterministic
    assert reply(LORA) != reply(BASE)


def test_second_serve_on_the_same_port_fails_with_one_line(served):
    command = [*podium_command(), "serve", "--engine", "vllm", "--model", str(served["base"])]
    before = set(processes())
    done = subprocess.run(
        [*command, "--port", str(served["port"])], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and f"port {served['port']}" in done.stderr
    assert "Traceback" not in done.stderr and done.stdout == ""
    started = {p for p, f in processes().items() if p not in before and "vllm" in _cmd(p)}
    assert not started


def _cmd(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def test_sigterm_stops_vllm_and_all_its_children(served):
    """Last in the module: it stops the shared server."""
    proc = served["proc"]
    table = processes()
    servers = [p for p, f in table.items() if int(f[1]) == proc.pid]  # ppid = podium serve
    assert len(servers) == 1 and "vllm.entrypoints" in _cmd(servers[0])
    group = {p for p, f in table.items() if int(f[2]) == servers[0]}  # pgrp = vLLM's own
    assert len(group) >= 2  # the API server and its engine core (and workers)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(120) == 0
    assert not [p for p in group if p in processes()], "vLLM processes outlived podium serve"
    assert not [p for p, f in processes().items() if int(f[2]) == servers[0]]
