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


def _runs(client) -> dict[str, dict]:
    """Each traced run: its creation payload updated by its end payload, by run id."""
    runs: dict[str, dict] = {}
    for p in client.payloads:
        run_id = str(p.get("id") or p.get("run_id"))
        merged = runs.setdefault(run_id, {})
        extra = {**(merged.get("extra") or {}), **(p.get("extra") or {})}
        merged.update({k: v for k, v in p.items() if v is not None} | {"extra": extra})
    return runs


def test_model_runs_carry_tokens_dollars_and_the_model_langsmith_prices_them_by(
    fake_graph, langsmith_offline, tmp_path
):
    from langsmith.run_trees import validate_extracted_usage_metadata

    from podium.graph.testing import fake_openai, question, scripted_reply

    fake_graph(None, [calc_tool(0.001)])  # the real client of the fake endpoint below
    client, tracer = langsmith_offline
    with fake_openai(reply=scripted_reply) as server:
        ctx = Context(
            policy_base_url=server.base_url, policy_model="qwen2.5-coder-0.5b-instruct",
            trajectory_db=str(tmp_path / "t.sqlite"), max_turns=4,
        )  # fmt: skip
        out = graph.invoke({"question": question(1)}, context=ctx, config={"callbacks": [tracer]})
    tracer.wait_for_futures()
    assert out["stopped_by"] == "answer"
    runs = list(_runs(client).values())
    usage = {id(r): r["extra"].get("metadata", {}).get("usage_metadata") for r in runs}
    for r in runs:
        if usage[id(r)]:
            validate_extracted_usage_metadata(usage[id(r)])  # the SDK's own check of the keys

    models = [r for r in runs if r.get("run_type") == "llm"]
    policy = [e for e in out["ledger"] if e["kind"] == "policy"]
    assert len(models) == len(policy) == 3  # two calc turns, then the answer
    for run, entry in zip(models, policy, strict=True):
        meta, cost = run["extra"]["metadata"], usage[id(run)]
        assert meta["ls_provider"] == "openai" and meta["ls_model_name"] == ctx.policy_model
        assert (cost["input_tokens"], cost["output_tokens"]) == (
            entry["input_tokens"], entry["output_tokens"]
        )  # fmt: skip
        assert cost["total_tokens"] == cost["input_tokens"] + cost["output_tokens"]
        assert math.isclose(cost["input_cost"] + cost["output_cost"], cost["total_cost"])
        assert math.isclose(cost["total_cost"], entry["cost_usd"]) and cost["total_cost"] > 0
    # Tools' dollars are on the node that ran them; the policy nodes add nothing on top.
    others = {
        r["name"]: usage[id(r)]["total_cost"] for r in runs if usage[id(r)] and r not in models
    }
    assert set(others) == {"execute"}
    total = sum(u["total_cost"] for u in usage.values() if u)
    assert math.isclose(total, sum(e["cost_usd"] for e in out["ledger"]))  # each dollar once
