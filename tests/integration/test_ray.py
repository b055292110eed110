"""Rollouts and evaluations on a local Ray cluster of 2 workers, against a scripted endpoint.

The policy is the real OpenAI client in each Ray worker, talking to
:func:`podium.graph.testing.fake_openai` in this process; it answers each run from the run's
own question, so a stored record whose answer is not its question's shows runs mixed up.
The cluster is the one ``podium collect --ray local`` starts, so the module also checks that
none of its processes listens on anything but the loopback address.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from podium.graph import TrajectoryStore
from podium.graph.testing import fake_openai, openai_tool_call, question, question_parts

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

TASKS, GROUP = 32, 2  # 64 runs
REPLY_S = 0.2  # each policy reply takes this long, so runs are in flight when a worker dies


def gold(q: str) -> str:
    _, a, b = question_parts(q)
    return str(a * b)


def scripted_reply(body: dict[str, Any]) -> dict[str, Any]:
    """Answer the run's own question (found in its first user turn) after a short delay."""
    time.sleep(REPLY_S)
    first = next(str(m["content"]) for m in body["messages"] if m["role"] == "user")
    call = openai_tool_call("call_answer", "answer", {"text": gold(first)})
    return {"role": "assistant", "content": None, "tool_calls": [call]}


def write_suite(path: Path, n: int) -> str:
    rows = [
        {"id": f"t{i:02d}", "question": question(i), "answer": gold(question(i))} for i in range(n)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return f"jsonl:{path}"


@pytest.fixture(scope="module")
def cluster():
    """The local Ray cluster ``--ray local`` starts (2 CPUs), for the module; shut down after."""
    from podium.training.eval.ray_runs import RayPlan, connect

    keep = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("PODIUM_")}
    connect(RayPlan("local", workers=2))  # sets Ray's loopback mode before ray is imported
    import ray

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


def _is_loopback(ip: str) -> bool:
    address = ipaddress.ip_address(ip)
    mapped = getattr(address, "ipv4_mapped", None)  # ::ffff:127.0.0.1 on a dual-stack socket
    return (mapped or address).is_loopback


def _bound_sockets() -> list[tuple[str, str, int]]:
    """(process, address, port) of every listening TCP or bound UDP socket of this process
    and everything it started (the cluster's GCS, raylet, agents, workers)."""
    import psutil

    me = psutil.Process()
    procs = {p.pid: p for p in [me, *me.children(recursive=True)]}
    bound = []
    for conn in psutil.net_connections(kind="inet"):
        udp = conn.status == psutil.CONN_NONE and not conn.raddr
        if conn.pid in procs and conn.laddr and (conn.status == psutil.CONN_LISTEN or udp):
            name = " ".join(procs[conn.pid].cmdline()) or procs[conn.pid].name()
            bound.append((name, conn.laddr.ip, conn.laddr.port))
    return bound


def test_the_local_cluster_listens_on_loopback_only(cluster) -> None:
    import ray

    from podium.training.eval.ray_runs import RayPlan, start_workers

    workers = start_workers(RayPlan("local", workers=2))
    try:
        assert len(set(ray.get([w.pid.remote() for w in workers]))) == 2  # both are up
        bound = _bound_sockets()
    finally:
        for worker in workers:
            ray.kill(worker)
    names = " ".join(name for name, _, _ in bound)
    # The check saw Ray's own servers, so it could have caught one of them on 0.0.0.0 or ::.
    assert "gcs_server" in names and "raylet" in names and "ray::RunWorker" in names, bound
    # Ray's API server process runs anyway; without the dashboard it serves nothing on TCP.
    assert not [b for b in bound if " ".join(b[0].split()[:2]).endswith("dashboard.py")], bound
    exposed = [b for b in bound if not _is_loopback(b[1])]
    assert not exposed, f"listening beyond 127.0.0.1: {exposed}"
    assert ray.util.get_node_ip_address() == "127.0.0.1"


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


def test_eval_on_ray_writes_one_row_per_task(cluster, tmp_path: Path) -> None:
    from podium.training.eval.runner import EvalConfig, evaluate

    suite = write_suite(tmp_path / "tasks.jsonl", 16)
    db = tmp_path / "trajectories.sqlite"
    with (
        fake_openai(reply=scripted_reply, lifetime_s=600) as a,
        fake_openai(reply=scripted_reply, lifetime_s=600) as b,
    ):
        context = {"policy_base_url": f"{a.base_url},{b.base_url}", "profile": "environment",
                   "max_turns": 2, "trajectory_db": str(db)}  # fmt: skip
        cfg = EvalConfig(
            suite=suite, out=tmp_path / "eval", concurrency=4, progress=False, ray="local",
            context=context,
        )  # fmt: skip
        summary = evaluate(cfg)
        assert (a.requests, b.requests) == (8, 8)  # the endpoint list is spread on Ray too
    rows = [json.loads(line) for line in (tmp_path / "eval" / "results.jsonl").open()]
    assert sorted(r["task_id"] for r in rows) == [f"t{i:02d}" for i in range(16)]
    assert summary["routers"]["policy"]["accuracy"] == 1.0
    stored = {r["id"]: r for r in TrajectoryStore(db).records()}
    assert len(stored) == 16
    assert all(stored[r["trajectory_id"]]["question"] == r["question"] for r in rows)


def test_a_local_cluster_that_would_not_be_on_loopback_is_refused(tmp_path: Path) -> None:
    """Ray reads its single-node switch when imported: imported first, it is too late."""
    script = (
        "import ray\n"  # before podium could set RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0
        "from podium.training.eval.ray_runs import RayError, RayPlan, connect\n"
        "try:\n"
        "    connect(RayPlan('local', workers=1))\n"
        "except RayError as exc:\n"
        "    print('refused:', exc)\n"
        "print('still up:', ray.is_initialized())\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "refused: a local Ray cluster would listen on" in proc.stdout, proc.stdout
    assert "still up: False" in proc.stdout  # it was shut down, not left listening
