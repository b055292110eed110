"""A run killed while a call is in flight, then resumed, never sends a request the ledger
cannot see.

The guard (node ``tools``) checkpoints each admitted call as pending, at its worst case, with
a lease held by the admitting process; ``execute`` sends only calls whose lease it takes. A
resumed run finds leases nobody holds: it bills those calls at their worst case (the
provider may have run them) and admits them again against what is left.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.checkpoint.sqlite import SqliteSaver

from podium.graph import Context, build_graph
from podium.graph import tool_calls as tool_calls_module
from podium.graph.state import spent
from podium.graph.tool_calls import INTERRUPTED_ERROR
from podium.tools import cost_of, load_pool
from podium.tools.cost import token_bound

from .fake_openai import OK_USAGE, fake_openai
from .fakes import calc_tool, expert_tool

REPO = Path(__file__).resolve().parents[1]
EXPERT = "ask_slow"
QUESTION = "What is 6 * 7?"


def _call(name: str, **args: Any) -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": f"c_{name}"}])


def _to_the_end(graph: Any, cfg: dict[str, Any], ctx: Context) -> dict[str, Any]:
    """Resume past every pause after the guard until the run finishes."""
    out = graph.invoke(None, cfg, context=ctx)
    while graph.get_state(cfg).next:
        out = graph.invoke(None, cfg, context=ctx)
    return out


def test_an_admitted_call_resumed_in_the_same_process_runs_once_unbilled_twice(fake_graph):
    """Stopped between the guard and execute (a checkpoint), resumed here: the lease is live."""
    _, base = fake_graph([_call("calc", expression="6*7"), "42"], [calc_tool(0.001)])
    graph = build_graph().compile(checkpointer=InMemorySaver(), interrupt_after=["tools"])
    cfg = {"configurable": {"thread_id": "t"}}
    ctx = Context(**base, budget_usd=1.0)
    paused = graph.invoke({"question": QUESTION}, cfg, context=ctx)
    (pending,) = paused["pending"]
    assert pending["name"] == "calc" and paused["cost_usd"] >= pending["worst_usd"] == 0.001
    out = _to_the_end(graph, cfg, ctx)
    tools = [(e["name"], e["ok"], e["cost_usd"]) for e in out["ledger"] if e["kind"] == "tool"]
    assert tools == [("calc", True, 0.001)] and out["answer"] == "42" and out["pending"] == []


def test_a_call_whose_lease_is_lost_is_billed_at_worst_case_and_admitted_again(fake_graph):
    """The same pause, resumed as by another process (no lease held): billed, then re-run."""
    oracle = expert_tool(in_price=1.0, out_price=10.0, max_out=100)
    _, base = fake_graph([_call("oracle", question="q"), "42"], [oracle])
    graph = build_graph().compile(checkpointer=InMemorySaver(), interrupt_after=["tools"])
    cfg = {"configurable": {"thread_id": "t"}}
    worst = cost_of(oracle).worst_case(token_bound(json.dumps({"question": "q"})))
    ctx = Context(**base, budget_usd=1.0)
    graph.invoke({"question": QUESTION}, cfg, context=ctx)
    tool_calls_module._leases.clear()  # what a new process holds
    out = _to_the_end(graph, cfg, ctx)  # execute finds the lease lost; the guard re-admits
    tools = [e for e in out["ledger"] if e["kind"] == "tool"]
    assert [(e["ok"], e["error"]) for e in tools] == [(False, INTERRUPTED_ERROR), (True, "")]
    assert tools[0]["cost_usd"] == worst and tools[1]["cost_usd"] == cost_of(oracle).price(300, 50)
    assert [m.tool_call_id for m in out["messages"] if isinstance(m, ToolMessage)] == ["c_oracle"]
    assert out["answer"] == "42" and out["cost_usd"] == spent(out["ledger"])


def test_a_lost_call_that_no_longer_fits_the_budget_is_blocked(fake_graph):
    oracle = expert_tool(in_price=1.0, out_price=10.0, max_out=100)
    _, base = fake_graph([_call("oracle", question="q"), "no budget left"], [oracle])
    graph = build_graph().compile(checkpointer=InMemorySaver(), interrupt_after=["tools"])
    cfg = {"configurable": {"thread_id": "t"}}
    worst = cost_of(oracle).worst_case(token_bound(json.dumps({"question": "q"})))
    ctx = Context(**base, budget_usd=worst * 1.5)  # one attempt fits, two do not
    graph.invoke({"question": QUESTION}, cfg, context=ctx)
    tool_calls_module._leases.clear()
    out = _to_the_end(graph, cfg, ctx)
    tools = [e for e in out["ledger"] if e["kind"] == "tool"]
    assert [e["error"] for e in tools] == [INTERRUPTED_ERROR, "blocked by the budget guard"]
    assert spent(out["ledger"]) <= worst * 1.5 and out["stopped_by"] in ("budget", "answer")


# --- a real kill: SIGKILL while the expert's request hangs, resume in this process ---------

CHILD = r"""
import sys
from langchain_core.messages import AIMessage
from langgraph.checkpoint.sqlite import SqliteSaver
from podium.graph import Context, build_graph, resources
from podium.tools import load_pool
from tests.fakes import FakePolicy

db, config, traj = sys.argv[1:4]
tools = load_pool("slow", config=config)
call = {"name": "ask_slow", "args": {"question": "What is 6 * 7?"}, "id": "c1"}
policy = FakePolicy(script=[AIMessage(content="", tool_calls=[call])])
resources._pool = lambda *a, **k: tuple(tools)
resources._chat_model = lambda *a, **k: policy
ctx = Context(config=config, profile="slow", budget_usd=0.01, trajectory_db=traj,
              policy_base_url="http://127.0.0.1:9/v1")
with SqliteSaver.from_conn_string(db) as saver:
    graph = build_graph().compile(checkpointer=saver)
    graph.invoke({"question": "What is 6 * 7?"}, {"configurable": {"thread_id": "t"}},
                 context=ctx, durability="sync")
"""


def _config(tmp_path: Path, base_url: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f"""
[profiles.slow]
tools = ["{EXPERT}"]

[experts.{EXPERT}]
model = "slow"
base_url = "{base_url}"
price = "qwen3-8b"
max_tokens = 64
timeout_s = 60
capability = "An expert that answers slowly."
""",
        encoding="utf-8",
    )
    return path


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_a_run_killed_during_an_expert_call_resumes_without_an_unbilled_duplicate(
    fake_graph, tmp_path: Path
) -> None:
    db, traj = tmp_path / "checkpoints.sqlite", tmp_path / "traj.sqlite"
    with fake_openai("hang", lifetime_s=100) as server:
        config = _config(tmp_path, server.base_url)
        env = {**os.environ, "PYTHONPATH": f"{os.environ.get('PYTHONPATH', '')}:{REPO}"}
        child = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(db), str(config), str(traj)], env=env, cwd=REPO
        )
        deadline = time.monotonic() + 60
        while server.requests == 0 and child.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert server.requests == 1, f"the child never called the expert (exit {child.poll()})"
        child.send_signal(signal.SIGKILL)
        child.wait()
        server.mode = "ok"  # the provider answers now

        tools = load_pool("slow", config=config)
        fake_graph(["42"], tools)  # the policy's next turn, in this process
        ctx = Context(config=str(config), profile="slow", budget_usd=0.01, trajectory_db=str(traj))
        with SqliteSaver.from_conn_string(str(db)) as saver:
            graph = build_graph().compile(checkpointer=saver)
            cfg = {"configurable": {"thread_id": "t"}}
            assert graph.get_state(cfg).next == ("execute",)
            out = graph.invoke(None, cfg, context=ctx, durability="sync")
        sent = server.requests

    worst = cost_of(tools[0]).worst_case(token_bound(json.dumps({"question": QUESTION})))
    billed = [e for e in out["ledger"] if e["kind"] == "tool"]
    assert sent == 2 == len(billed)  # every request the endpoint saw is in the ledger
    assert (billed[0]["error"], billed[0]["cost_usd"]) == (INTERRUPTED_ERROR, worst)
    assert billed[1]["ok"] and billed[1]["cost_usd"] == cost_of(tools[0]).price(*OK_USAGE)
    assert out["answer"] == "42" and spent(out["ledger"]) <= 0.01
