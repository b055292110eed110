"""Durable CLI runs: a real `podium run --thread` killed mid-way resumes from its checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

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
@pytest.mark.timeout(1300)  # up to 600 s to a checkpoint, 600 s to resume
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
