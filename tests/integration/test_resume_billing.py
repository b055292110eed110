"""A run SIGKILLed while an expert's request is in flight, then resumed, never sends a
request the ledger cannot see.

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
from langgraph.checkpoint.sqlite import SqliteSaver

from podium.graph import Context, build_graph
from podium.graph.state import spent
from podium.graph.testing import OK_USAGE, fake_openai
from podium.graph.tool_calls import INTERRUPTED_ERROR
from podium.tools import cost_of, load_pool
from podium.tools.cost import token_bound

REPO = Path(__file__).resolve().parents[2]
EXPERT = "ask_slow"
QUESTION = "What is 6 * 7?"

# --- a real kill: SIGKILL while the expert's request hangs, resume in this process ---------

CHILD = r"""
import sys
from langchain_core.messages import AIMessage
from langgraph.checkpoint.sqlite import SqliteSaver
from podium.graph import Context, build_graph
from podium.graph.resources import policy_override, tools_override
from podium.graph.testing import FakePolicy
from podium.tools import load_pool

db, config, traj = sys.argv[1:4]
tools = load_pool("slow", config=config)
call = {"name": "ask_slow", "args": {"question": "What is 6 * 7?"}, "id": "c1"}
policy = FakePolicy(script=[AIMessage(content="", tool_calls=[call])])
ctx = Context(config=config, profile="slow", budget_usd=0.01, trajectory_db=traj,
              policy_base_url="http://127.0.0.1:9/v1")
with policy_override(policy), tools_override(tools), SqliteSaver.from_conn_string(db) as saver:
    graph = build_graph().compile(checkpointer=saver)
    graph.invoke({"question": "What is 6 * 7?"}, {"configurable": {"thread_id": "t"}},
                 context=ctx, durability="sync")
"""


def _config(base_url: str) -> dict[str, Any]:
    """A profile ``slow`` of the one expert at ``base_url``."""
    expert = {"model": "slow", "base_url": base_url, "price": "qwen3-8b", "max_tokens": 64,
              "timeout_s": 60, "capability": "An expert that answers slowly."}  # fmt: skip
    return {"profiles": {"slow": {"tools": [EXPERT]}}, "experts": {EXPERT: expert}}


@pytest.mark.integration
@pytest.mark.timeout(120)
def test_a_run_killed_during_an_expert_call_resumes_without_an_unbilled_duplicate(
    fake_graph, tmp_path: Path, write_config
) -> None:
    db, traj = tmp_path / "checkpoints.sqlite", tmp_path / "traj.sqlite"
    with fake_openai("hang", lifetime_s=100) as server:
        config = write_config(tmp_path / "config.toml", _config(server.base_url))
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
