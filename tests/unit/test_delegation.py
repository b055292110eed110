"""``answer(model=X)``: the policy names the LLM expert that writes the final answer."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.utils.function_calling import convert_to_openai_tool

from podium.graph import Context, TrajectoryStore, graph
from podium.graph.delegation import FOUND_HEADER, NOTE_HEADER
from podium.graph.render import ANSWER, policy_tools
from podium.graph.testing import calc_tool, fake_openai
from podium.tools.config import load_config
from podium.tools.experts import expert_tool
from podium.tools.pricing import Prices
from podium.training.eval.routers import RouterError, router_for
from podium.training.grpo.rft import route, trainable

QUESTION = "Write a function f that returns 42."
REPLY = '```python\ndef f():\n    return "42"\n```'


def _expert(base_url: str):
    config = load_config()
    cfg = config.experts["ask_gpt5"].model_copy(update={"base_url": base_url, "api_key_env": ""})
    return expert_tool("ask_gpt5", cfg, Prices(config))


def _answer_call(args: dict, call_id: str = "a1") -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": ANSWER, "args": args, "id": call_id}])


def _asked(bodies: list[dict]) -> list[str]:
    return [b["messages"][-1]["content"] for b in bodies]


def _recording(content: str) -> tuple[list[dict], Callable[[dict], dict]]:
    """An expert endpoint's reply function that answers ``content`` and keeps each request."""
    bodies: list[dict] = []

    def reply(body: dict) -> dict:
        bodies.append(body)
        return {"role": "assistant", "content": content}

    return bodies, reply


def test_the_named_expert_is_asked_the_question_and_its_reply_is_the_answer(fake_graph):
    bodies, reply = _recording(REPLY)

    with fake_openai(reply=reply) as server:
        script = [_answer_call({"text": "", "model": "ask_gpt5"})]
        _, ctx = fake_graph(script, [_expert(server.base_url), calc_tool()])
        out = graph.invoke({"question": QUESTION}, context=Context(**ctx))
    assert out["answer"] == REPLY  # word for word: the policy copies nothing
    assert out["stopped_by"] == "answer" and out["turns"] == 1
    assert _asked(bodies) == [QUESTION]  # the question alone, as the strongest router asks
    (tool,) = [e for e in out["ledger"] if e["kind"] == "tool"]
    assert tool["name"] == "ask_gpt5" and tool["cost_usd"] > 0 and tool["ok"]
    written = [c for m in out["messages"] if isinstance(m, AIMessage) for c in m.tool_calls]
    assert written[0]["name"] == ANSWER  # the policy's call is kept as it wrote it
    (record,) = TrajectoryStore(ctx["trajectory_db"]).latest()
    assert route(record) == "answer:ask_gpt5"


def test_the_expert_is_handed_what_the_tools_found_and_the_policys_note(fake_graph):
    bodies, reply = _recording("4")

    with fake_openai(reply=reply) as server:
        calc = AIMessage(
            content="", tool_calls=[{"name": "calc", "args": {"expression": "2+2"}, "id": "c1"}]
        )
        script = [calc, _answer_call({"text": "check it", "model": "ask_gpt5"})]
        _, ctx = fake_graph(script, [_expert(server.base_url), calc_tool()])
        out = graph.invoke({"question": "What is 2+2?"}, context=Context(**ctx))
    assert out["answer"] == "4"
    assert _asked(bodies) == [f"What is 2+2?{FOUND_HEADER}4{NOTE_HEADER}check it"]


def test_a_model_of_no_expert_is_a_malformed_call_and_nothing_runs(fake_graph):
    script = [_answer_call({"text": "", "model": "gpt-9"}), "5"]
    _, ctx = fake_graph(script, [_expert("http://127.0.0.1:9/v1"), calc_tool()])
    out = graph.invoke({"question": "What is 2+3?"}, context=Context(**ctx))
    assert out["answer"] == "5" and out["malformed_calls"] == 1
    assert not [e for e in out["ledger"] if e["kind"] == "tool"]
    notes = [str(m.content) for m in out["messages"] if isinstance(m, HumanMessage)]
    assert any("'gpt-9' is no model of this pool (ask_gpt5)" in n for n in notes)


def test_a_failed_expert_goes_back_to_the_policy(fake_graph):
    script = [_answer_call({"text": "", "model": "ask_gpt5"}), "my own answer"]
    _, ctx = fake_graph(script, [_expert("http://127.0.0.1:9/v1"), calc_tool()])
    out = graph.invoke({"question": QUESTION}, context=Context(**ctx))
    assert out["answer"] == "my own answer" and out["turns"] == 2
    (result,) = [m for m in out["messages"] if isinstance(m, ToolMessage)]
    assert result.status == "error" and result.name == "ask_gpt5"


def test_answer_offers_the_pools_experts_and_a_forced_turn_answers_itself():
    pool = {"ask_gpt5": _expert("http://127.0.0.1:9/v1"), "calc": calc_tool()}
    offered = convert_to_openai_tool(policy_tools(pool, forced=False)[ANSWER])["function"]
    model = offered["parameters"]["properties"]["model"]
    assert "ask_gpt5" in json.dumps(model) and "calc" not in json.dumps(model)
    assert offered["parameters"]["required"] == ["text"]
    forced = convert_to_openai_tool(policy_tools(pool, forced=True)[ANSWER])["function"]
    assert list(forced["parameters"]["properties"]) == ["text"]
    alone = convert_to_openai_tool(policy_tools({"calc": calc_tool()}, forced=False)[ANSWER])
    assert list(alone["function"]["parameters"]["properties"]) == ["text"]


def test_the_strongest_router_names_the_expert_and_rft_trains_that_call(fake_graph):
    with fake_openai(reply=lambda body: {"role": "assistant", "content": REPLY}) as server:
        pool = [_expert(server.base_url), calc_tool()]
        router = router_for("strongest", {t.name: t for t in pool})
        _, ctx = fake_graph(router, pool)
        out = graph.invoke({"question": QUESTION}, context=Context(**ctx))
    assert out["answer"] == REPLY and out["turns"] == 1
    (record,) = TrajectoryStore(ctx["trajectory_db"]).latest()
    last = trainable(record)["messages"][-1]["data"]
    (call,) = json.loads(last["content"])
    assert call == {"name": ANSWER, "arguments": {"text": "", "model": "ask_gpt5"}}
    assert [c["args"] for c in last["tool_calls"]] == [{"text": "", "model": "ask_gpt5"}]


def test_a_chained_router_calls_its_tool_first_then_the_expert_answers_from_it(fake_graph):
    bodies, reply = _recording("four")

    with fake_openai(reply=reply) as server:
        pool = [_expert(server.base_url), calc_tool()]
        router = router_for("calc+strongest", {t.name: t for t in pool})
        _, ctx = fake_graph(router, pool)
        out = graph.invoke({"question": "2+2"}, context=Context(**ctx))
    assert out["answer"] == "four" and out["turns"] == 2
    assert _asked(bodies) == [f"2+2{FOUND_HEADER}4"]
    (record,) = TrajectoryStore(ctx["trajectory_db"]).latest()
    assert route(record) == "calc>answer:ask_gpt5"


def test_a_chained_router_names_a_tool_of_the_pool_and_an_expert_router():
    pool = {"ask_gpt5": _expert("http://127.0.0.1:9/v1"), "calc": calc_tool()}
    for bad in ("web+strongest", "calc+random", "calc+"):
        with pytest.raises(RouterError, match="write TOOL\\+strongest or TOOL\\+cheapest"):
            router_for(bad, pool)
