"""Durable CLI runs (fakes): checkpointed threads pause for approval and take follow-ups."""

from __future__ import annotations

import asyncio

import pytest

from podium.graph import Context
from podium.graph.testing import calc_tool, tool_call
from podium.studio.durable import ThreadError, load_context, run_thread


@pytest.fixture
def cli_run(fake_graph, tmp_path, monkeypatch):
    """``run(thread, question, decision, **ctx) -> (state, waiting)`` through the CLI's runner."""
    monkeypatch.setenv("PODIUM_CHECKPOINT_DB", str(tmp_path / "cp.sqlite"))

    def setup(script, tools):
        policy, base = fake_graph(script, tools)

        def run(thread, question="", decision=None, **ctx):
            context = Context(**{**base, **ctx})
            return asyncio.run(run_thread(thread, question, context, decision, lambda _: None))

        return policy, run

    return setup


def test_a_paused_thread_waits_for_a_decision_then_resumes_with_its_own_context(cli_run, tmp_path):
    _, run = cli_run([tool_call("calc", expression="6*7"), "42"], [calc_tool(0.001)])
    state, waiting = run("t", "What is 6 * 7?", approve_above_usd=0.0, budget_usd=0.5)
    assert waiting["tool"] == "calc" and not state.get("answer")
    with pytest.raises(ThreadError, match="--approve' or '--reject'"):
        run("t")
    with pytest.raises(ThreadError, match="has an unfinished run"):
        run("t", "another question")
    # Resumed with other flags: the run keeps the context it started with.
    state, waiting = run("t", decision="approve", budget_usd=9.0)
    assert waiting is None and state["answer"] == "42"
    assert load_context(tmp_path / "cp.sqlite", "t").budget_usd == 0.5
    assert [e["name"] for e in state["ledger"] if e["kind"] == "tool"] == ["calc"]


def test_a_finished_thread_takes_a_follow_up_and_refuses_a_decision(cli_run):
    policy, run = cli_run(["42", "84"], [calc_tool()])
    first, _ = run("t", "What is 6 * 7?")
    with pytest.raises(ThreadError, match="waits for no approval"):
        run("t", decision="approve")
    with pytest.raises(ThreadError, match="ask a follow-up question"):
        run("t")
    second, _ = run("t", "And twice that?")
    assert (first["answer"], second["answer"]) == ("42", "84")
    assert len(policy.prompts) == 2 and "What is 6 * 7?" in str(policy.prompts[1])
