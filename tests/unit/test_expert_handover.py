"""An LLM expert is handed the user's question beside the policy's request (as in ToolOrchestra)."""

from __future__ import annotations

import json

from langchain_core.messages import AIMessage
from langchain_core.utils.function_calling import convert_to_openai_tool

from podium.graph import Context, graph
from podium.graph.testing import calc_tool, fake_openai
from podium.graph.tool_calls import sent_args
from podium.tools import cost_of
from podium.tools.config import load_config
from podium.tools.cost import token_bound
from podium.tools.experts import expert_request, expert_tool
from podium.tools.pricing import Prices

QUESTION = "Sophia ate 3 slices and her cousin 5 more than her. How many slices did they eat?"


def _expert(base_url: str):
    config = load_config()
    cfg = config.experts["ask_gpt5"].model_copy(update={"base_url": base_url, "api_key_env": ""})
    return expert_tool("ask_gpt5", cfg, Prices(config))


def test_the_request_puts_the_question_first_unless_the_policy_already_sent_it():
    asked = expert_request("How many slices?", QUESTION)
    assert asked == (
        f"The user's question:\n{QUESTION}\n\nWhat the orchestrator asks of you:\nHow many slices?"
    )
    assert expert_request(QUESTION, QUESTION) == QUESTION  # a router forwarding it verbatim
    assert expert_request(f"Solve step by step: {QUESTION}", f" {QUESTION}\n").startswith("Solve")
    assert expert_request("How many slices?", "") == "How many slices?"  # called outside a run


def test_the_graph_hands_the_expert_the_question_and_the_policy_never_sees_the_argument(
    fake_graph,
):
    bodies: list[dict] = []

    def reply(body: dict) -> dict:
        bodies.append(body)
        return {"role": "assistant", "content": "They ate 11 slices."}

    with fake_openai(reply=reply) as server:
        expert = _expert(server.base_url)
        call = {"name": "ask_gpt5", "args": {"question": "How many slices?"}, "id": "c1"}
        script = [AIMessage(content="", tool_calls=[call]), "11"]
        _, ctx = fake_graph(script, [expert, calc_tool()])
        out = graph.invoke({"question": QUESTION}, context=Context(**ctx))
    assert out["answer"] == "11"
    (body,) = bodies
    assert body["messages"][-1]["content"] == expert_request("How many slices?", QUESTION)
    written = [c for m in out["messages"] if isinstance(m, AIMessage) for c in m.tool_calls]
    assert [c["args"] for c in written] == [{"question": "How many slices?"}]  # as the policy
    schema = convert_to_openai_tool(expert)["function"]["parameters"]
    assert list(schema["properties"]) == ["question"]  # `task` is the graph's, not offered


def test_the_guard_prices_the_question_an_expert_is_handed():
    expert, calc = _expert("http://127.0.0.1:9/v1"), calc_tool()
    call = {"name": "ask_gpt5", "args": {"question": "How many?"}, "id": "c1"}
    sent = sent_args(call, expert, QUESTION)  # type: ignore[arg-type]
    assert sent == {"question": "How many?", "task": QUESTION}
    assert call["args"] == {"question": "How many?"}  # the policy's call is left as written
    cost = cost_of(expert)
    bigger = cost.worst_case(token_bound(json.dumps(sent)))
    assert bigger > cost.worst_case(token_bound(json.dumps(call["args"])))
    verbatim = {**call, "args": {"question": QUESTION}}  # sent alone: nothing more to price
    assert sent_args(verbatim, expert, QUESTION) == {"question": QUESTION}
    other = {"name": "calc", "args": {"expression": "2+2"}, "id": "c2"}
    assert sent_args(other, calc, QUESTION) == other["args"]  # a tool that is not handed it
