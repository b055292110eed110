"""LangSmith tracing, offline: node runs carry the dollars podium billed."""

from __future__ import annotations

import math

from langchain_core.messages import AIMessage
from langchain_core.tracers import LangChainTracer
from langsmith import Client

from podium.graph import Context, graph

from .fakes import calc_tool


class RecordingClient(Client):
    """A LangSmith client that keeps run payloads instead of sending them."""

    def __init__(self) -> None:
        super().__init__(
            api_url="http://127.0.0.1:9", api_key="offline", info={}, auto_batch_tracing=False
        )
        self.payloads: list[dict] = []

    def create_run(self, **kwargs):
        self.payloads.append(kwargs)

    def update_run(self, run_id, **kwargs):
        self.payloads.append(kwargs)


def test_traced_runs_carry_costs_that_add_up_to_the_ledger(fake_graph, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-must-not-leak")
    call = {"name": "calc", "args": {"expression": "6*7"}, "id": "c1", "type": "tool_call"}
    _, base = fake_graph([AIMessage(content="", tool_calls=[call]), "42"], [calc_tool(0.001)])
    client = RecordingClient()
    tracer = LangChainTracer(client=client, project_name="podium-test")
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
