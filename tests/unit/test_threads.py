"""Checkpointed threads: the approval interrupt, follow-up questions, resuming a run."""

from __future__ import annotations

import math

import pytest
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from podium.graph import Context, build_graph
from podium.graph.state import spent
from podium.graph.testing import calc_tool, expert_tool
from podium.graph.tool_calls import REJECTED_ERROR, approved


def call(name, **args):
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": f"c_{name}"}])


@pytest.fixture
def threaded(fake_graph):
    """A checkpointed podium graph on a fake policy: ``(graph, context, config, policy)``."""

    def setup(script, tools, **ctx):
        policy, base = fake_graph(script, tools)
        graph = build_graph().compile(checkpointer=InMemorySaver())
        return graph, Context(**{**base, **ctx}), {"configurable": {"thread_id": "t1"}}, policy

    return setup


def test_a_call_above_the_approval_threshold_pauses_the_run(threaded):
    tools = [calc_tool(0.001), expert_tool()]
    graph, ctx, cfg, _ = threaded(
        [call("calc", expression="6*7"), "42"], tools, approve_above_usd=0.0005
    )
    out = graph.invoke({"question": "What is 6 * 7?"}, cfg, context=ctx)
    (pause,) = out["__interrupt__"]
    assert pause.value["tool"] == "calc" and pause.value["args"] == {"expression": "6*7"}
    assert math.isclose(pause.value["predicted_cost_usd"], 0.001)
    assert graph.get_state(cfg).next == ("tools",)
    assert not [m for m in out["messages"] if isinstance(m, ToolMessage)]  # nothing ran yet

    out = graph.invoke(Command(resume="approve"), cfg, context=ctx)
    assert out["answer"] == "42"
    tool = [e for e in out["ledger"] if e["kind"] == "tool"]
    assert [(e["name"], e["ok"], e["cost_usd"]) for e in tool] == [("calc", True, 0.001)]


def test_a_rejected_call_is_not_run_and_costs_nothing(threaded):
    graph, ctx, cfg, policy = threaded(
        [call("calc", expression="6*7"), "I was not allowed to compute it."],
        [calc_tool(0.001)],
        approve_above_usd=0.0,
    )
    graph.invoke({"question": "What is 6 * 7?"}, cfg, context=ctx)
    out = graph.invoke(Command(resume={"approve": False}), cfg, context=ctx)
    (entry,) = [e for e in out["ledger"] if e["kind"] == "tool"]
    assert entry["error"] == REJECTED_ERROR and entry["cost_usd"] == 0
    assert "the user rejected this call" in str(policy.prompts[-1][-1].content)  # it was told
    assert out["stopped_by"] == "answer"


def test_calls_under_the_threshold_and_the_default_never_pause(threaded):
    for limit in (0.01, -1.0):
        graph, ctx, cfg, _ = threaded(
            [call("calc", expression="1+1"), "2"], [calc_tool(0.001)], approve_above_usd=limit
        )
        out = graph.invoke({"question": "1+1?"}, cfg, context=ctx)
        assert "__interrupt__" not in out and out["answer"] == "2"


@pytest.mark.parametrize(
    ("decision", "ok"),
    [
        ("approve", True),
        ("Yes", True),
        (True, True),
        ({"action": "approve"}, True),
        ("reject", False),
        (False, False),
        ({"approve": False}, False),
        ("", False),
        (None, False),
    ],
)
def test_resume_values(decision, ok):
    assert approved(decision) is ok


def test_a_follow_up_question_on_a_finished_thread_starts_a_new_run(threaded):
    graph, ctx, cfg, policy = threaded(
        [call("calc", expression="6*7"), "42", call("calc", expression="42*2"), "84"],
        [calc_tool(0.001)],
        max_turns=3,
    )
    first = graph.invoke({"question": "What is 6 * 7?"}, cfg, context=ctx)
    second = graph.invoke({"question": "And twice that?"}, cfg, context=ctx)
    assert (first["answer"], second["answer"]) == ("42", "84")
    assert second["trajectory_id"] != first["trajectory_id"]
    # The policy saw the whole conversation, the new question last.
    humans = [m.content for m in policy.prompts[2] if isinstance(m, HumanMessage)]
    assert humans[0] == "What is 6 * 7?" and humans[-1] == "And twice that?"
    # Each run has its own turn limit (3: cumulative turns would force turn 3) and its own spending.
    assert second["stopped_by"] == "answer" and second["turns"] == 4
    assert len(second["ledger"]) == 2 * len(first["ledger"])
    run = second["ledger"][second["run_ledger_start"] :]
    assert math.isclose(spent(run), spent(first["ledger"]))
    assert math.isclose(second["cost_usd"], spent(run))  # the state shows the run's cost so far
    assert math.isclose(first["cost_usd"], spent(first["ledger"]))


def test_the_trajectory_of_a_follow_up_holds_its_own_run(threaded, tmp_path):
    from podium.graph import TrajectoryStore

    graph, ctx, cfg, _ = threaded(["42", "84"], [calc_tool()])
    graph.invoke({"question": "What is 6 * 7?"}, cfg, context=ctx)
    out = graph.invoke({"question": "And twice that?"}, cfg, context=ctx)
    record = TrajectoryStore(ctx.trajectory_db).get(out["trajectory_id"])
    assert record["question"] == "And twice that?" and record["answer"] == "84"
    assert record["turns"] == 1 and len(record["ledger"]) == 1
    assert [t["raw"] for t in record["policy_turns"]] == ["84"]
    assert len(TrajectoryStore(ctx.trajectory_db)) == 2
