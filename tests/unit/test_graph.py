"""Graph routing, ledger arithmetic and budget guard, against a fake tool-calling model."""

from __future__ import annotations

import asyncio
import math
import re

import pytest
from langchain_core.messages import AIMessage, ToolMessage

from podium.graph import Context, ContextError, TrajectoryStore, graph
from podium.graph.resources import policy_override, tools_override
from podium.graph.state import spent
from podium.graph.testing import FakePolicy, broken_tool, calc_tool, expert_tool, tool_call

POLICY_IN, POLICY_OUT = 0.02, 0.02  # default policy price per M tokens (prices.toml)
TURN_COST = (100 * POLICY_IN + 20 * POLICY_OUT) / 1e6


def run(fake_graph, script, tools, **ctx):
    policy, base = fake_graph(script, tools)
    out = graph.invoke({"question": "What is 6 * 7?"}, context=Context(**{**base, **ctx}))
    return policy, out


def test_direct_answer_bills_the_policy_turn(fake_graph):
    _, out = run(fake_graph, ["42"], [calc_tool()])
    assert out["answer"] == "42" and out["stopped_by"] == "answer"
    assert [e["kind"] for e in out["ledger"]] == ["policy"]
    assert math.isclose(spent(out["ledger"]), TURN_COST)


def test_native_tool_call_is_run_and_billed(fake_graph):
    policy, out = run(fake_graph, [tool_call("calc", expression="6*7"), "42"], [calc_tool(0.001)])
    tool_msgs = [m for m in out["messages"] if isinstance(m, ToolMessage)]
    assert [m.content for m in tool_msgs] == ["42"]
    kinds = [(e["kind"], e["name"]) for e in out["ledger"]]
    assert kinds == [("policy", "policy"), ("tool", "calc"), ("policy", "policy")]
    assert math.isclose(spent(out["ledger"]), 2 * TURN_COST + 0.001)
    assert out["turns"] == 2 and policy.bound[0] == ["answer", "calc"]


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "calc", "arguments": {"expression": "6*7"}}',
        '<tool_call>\n{"name": "calc", "arguments": {"expression": "6*7"}}\n</tool_call>',
        'Let me compute.\n```json\n{"name": "calc", "arguments": {"expression": "6*7"}}\n```',
    ],
)
def test_text_tool_calls_run_like_native_ones(fake_graph, text):
    _, out = run(fake_graph, [text, "42"], [calc_tool()])
    assert [e["name"] for e in out["ledger"] if e["kind"] == "tool"] == ["calc"]
    assert out["answer"] == "42"


def test_answer_tool_ends_the_run_with_its_text(fake_graph):
    script = [
        tool_call("calc", expression="6*7"),
        '{"name": "answer", "arguments": {"text": "42"}}',
    ]
    policy, out = run(fake_graph, script, [calc_tool()])
    assert out["answer"] == "42" and out["stopped_by"] == "answer" and out["turns"] == 2
    # The policy sees calls as text and results in a user turn with the nudge to answer.
    second = policy.prompts[1]
    assert [m.type for m in second] == ["system", "human", "ai", "human"]
    assert "<tool_call>" in second[2].content and "<tool_response>" in second[3].content
    assert "call answer" in second[3].content


def _bundle(*calls):
    return AIMessage(
        content="",
        tool_calls=[{"name": n, "args": a, "id": f"c{i}"} for i, (n, a) in enumerate(calls)],
    )


@pytest.mark.parametrize(
    "first",
    [
        _bundle(("calc", {"expression": "6*7"}), ("answer", {"text": "41"})),
        '<tool_call>\n{"name": "answer", "arguments": {"text": "41"}}\n</tool_call>\n'
        '<tool_call>\n{"name": "calc", "arguments": {"expression": "6*7"}}\n</tool_call>',
    ],
)
def test_an_answer_bundled_with_calls_is_a_malformed_call(fake_graph, first):
    again = tool_call("calc", expression="6*7")
    answer = '{"name": "answer", "arguments": {"text": "42"}}'
    policy, out = run(fake_graph, [first, again, answer], [calc_tool()])
    # Neither the guess nor the calls beside it were taken: the policy is told to choose.
    assert out["malformed_calls"] == 1 and out["turns"] == 3 and out["answer"] == "42"
    assert [e["name"] for e in out["ledger"] if e["kind"] == "tool"] == ["calc"]  # turn 2's
    feedback = policy.prompts[1][-1].content
    assert "answer was called together with other tools" in feedback
    assert "<tool_response>\n42\n</tool_response>" in policy.prompts[2][-1].content


def test_an_answer_bundled_with_a_malformed_call_is_not_taken(fake_graph):
    first = '{"name": "answer", "arguments": {"text": "41"}}\n{"name": "nope", "arguments": {}}'
    policy, out = run(fake_graph, [first, "42"], [calc_tool()])
    assert out["answer"] == "42" and out["malformed_calls"] == 2 and out["turns"] == 2
    feedback = policy.prompts[1][-1].content
    assert "together with other tools" in feedback and "no tool named 'nope'" in feedback


def test_a_policy_writing_the_same_malformed_turn_again_is_made_to_answer(fake_graph):
    bundle = '{"name": "answer", "arguments": {"text": "42"}}\n{"name": "calc", "arguments": {}}'
    policy, out = run(fake_graph, [bundle, bundle, "42"], [calc_tool()])
    assert policy.bound == [["answer", "calc"], ["answer", "calc"], ["answer"]]
    assert out["stopped_by"] == "answer" and out["answer"] == "42" and out["turns"] == 3
    assert "You are repeating" in policy.prompts[2][-1].content
    # A different mistake next time is not a stuck policy: it gets its feedback and goes on.
    other = '{"name": "nope", "arguments": {}}'
    policy, out = run(fake_graph, [bundle, other, "42"], [calc_tool()])
    assert policy.bound[2] == ["answer", "calc"] and out["malformed_calls"] == 2


def test_a_forced_turn_takes_its_answer_even_beside_a_broken_call(fake_graph):
    script = [
        tool_call("calc", expression="1+1"),
        '{"name": "answer", "arguments": {"text": "2"}} {',
    ]
    _, out = run(fake_graph, script, [calc_tool()], max_turns=2)
    assert out["stopped_by"] == "max_turns" and out["answer"] == "2"


def test_token_priced_tool_bills_reported_usage(fake_graph):
    _, out = run(fake_graph, [tool_call("oracle", question="q"), "42"], [expert_tool(1.25, 10.0)])
    (entry,) = [e for e in out["ledger"] if e["kind"] == "tool"]
    assert (entry["input_tokens"], entry["output_tokens"]) == (300, 50)
    assert math.isclose(entry["cost_usd"], (300 * 1.25 + 50 * 10.0) / 1e6)


def test_malformed_call_goes_back_to_the_policy_and_is_counted(fake_graph):
    script = ['{"name": "nope", "arguments": {}}', '<tool_call>{"name": "calc", "argu', "42"]
    policy, out = run(fake_graph, script, [calc_tool()])
    assert out["malformed_calls"] == 2 and out["answer"] == "42"
    feedback = [m.content for m in policy.prompts[1] if m.type == "human"][-1]
    assert "no tool named 'nope'" in feedback


def test_tool_error_becomes_error_message_and_run_goes_on(fake_graph):
    _, out = run(fake_graph, [tool_call("boom", x="1"), "sorry"], [broken_tool()])
    (msg,) = [m for m in out["messages"] if isinstance(m, ToolMessage)]
    assert msg.status == "error" and "kaboom" in msg.content
    (entry,) = [e for e in out["ledger"] if e["kind"] == "tool"]
    assert entry["ok"] is False and "kaboom" in entry["error"]
    assert math.isclose(entry["cost_usd"], 0.0005)
    assert out["stopped_by"] == "answer"


def test_budget_zero_stops_before_anything_is_spent(fake_graph):
    policy, out = run(fake_graph, ["42"], [calc_tool()], budget_usd=0.0)
    assert out["stopped_by"] == "budget" and out["ledger"] == [] and policy.prompts == []


def test_call_over_budget_is_blocked_and_answer_forced(fake_graph):
    expensive = expert_tool(1.25, 10.0, max_out=100_000)  # worst case ~ $1
    script = [tool_call("oracle", question="q"), "my best guess is 42"]
    policy, out = run(fake_graph, script, [expensive, calc_tool()], budget_usd=0.01)
    (entry,) = [e for e in out["ledger"] if e["kind"] == "tool"]
    assert entry["ok"] is False and entry["cost_usd"] == 0 and "budget" in entry["error"]
    assert out["stopped_by"] == "budget" and out["answer"] == "my best guess is 42"
    assert policy.bound[-1] == ["answer"]  # the forced final turn offers only `answer`
    assert spent(out["ledger"]) <= 0.01


def test_max_turns_forces_a_final_answer(fake_graph):
    script = [tool_call("calc", expression=f"{i}+{i}") for i in range(3)]
    policy, base = fake_graph(script, [calc_tool()])
    out = graph.invoke({"question": "loop"}, context=Context(**base, max_turns=3))
    assert out["turns"] == 3 and out["stopped_by"] == "max_turns"
    assert policy.bound == [["answer", "calc"], ["answer", "calc"], ["answer"]]
    assert policy.choices == [None, None, "answer"]  # the forced turn must call `answer`


def test_a_repeated_call_is_answered_from_the_record_not_run_again(fake_graph):
    script = [tool_call("calc", expression="6*7"), tool_call("calc", expression="6*7"), "42"]
    policy, out = run(fake_graph, script, [calc_tool(0.001)])
    tool_entries = [e for e in out["ledger"] if e["kind"] == "tool"]
    assert [e["ok"] for e in tool_entries] == [True, False]
    assert math.isclose(sum(e["cost_usd"] for e in tool_entries), 0.001)  # billed once
    repeat = [m for m in out["messages"] if isinstance(m, ToolMessage)][-1]
    assert "Already run" in repeat.content and "42" in repeat.content
    assert out["stopped_by"] == "answer" and policy.bound[-1] == ["answer"]  # answer forced


def test_an_empty_reply_is_fed_back_not_taken_as_the_answer(fake_graph):
    _, out = run(fake_graph, ["", "42"], [calc_tool()])
    assert out["answer"] == "42" and out["malformed_calls"] == 1


def test_policy_endpoint_failure_stops_with_error(fake_graph):
    _, out = run(fake_graph, [ConnectionError("refused")], [calc_tool()])
    assert out["stopped_by"] == "error"
    assert out["ledger"][0]["ok"] is False and "refused" in out["ledger"][0]["error"]


def test_trajectory_is_stored_with_raw_completions(fake_graph):
    text = '{"name": "calc", "arguments": {"expression": "6*7"}}'
    _, base = fake_graph([text, "42"], [calc_tool()])
    out = graph.invoke({"question": "6*7?"}, context=Context(**base))
    record = TrajectoryStore(base["trajectory_db"]).get(out["trajectory_id"])
    assert record["answer"] == "42" and record["stopped_by"] == "answer"
    assert record["policy_turns"][0]["raw"] == text
    assert record["policy_turns"][0]["calls"][0]["tool"] == "calc"
    # The tools the run offered are stored as bound, so training renders them, not a new pool.
    assert [t["tools"] for t in record["policy_turns"]] == [["answer", "calc"]] * 2
    assert [s["function"]["name"] for s in record["tool_schemas"]] == ["answer", "calc"]
    assert record["tool_schemas"][1]["function"]["parameters"]["required"] == ["expression"]
    assert math.isclose(record["cost_usd"], sum(e["cost_usd"] for e in record["ledger"]))
    assert "policy_base_url" not in record["context"]


async def test_graph_is_a_runnable(fake_graph):
    _, base = fake_graph(["a", "b", "c", "d"], [calc_tool()])
    ctx = Context(**base)
    assert (await graph.ainvoke({"question": "q"}, context=ctx))["answer"] == "a"
    outs = graph.batch([{"question": "q1"}, {"question": "q2"}], context=ctx)
    assert {o["answer"] for o in outs} == {"b", "c"}
    nodes = [
        next(iter(chunk))
        for chunk in graph.stream({"question": "q"}, context=ctx, stream_mode="updates")
    ]
    assert nodes == ["policy", "finish"]


def test_graph_structure_snapshot():
    g = graph.get_graph()
    nodes = ["__end__", "__start__", "execute", "finish", "forecast", "policy", "tools"]
    assert sorted(g.nodes) == nodes
    assert sorted((e.source, e.target, e.conditional) for e in g.edges) == SNAPSHOT


@pytest.mark.parametrize(
    "kwargs", [{"budget_usd": -1}, {"max_turns": 0}, {"budget_usd": float("nan")}]
)
def test_bad_context_values_raise_one_line_errors(kwargs):
    with pytest.raises(ContextError) as err:
        Context(**kwargs)
    assert "\n" not in str(err.value)


SNAPSHOT = [
    ("__start__", "forecast", True),  # only when Context.forecast (Studio)
    ("__start__", "policy", True),
    ("execute", "policy", True),
    ("execute", "tools", True),  # a call interrupted by a kill goes back to the guard
    ("finish", "__end__", False),
    ("forecast", "policy", False),
    ("policy", "finish", True),
    ("policy", "policy", True),
    ("policy", "tools", True),
    ("tools", "execute", True),  # the guard admitted calls (pending, checkpointed)
    ("tools", "policy", True),  # it admitted none
]


def test_policy_override_routes_the_policy_node_in_sync_and_async_runs(fake_graph):
    _, ctx = fake_graph(["from the endpoint", "from the endpoint"], [])
    inner = FakePolicy(script=["from the override", "again"])
    with policy_override(inner):
        out = graph.invoke({"question": "q"}, context=Context(**ctx))
        assert out["answer"] == "from the override"
        out = asyncio.run(graph.ainvoke({"question": "q"}, context=Context(**ctx)))
        assert out["answer"] == "again"
    assert graph.invoke({"question": "q"}, context=Context(**ctx))["answer"] == "from the endpoint"


# A sample call or value in what the policy reads gets copied into unrelated answers (the 0.5B
# policy answered a question about mountains with the python description's example product).
_EXAMPLE = re.compile(
    r"e\.g\.|for example|for instance|print\(|\d\s*[*/]\s*\d|\d\s+[+-]\s+\d", re.IGNORECASE
)


def test_no_copyable_example_in_a_tool_schema_or_a_prompt():
    from podium.graph import prompts
    from podium.graph.render import answer_tool, tool_schemas
    from podium.tools import load_pool

    tools = [answer_tool, *load_pool("local"), *load_pool("hosted")]
    for schema in tool_schemas(tools):
        text = re.sub(r"\[[^\]]*\]$", "", schema["function"]["description"])  # the price tag
        params = schema["function"]["parameters"].get("properties", {}).values()
        for said in [text, *(p.get("description", "") for p in params)]:
            assert not _EXAMPLE.search(said), (schema["function"]["name"], said)
    for name in dir(prompts):
        value = getattr(prompts, name)
        if isinstance(value, str):
            assert not _EXAMPLE.search(value), name
    assert "python" in {t.name for t in tools}


def test_an_overridden_policy_needs_no_endpoint(no_podium_env, private_cache, tmp_path):
    """The documented embedding test: overrides only, no endpoint, no embedded server."""
    policy = FakePolicy(script=[tool_call("calc", expression="6*7"), "42"])
    with policy_override(policy), tools_override([calc_tool(0.001)]):
        ctx = Context(trajectory_db=str(tmp_path / "t.sqlite"))
        out = graph.invoke({"question": "6*7?"}, context=ctx)
    assert out["answer"] == "42" and out["cost_usd"] > 0.001
    assert policy.bound[0] == ["answer", "calc"]
    assert not (private_cache / "server").exists()  # no llama.cpp server was started
