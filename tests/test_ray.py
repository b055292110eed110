"""Rollouts and evaluations on a local Ray cluster of 2 workers, against a scripted endpoint.

The policy is the real OpenAI client in each Ray worker, talking to the fake server of
``fake_openai.py`` in this process; it answers each run from the run's own question, so a
stored record whose answer is not its question's shows runs mixed up.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from podium.graph import TrajectoryStore

from .fake_openai import fake_openai

pytestmark = pytest.mark.timeout(600)

TASKS, GROUP = 32, 2  # 64 runs
_QUESTION = re.compile(r"Run (\d+): what is (\d+) \* (\d+)\?")
REPLY_S = 0.2  # each policy reply takes this long, so runs are in flight when a worker dies


def question(i: int) -> str:
    return f"Run {i}: what is {1000 + i} * {7 + i % 13}?"


def gold(q: str) -> str:
    _, a, b = map(int, _QUESTION.search(q).groups())  # type: ignore[union-attr]
    return str(a * b)


def scripted_reply(body: dict[str, Any]) -> dict[str, Any]:
    """Answer the run's own question (found in its first user turn) after a short delay."""
    time.sleep(REPLY_S)
    first = next(str(m["content"]) for m in body["messages"] if m["role"] == "user")
    args = json.dumps({"text": gold(first)})
    call = {
        "id": "call_answer",
        "type": "function",
        "function": {"name": "answer", "arguments": args},
    }
    return {"role": "assistant", "content": None, "tool_calls": [call]}


def write_suite(path: Path, n: int) -> str:
    rows = [
        {"id": f"t{i:02d}", "question": question(i), "answer": gold(question(i))} for i in range(n)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return f"jsonl:{path}"


@pytest.fixture(scope="module")
def cluster():
    """A local Ray cluster of 2 CPUs for the module; shut down after it."""
    import ray

    from podium.training.ray_runs import RayPlan, connect

    keep = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("PODIUM_")}
    connect(RayPlan("local", workers=2))
    yield
    ray.shutdown()
    os.environ.update(keep)


def _collect_config(suite: str, out: Path, base_url: str) -> Any:
    from podium.training.grpo.collect import CollectConfig

    return CollectConfig(
        tasks=suite, out=str(out), group_size=GROUP, concurrency=4, policy_base_url=base_url,
        profile="environment", max_turns=2, ray="local", ray_workers=2,
    )  # fmt: skip


def check_store(db: Path, n: int) -> list[dict[str, Any]]:
    """Every run stored exactly once, each with its own question's answer."""
    records = TrajectoryStore(db).records("training")
    keys = [(r["training"]["task_id"], r["training"]["sample"]) for r in records]
    assert sorted(keys) == sorted((f"t{i:02d}", s) for i in range(n) for s in range(GROUP))
    assert len({r["id"] for r in records}) == len(records) == len(TrajectoryStore(db))
    for r in records:
        i = int(r["training"]["task_id"][1:])
        assert r["question"] == question(i) and r["answer"] == gold(question(i))
        assert r["training"]["verdict"]["correct"] and r["stopped_by"] == "answer"
    return records


def _worker_pids() -> list[int]:
    """Process ids of the live RunWorker actors (Ray titles them ``ray::RunWorker``)."""
    import psutil

    return [
        p.pid
        for p in psutil.process_iter(["cmdline"])
        if p.info["cmdline"] and p.info["cmdline"][0].startswith("ray::RunWorker")
    ]


@pytest.mark.integration
def test_64_runs_over_2_workers_are_each_stored_once(cluster, tmp_path: Path) -> None:
    from podium.training.grpo.collect import collect

    suite = write_suite(tmp_path / "tasks.jsonl", TASKS)
    seen: list[str] = []
    with fake_openai(reply=scripted_reply, lifetime_s=600) as server:
        cfg = _collect_config(suite, tmp_path / "runs.sqlite", server.base_url)
        summary = asyncio.run(collect(cfg, progress=lambda r: seen.append(r["id"])))
        assert server.requests == TASKS * GROUP  # one policy turn per run, none repeated
    assert summary["runs"] == summary["correct"] == TASKS * GROUP == len(set(seen))
    check_store(tmp_path / "runs.sqlite", TASKS)


@pytest.mark.integration
def test_a_worker_killed_mid_run_loses_and_duplicates_nothing(cluster, tmp_path: Path) -> None:
    from podium.training.grpo.collect import collect

    suite = write_suite(tmp_path / "tasks.jsonl", TASKS)
    killed: list[int] = []

    def kill_one_worker(record: dict[str, Any]) -> None:
        if not killed and len(TrajectoryStore(tmp_path / "runs.sqlite")) >= 8:
            pids = _worker_pids()
            assert len(pids) == 2
            os.kill(pids[0], signal.SIGKILL)  # with runs of its own in flight
            killed.append(pids[0])

    with fake_openai(reply=scripted_reply, lifetime_s=600) as server:
        cfg = _collect_config(suite, tmp_path / "runs.sqlite", server.base_url)
        summary = asyncio.run(collect(cfg, progress=kill_one_worker))
        retried = server.requests - TASKS * GROUP
    assert killed and killed[0] not in _worker_pids()
    assert retried > 0  # the killed worker's runs in flight were run again elsewhere
    assert summary["runs"] == summary["correct"] == TASKS * GROUP
    check_store(tmp_path / "runs.sqlite", TASKS)


@pytest.mark.integration
def test_eval_on_ray_writes_one_row_per_task(cluster, tmp_path: Path) -> None:
    from podium.training.eval.runner import EvalConfig, evaluate

    suite = write_suite(tmp_path / "tasks.jsonl", 16)
    db = tmp_path / "trajectories.sqlite"
    with fake_openai(reply=scripted_reply, lifetime_s=600) as server:
        context = {"policy_base_url": server.base_url, "profile": "environment", "max_turns": 2}
        cfg = EvalConfig(
            suite=suite, out=tmp_path / "eval", concurrency=4, progress=False, ray="local",
            context=context | {"trajectory_db": str(db)},
        )  # fmt: skip
        summary = evaluate(cfg)
    rows = [json.loads(line) for line in (tmp_path / "eval" / "results.jsonl").open()]
    assert sorted(r["task_id"] for r in rows) == [f"t{i:02d}" for i in range(16)]
    assert summary["routers"]["policy"]["accuracy"] == 1.0
    stored = {r["id"]: r for r in TrajectoryStore(db).records()}
    assert len(stored) == 16
    assert all(stored[r["trajectory_id"]]["question"] == r["question"] for r in rows)


@pytest.mark.parametrize("command", ["collect", "eval"])
def test_an_unreachable_ray_address_is_one_line_before_any_run(
    tmp_path: Path, command: str
) -> None:
    suite = write_suite(tmp_path / "tasks.jsonl", 2)
    with fake_openai(reply=scripted_reply) as server:
        args = {
            "collect": ["collect", "--tasks", suite, "--out", str(tmp_path / "runs.sqlite"),
                        "--policy-base-url", server.base_url],
            "eval": ["eval", suite, "--out", str(tmp_path / "eval")],
        }[command]  # fmt: skip
        proc = subprocess.run(
            [sys.executable, "-m", "podium.studio.cli", *args, "--ray", "127.0.0.1:1"],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert server.requests == 0
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "Ray cluster at 127.0.0.1:1 is unreachable" in proc.stderr
    assert not (tmp_path / "runs.sqlite").exists() and not (tmp_path / "eval").exists()


def test_a_run_given_its_id_twice_is_stored_once(fake_graph, tmp_path: Path) -> None:
    """What makes a retried run idempotent: the caller's id, and a write that replaces."""
    from podium.graph import Context, graph

    db = tmp_path / "t.sqlite"
    answers = []
    for text in ("first try", "retried"):
        _, ctx = fake_graph(
            [f'<tool_call>\n{{"name": "answer", "arguments": {{"text": "{text}"}}}}\n</tool_call>'],
            [],
        )
        run = {"question": "q?", "trajectory_id": "run-7"}
        out = graph.invoke(run, context=Context(**(ctx | {"trajectory_db": str(db)})))
        answers.append(out["answer"])
    records = TrajectoryStore(db).records()
    assert answers == ["first try", "retried"]
    assert [(r["id"], r["answer"]) for r in records] == [("run-7", "retried")]
    assert records[0]["started_at"] > 0 and records[0]["latency_s"] > 0
    out = graph.invoke({"question": "q?"}, context=Context(**(ctx | {"trajectory_db": str(db)})))
    assert out["trajectory_id"] not in ("", "run-7") and len(TrajectoryStore(db)) == 2


@pytest.mark.parametrize(
    ("address", "message"),
    [("nonsense", "is not HOST:PORT"), ("127.0.0.1:1", "is unreachable")],
)
def test_check_address_names_the_fix(address: str, message: str) -> None:
    from podium.training.ray_runs import RayError, check_address

    with pytest.raises(RayError, match=message) as info:
        check_address(address)
    assert "\n" not in str(info.value) and "--ray" in str(info.value)
    check_address("local")  # starts nothing, checks nothing
