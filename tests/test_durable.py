"""Durable CLI runs: checkpointed threads resume, pause for approval and take follow-ups."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from langchain_core.messages import AIMessage

from podium.graph import Context, TrajectoryStore
from podium.studio.durable import ThreadError, load_context, run_thread

from .fakes import calc_tool


def call(name, **args):
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": f"c_{name}"}])


@pytest.fixture
def cli_run(fake_graph, store_at, monkeypatch):
    """``run(thread, question, decision, **ctx) -> (state, waiting)`` through the CLI's runner.

    Checkpoints and trajectories go to SQLite files, then to a PostgreSQL server.
    """
    monkeypatch.setenv("PODIUM_CHECKPOINT_DB", store_at("cp"))

    def setup(script, tools):
        policy, base = fake_graph(script, tools)
        base["trajectory_db"] = store_at("traj")

        def run(thread, question="", decision=None, **ctx):
            context = Context(**{**base, **ctx})
            return asyncio.run(run_thread(thread, question, context, decision, lambda _: None))

        return policy, run

    return setup


def test_a_paused_thread_waits_for_a_decision_then_resumes_with_its_own_context(cli_run, store_at):
    _, run = cli_run([call("calc", expression="6*7"), "42"], [calc_tool(0.001)])
    state, waiting = run("t", "What is 6 * 7?", approve_above_usd=0.0, budget_usd=0.5)
    assert waiting["tool"] == "calc" and not state.get("answer")
    with pytest.raises(ThreadError, match="--approve' or '--reject'"):
        run("t")
    with pytest.raises(ThreadError, match="has an unfinished run"):
        run("t", "another question")
    # Resumed with other flags: the run keeps the context it started with.
    state, waiting = run("t", decision="approve", budget_usd=9.0)
    assert waiting is None and state["answer"] == "42"
    assert load_context(store_at("cp"), "t").budget_usd == 0.5
    assert [e["name"] for e in state["ledger"] if e["kind"] == "tool"] == ["calc"]


def test_a_finished_thread_takes_a_follow_up_and_refuses_a_decision(cli_run, store_at):
    policy, run = cli_run(["42", "84"], [calc_tool()])
    first, _ = run("t", "What is 6 * 7?")
    with pytest.raises(ThreadError, match="waits for no approval"):
        run("t", decision="approve")
    with pytest.raises(ThreadError, match="ask a follow-up question"):
        run("t")
    second, _ = run("t", "And twice that?")
    assert (first["answer"], second["answer"]) == ("42", "84")
    assert len(policy.prompts) == 2 and "What is 6 * 7?" in str(policy.prompts[1])
    assert TrajectoryStore(store_at("traj")).get(second["trajectory_id"])["answer"] == "84"


# --- the real CLI, killed mid-run ------------------------------------------------------------

QUESTION = "What is 1234 * 5678? Use the python tool."


def _checkpointed_ledger(db, thread):
    from langgraph.checkpoint.sqlite import SqliteSaver

    if not db.exists():
        return []
    with SqliteSaver.from_conn_string(str(db)) as saver:
        saved = saver.get_tuple({"configurable": {"thread_id": thread}})
    return list(saved.checkpoint["channel_values"].get("ledger", [])) if saved else []


@pytest.mark.integration
def test_a_run_killed_mid_way_resumes_from_its_last_checkpoint(tmp_path):
    db = tmp_path / "cp.sqlite"
    env = os.environ | {
        "PODIUM_CHECKPOINT_DB": str(db),
        "PODIUM_TRAJECTORY_DB": str(tmp_path / "traj.sqlite"),
    }
    argv = [sys.executable, "-m", "podium.studio.cli", "run", "--json", "--thread", "k1"]
    proc = subprocess.Popen([*argv, QUESTION], env=env, stdout=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 600
    while not (before := _checkpointed_ledger(db, "k1")) and proc.poll() is None:
        assert time.monotonic() < deadline, "no checkpoint within 10 minutes"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert before, "the run finished before a step was checkpointed"

    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout)
    after = _checkpointed_ledger(db, "k1")
    assert after[: len(before)] == before  # the billed steps before the kill are kept as they were
    assert result["stopped_by"] in {"answer", "max_turns"} and result["thread_id"] == "k1"
    assert result["answer"]
