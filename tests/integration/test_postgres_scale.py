"""PostgreSQL shared by processes: 4 processes x 16 concurrent runs, cross-process resume, a crash.

Each worker process runs 16 threads at once through the CLI's durable runner against the
scripted OpenAI-compatible server of :mod:`podium.graph.testing` (answers only the run's own
question leads to); four of its threads pause for approval. A *different* process then
resumes them with ``--approve``. Every trajectory and every thread's last checkpoint must be
on the server, each with its own answer. Then the server is killed: the CLI refuses to start
with a one-line error (exit 2); restarted, it runs again.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from langgraph.checkpoint.postgres import PostgresSaver

from podium.graph import TrajectoryStore
from podium.graph.database import DatabaseError
from podium.graph.testing import expected_answer, fake_openai, scripted_reply

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

PROCESSES, RUNS, PAUSED = 4, 16, 4
ROOT = Path(__file__).resolve().parents[2]
WORKER = r"""
import asyncio, dataclasses, json, sys
from podium.graph.resources import tools_override
from podium.graph.testing import calc_tool, question
from podium.graph import Context
from podium.studio.durable import run_thread

async def one(base_url, mode, proc, i):
    thread, n = f"p{proc}-{i}", proc * 100 + i
    ctx = Context(policy_base_url=base_url, max_turns=4, budget_usd=1.0)
    if mode == "resume":  # each calc call of the run asks for approval: approve them all
        waiting = True
        while waiting:
            state, waiting = await run_thread(thread, "", ctx, "approve", lambda _: None)
    else:
        ctx = dataclasses.replace(ctx, approve_above_usd=0.0) if i < PAUSED else ctx
        state, waiting = await run_thread(thread, question(n), ctx, None, lambda _: None)
    return {"thread": thread, "question": question(n), "answer": state.get("answer"),
            "trajectory_id": state.get("trajectory_id"), "waiting": waiting is not None}

async def main(base_url, mode, proc):
    runs = range(PAUSED) if mode == "resume" else range(RUNS)
    with tools_override([calc_tool()]):
        print(json.dumps(await asyncio.gather(*(one(base_url, mode, int(proc), i) for i in runs))))

PAUSED, RUNS = {paused}, {runs}
asyncio.run(main(*sys.argv[1:]))
""".replace("{paused}", str(PAUSED)).replace("{runs}", str(RUNS))


def worker(url: str, base_url: str, mode: str, proc: int) -> list[dict]:
    """One worker process: ``RUNS`` fresh threads, or (``resume``) another's paused ones."""
    env = os.environ | {"PODIUM_CHECKPOINT_DB": url, "PODIUM_TRAJECTORY_DB": url}
    argv = [sys.executable, "-c", WORKER, base_url, mode, str(proc)]
    done = subprocess.run(argv, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout)


def wave(url: str, base_url: str, mode: str, procs: list[int]) -> list[dict]:
    with ThreadPoolExecutor(len(procs)) as pool:
        outs = pool.map(lambda p: worker(url, base_url, mode, p), procs)
    return [run for out in outs for run in out]


def last_answers(url: str, threads: list[str]) -> dict[str, str]:
    with PostgresSaver.from_conn_string(url) as saver:
        tuples = {t: saver.get_tuple({"configurable": {"thread_id": t}}) for t in threads}
    return {
        t: (c.checkpoint["channel_values"].get("answer") if c else None) for t, c in tuples.items()
    }


def test_processes_share_runs_resume_each_others_threads_and_survive_a_crash(
    postgres_cluster, pg_url, tmp_path
):
    with fake_openai(reply=scripted_reply, lifetime_s=900) as server:
        first = wave(pg_url, server.base_url, "start", list(range(PROCESSES)))
        assert len(first) == PROCESSES * RUNS
        paused = [r for r in first if r["waiting"]]
        assert {r["thread"] for r in paused} == {
            f"p{p}-{i}" for p in range(PROCESSES) for i in range(PAUSED)
        }
        # Process p resumes the threads process p+1 paused: the checkpoints are on the server.
        resumed = wave(
            pg_url, server.base_url, "resume", [(p + 1) % PROCESSES for p in range(PROCESSES)]
        )
    finished = [r for r in first if not r["waiting"]] + resumed
    assert len(finished) == PROCESSES * RUNS and not any(r["waiting"] for r in resumed)

    store = TrajectoryStore(pg_url)
    records = {r["id"]: r for r in store.records()}
    assert len(store) == len(records) == PROCESSES * RUNS  # nothing lost, nothing twice
    for run in finished:
        assert run["answer"] == expected_answer(run["question"]), run
        record = records[run["trajectory_id"]]
        assert (record["question"], record["answer"]) == (run["question"], run["answer"])
    answers = last_answers(pg_url, [r["thread"] for r in finished])
    assert answers == {r["thread"]: r["answer"] for r in finished}

    postgres_cluster.kill()
    try:
        with pytest.raises(DatabaseError, match=r"^cannot reach the database"):
            len(store)  # a long-lived process: one error while the server is down
        env = os.environ | {"PODIUM_CHECKPOINT_DB": pg_url, "PODIUM_TRAJECTORY_DB": pg_url}
        argv = [sys.executable, "-m", "podium.studio.cli", "run", "--thread", "p0-0", "Again?"]
        down = subprocess.run(
            argv, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300
        )
        assert down.returncode == 2 and len(down.stderr.strip().splitlines()) == 1, down.stderr
        assert "cannot reach the database" in down.stderr and "Traceback" not in down.stderr
    finally:
        postgres_cluster.start()
    assert len(store) == PROCESSES * RUNS  # the same pool reconnects once the server is back
    with fake_openai(reply=scripted_reply, lifetime_s=300) as server:
        again = worker(pg_url, server.base_url, "start", PROCESSES)  # a new process, new threads
    assert sum(not r["waiting"] for r in again) == RUNS - PAUSED  # its paused ones stay paused
    assert len(store) == PROCESSES * RUNS + RUNS - PAUSED
