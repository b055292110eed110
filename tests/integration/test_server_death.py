"""The embedded llama.cpp server killed (SIGKILL) in the middle of runs, against the real server.

Between turns, podium restarts it transparently (policy and experts follow it to its new
port); during a policy request, the run ends with one clear error line and the next run
restarts it. Either way a server is left running afterwards, as other clients expect.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.messages import AIMessage
from langchain_core.tools import StructuredTool

from podium.graph import Context, TrajectoryStore, graph
from podium.tools import load_config
from podium.tools.cost import ToolCost, Usage, with_cost
from podium.tools.experts import expert_tool
from podium.tools.llamacpp import EmbeddedServer, embedded_base_url
from podium.tools.pricing import Prices

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(600),
    pytest.mark.usefixtures("no_podium_env"),
]


def server_pid(adapter: str = "") -> int:
    """The pid of the running embedded server (started if needed), the one with ``adapter``.

    Read while the server is idle: ``status()`` probes ``/models``, which a server busy
    generating answers only when it is done.
    """
    embedded_base_url(adapter)  # running, and known to this process
    return EmbeddedServer(adapter=adapter or None).status()["pid"]  # type: ignore[index]


def kill_server() -> int:
    """SIGKILL the running embedded server; its pid."""
    pid = server_pid()
    os.kill(pid, signal.SIGKILL)
    return pid


def killer_tool() -> StructuredTool:
    """A tool that kills the embedded server (what a crash between turns looks like)."""

    def crash_server(reason: str) -> tuple[str, Usage]:
        """Kill the embedded model server."""
        return f"killed {kill_server()}", Usage()

    tool = StructuredTool.from_function(crash_server, response_format="content_and_artifact")
    return with_cost(tool, ToolCost(per_call_usd=0.0))


def call(name: str, i: int, **args: Any) -> AIMessage:
    """A native tool call."""
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": f"c{i}"}])


def test_killed_between_turns_the_server_is_restarted_and_the_expert_follows(
    fake_graph,
) -> None:
    config = load_config()
    smollm2 = expert_tool("ask_smollm2", config.experts["ask_smollm2"], Prices(config))
    script = [
        call("ask_smollm2", 1, question="Say hello."),
        call("crash_server", 2, reason="test"),
        call("ask_smollm2", 3, question="Say goodbye."),
        "done",
    ]
    _, ctx = fake_graph(script, [smollm2, killer_tool()])
    before = embedded_base_url()  # the expert's server: the policy here is scripted
    out = graph.invoke({"question": "q"}, context=Context(**ctx, budget_usd=1.0))

    tools = [e for e in out["ledger"] if e["kind"] == "tool"]
    assert [(e["name"], e["ok"]) for e in tools] == [
        ("ask_smollm2", True),
        ("crash_server", True),
        ("ask_smollm2", True),  # served by the restarted server
    ], tools
    assert tools[2]["output_tokens"] > 0
    assert out["stopped_by"] == "answer" and out["answer"] == "done"
    status = EmbeddedServer().status()
    assert status is not None and status["healthy"] and status["url"] != before


class KillDuringRequest(BaseCallbackHandler):
    """Kills server ``pid`` ``delay_s`` after the policy's first request starts.

    The pid is taken beforehand: looking it up mid-request waits behind the busy server, and
    the kill then lands after the request (CI failed that way).
    """

    def __init__(self, pid: int, delay_s: float) -> None:
        self.pid, self.delay_s, self.killed = pid, delay_s, threading.Event()

    def on_chat_model_start(self, *args: Any, **kwargs: Any) -> None:
        if not self.killed.is_set():
            self.killed.set()
            threading.Timer(self.delay_s, os.kill, args=(self.pid, signal.SIGKILL)).start()


def test_killed_during_a_policy_request_the_run_ends_clearly_and_the_next_restarts_it(
    calc_pool, tmp_path
) -> None:
    ctx = Context(trajectory_db=str(tmp_path / "traj.sqlite"), max_turns=2, budget_usd=1.0)
    # A new question each time, so the server cannot reuse the previous run's prompt cache:
    # its tokens are prefilled and a reply generated, well over the 0.2 s before the kill.
    question = {"question": f"Run {uuid.uuid4().hex}: what is 1234 * 5678? Use the calc tool."}
    adapter = load_config().policy.adapter  # the real policy's server applies the default's
    killer = KillDuringRequest(server_pid(adapter), delay_s=0.2)
    start = time.monotonic()
    out = graph.invoke(question, context=ctx, config={"callbacks": [killer]})
    assert killer.killed.is_set() and time.monotonic() - start < 60

    assert out["stopped_by"] == "error" and out["answer"] == ""
    (entry,) = out["ledger"]
    # A lost reply may have been billed by a provider: it is billed at its admitted worst case.
    assert entry["kind"] == "policy" and not entry["ok"] and entry["cost_usd"] > 0
    assert "ConnectionError: Connection error" in entry["error"]
    assert "\n" not in entry["error"] and "127.0.0.1" not in entry["error"]
    record = TrajectoryStore(ctx.trajectory_db).get(out["trajectory_id"])
    assert record is not None and record["stopped_by"] == "error"

    again = graph.invoke(question, context=ctx)  # the next run restarts the server
    assert again["stopped_by"] in {"answer", "max_turns"}
    assert all(e["ok"] for e in again["ledger"] if e["kind"] == "policy")
    status = EmbeddedServer(adapter=adapter or None).status()
    assert status is not None and status["healthy"]
