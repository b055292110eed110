"""A run killed while a call is in flight, then resumed, never sends a request the ledger
cannot see.

The guard (node ``tools``) checkpoints each admitted call as pending, at its worst case, with
a lease held by the admitting process; ``execute`` sends only calls whose lease it takes. A
resumed run finds leases nobody holds: it bills those calls at their worst case (the
provider may have run them) and admits them again against what is left.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from langchain_core.messages import AIMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver

from podium.graph import Context, build_graph
from podium.graph.state import spent
from podium.graph.testing import calc_tool, expert_tool
from podium.graph.tool_calls import INTERRUPTED_ERROR, release_leases
from podium.tools import cost_of
from podium.tools.cost import token_bound

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
    release_leases()  # what a new process holds
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
    release_leases()
    out = _to_the_end(graph, cfg, ctx)
    tools = [e for e in out["ledger"] if e["kind"] == "tool"]
    assert [e["error"] for e in tools] == [INTERRUPTED_ERROR, "blocked by the budget guard"]
    assert spent(out["ledger"]) <= worst * 1.5 and out["stopped_by"] in ("budget", "answer")
