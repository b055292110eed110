"""End to end on the embedded default: real llama.cpp server, real models, real sandbox."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys

import pytest

from podium.graph import TrajectoryStore

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1000)]  # a run may take 900 s
QUESTION = "What is 1234 * 5678? Use the python tool."


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    return tmp_path_factory.mktemp("e2e") / "trajectories.sqlite"


def run_json(db, *args: str) -> dict:
    env = {**os.environ, "PODIUM_TRAJECTORY_DB": str(db)}
    done = subprocess.run(
        [sys.executable, "-m", "podium.studio.cli", "run", *args, "--json"],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    (line,) = done.stdout.strip().splitlines()  # exactly one JSON object
    return json.loads(line)


def test_sample_question_is_answered_with_the_python_tool_and_fully_billed(db):
    out = run_json(db, QUESTION)
    assert set(out) >= {
        "answer",
        "cost_usd",
        "latency_s",
        "turns",
        "stopped_by",
        "trajectory_id",
        "tool_calls",
    }
    assert "7006652" in out["answer"].replace(",", "")
    assert out["stopped_by"] == "answer"
    assert any(c["tool"] == "python" and c["ok"] for c in out["tool_calls"])
    parts = out["policy_cost_usd"] + sum(c["cost_usd"] for c in out["tool_calls"])
    assert out["cost_usd"] > 0 and math.isclose(out["cost_usd"], parts, rel_tol=1e-9)
    record = TrajectoryStore(db).get(out["trajectory_id"])
    assert record["answer"] == out["answer"] and record["policy_turns"][0]["raw"]
    assert math.isclose(record["cost_usd"], out["cost_usd"])
    assert all(e["input_tokens"] > 0 for e in record["ledger"] if e["kind"] == "policy")


def test_zero_budget_stops_by_budget_without_calling_a_tool(db):
    out = run_json(db, QUESTION, "--budget-usd", "0")
    assert out["stopped_by"] == "budget" and out["tool_calls"] == [] and out["cost_usd"] == 0


def test_local_only_offers_no_remote_tool(db, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-used")
    monkeypatch.setenv("TAVILY_API_KEY", "tvly-test-not-used")
    out = run_json(db, QUESTION, "--profile", "hosted", "--local-only", "--max-turns", "3")
    offered = TrajectoryStore(db).get(out["trajectory_id"])["tools"]
    assert "python" in offered
    assert not {"ask_gpt5", "ask_gpt5_mini", "ask_claude", "web_search"} & set(offered)
