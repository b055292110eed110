"""LangSmith tracing, offline: node runs carry the dollars podium billed."""

from __future__ import annotations

import math

from langchain_core.messages import AIMessage

from podium.graph import Context, graph
from podium.graph.testing import calc_tool


def test_traced_runs_carry_costs_that_add_up_to_the_ledger(
    fake_graph, langsmith_offline, monkeypatch
):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-must-not-leak")
    call = {"name": "calc", "args": {"expression": "6*7"}, "id": "c1", "type": "tool_call"}
    _, base = fake_graph([AIMessage(content="", tool_calls=[call]), "42"], [calc_tool(0.001)])
    client, tracer = langsmith_offline
    out = graph.invoke(
        {"question": "6*7?"}, context=Context(**base), config={"callbacks": [tracer]}
    )
    tracer.wait_for_futures()
    costs = {}
    for p in client.payloads:
        usage = (p.get("extra") or {}).get("metadata", {}).get("usage_metadata") or {}
        if "total_cost" in usage:
            costs.setdefault(p.get("name"), []).append(usage["total_cost"])
    assert set(costs) == {"policy", "execute"}  # the guard (tools) bills nothing here
    total = sum(sum(v) for v in costs.values())
    assert math.isclose(total, sum(e["cost_usd"] for e in out["ledger"]))
    assert "sk-secret-must-not-leak" not in repr(client.payloads)
