"""LangGraph Studio's server (``podium studio`` = ``langgraph dev``) runs the real graph offline.

Through ``langgraph_sdk`` as Studio itself talks to it: a thread, a run, the state history of
its checkpoints (messages, ledger, cost so far), and the approval interrupt to both outcomes.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from podium.graph.tool_calls import REJECTED_ERROR, REPEATED_ERROR
from podium.studio.servers import stop_group
from podium.tools.localhost import free_port

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
QUESTION = "What is 1234 * 5678? Use the python tool."


@pytest.fixture(scope="module")
def studio(tmp_path_factory):
    """A running ``podium studio`` and a langgraph_sdk client of it."""
    from langgraph_sdk import get_sync_client

    port = free_port()
    log = tmp_path_factory.mktemp("studio") / "server.log"
    env = os.environ | {"PODIUM_TRAJECTORY_DB": str(log.with_name("traj.sqlite"))}
    argv = [sys.executable, "-m", "podium.studio.cli", "studio", "--port", str(port)]
    with log.open("wb") as sink:
        proc = subprocess.Popen(
            argv, cwd=ROOT, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            assert proc.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, log.read_text()[-3000:]
            try:
                if httpx.get(f"{url}/ok", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        yield get_sync_client(url=url)
    finally:
        stop_group(proc)


def test_the_graph_is_listed_with_its_description_and_schemas(studio):
    (assistant,) = studio.assistants.search(graph_id="podium")
    assert "policy model" in assistant["description"]
    schemas = studio.assistants.get_schemas(assistant["assistant_id"])
    assert "approve_above_usd" in schemas["context_schema"]["properties"]
    # trajectory_id: a caller (a Ray retry) may fix the stored run's id
    assert set(schemas["input_schema"]["properties"]) == {"question", "preference", "trajectory_id"}


def _drive(studio, thread_id, first_input, decision, context):
    """Run until the end, answering every approval pause with ``decision``; return the pauses."""
    pauses = []
    studio.runs.wait(thread_id, "podium", input=first_input, context=context)
    while (state := studio.threads.get_state(thread_id))["interrupts"]:
        pauses.append(state["interrupts"][0]["value"])
        assert len(pauses) < 10
        studio.runs.wait(thread_id, "podium", command={"resume": decision}, context=context)
    return pauses, state


def test_a_run_shows_every_turn_in_its_history_and_pauses_for_approval(studio):
    context = {"approve_above_usd": 0.0, "max_turns": 4, "temperature": 0.0}
    thread = studio.threads.create()
    pauses, state = _drive(studio, thread["thread_id"], {"question": QUESTION}, "approve", context)
    assert pauses, "no tool call was paused for approval"
    first = pauses[0]
    assert first["tool"] and "args" in first and first["predicted_cost_usd"] > 0
    values = state["values"]
    assert values["stopped_by"] in {"answer", "max_turns"} and values["answer"]
    ran = [e for e in values["ledger"] if e["kind"] == "tool"]
    # Approved calls ran (the model's own code may still fail: that is an ok=False run).
    assert ran and any(e["ok"] for e in ran)
    assert not [e for e in ran if e["error"] == "rejected by the user"]
    assert values["cost_usd"] == pytest.approx(sum(e["cost_usd"] for e in values["ledger"]))

    history = studio.threads.get_history(thread["thread_id"], limit=100)
    steps = [h["values"] for h in reversed(history)]
    # cost so far = billed + the worst case of calls admitted but not yet run (the guard's
    # reservation), so it may fall when a call costs less than admitted; billed alone never does.
    costs = [v.get("cost_usd", 0.0) for v in steps]
    billed = [sum(e["cost_usd"] for e in v.get("ledger", [])) for v in steps]
    assert billed == sorted(billed) and costs[-1] == pytest.approx(values["cost_usd"])
    assert all(c >= b - 1e-12 for c, b in zip(costs, billed, strict=True))
    assert any(v.get("ledger") and v.get("messages") for v in steps[:-1])  # turn by turn
    paused = [h for h in history if h["next"] == ["tools"] and h["tasks"][0]["interrupts"]]
    assert paused, "the paused checkpoint is in the history"


def test_rejected_calls_do_not_run(studio):
    context = {"approve_above_usd": 0.0, "max_turns": 3, "temperature": 0.0}
    thread = studio.threads.create()
    pauses, state = _drive(studio, thread["thread_id"], {"question": QUESTION}, "reject", context)
    assert pauses
    tools = [e for e in state["values"]["ledger"] if e["kind"] == "tool"]
    # A rejected call is not run; the policy repeating it is not run again either.
    errors = [e["error"] for e in tools]
    assert tools and errors[0] == REJECTED_ERROR, errors
    assert set(errors) <= {REJECTED_ERROR, REPEATED_ERROR} and not any(e["ok"] for e in tools)
    assert all(e["cost_usd"] == 0 for e in tools)
    assert state["values"]["stopped_by"] in {"answer", "max_turns", "budget"}
