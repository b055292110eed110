"""``--ray`` requests checked before any run, and the caller-chosen run id retries rely on.

No cluster starts here (tests/integration/test_ray.py runs one): an unreachable address must
fail in seconds, as one line, before a run, a store or an output folder exists.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from podium.graph import Context, TrajectoryStore, graph
from podium.graph.testing import fake_openai, text_tool_call


def _suite(path: Path, n: int) -> str:
    rows = [
        {"id": f"t{i}", "question": f"What is {i} + 1?", "answer": str(i + 1)} for i in range(n)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return f"jsonl:{path}"


@pytest.mark.parametrize("command", ["collect", "eval"])
def test_an_unreachable_ray_address_is_one_line_before_any_run(
    tmp_path: Path, command: str
) -> None:
    suite = _suite(tmp_path / "tasks.jsonl", 2)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PODIUM_")}
    env["PODIUM_TRAJECTORY_DB"] = str(tmp_path / "traj.sqlite")
    with fake_openai() as server:
        args = {
            "collect": ["collect", "--tasks", suite, "--out", str(tmp_path / "runs.sqlite")],
            "eval": ["eval", suite, "--out", str(tmp_path / "eval")],
        }[command]
        proc = subprocess.run(
            [sys.executable, "-m", "podium.studio.cli", *args, "--ray", "127.0.0.1:1",
             "--policy-base-url", server.base_url],
            capture_output=True, text=True, timeout=120, env=env,
        )  # fmt: skip
        assert server.requests == 0  # no policy turn was asked for
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert "Ray cluster at 127.0.0.1:1 is unreachable" in proc.stderr
    assert "ray start --head" in proc.stderr and "--ray" in proc.stderr
    for made in ("runs.sqlite", "eval", "traj.sqlite"):
        assert not (tmp_path / made).exists(), made


def test_a_run_given_its_id_twice_is_stored_once(fake_graph, tmp_path: Path) -> None:
    """What makes a retried run idempotent: the caller's id, and a write that replaces."""
    db = tmp_path / "t.sqlite"
    answers = []
    for text in ("first try", "retried"):
        _, ctx = fake_graph([text_tool_call("answer", text=text)], [])
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
    from podium.training.eval.ray_runs import RayError, check_address

    with pytest.raises(RayError, match=message) as info:
        check_address(address)
    assert "\n" not in str(info.value) and "--ray" in str(info.value)
    check_address("local")  # starts nothing, checks nothing


def test_collect_gives_every_planned_run_its_own_id(tmp_path: Path) -> None:
    """Ids are fixed before the runs (so a Ray retry replaces), fresh per collection."""
    from podium.training.eval import suites
    from podium.training.grpo.collect import CollectConfig, plan_runs

    suite = _suite(tmp_path / "tasks.jsonl", 3)
    cfg = CollectConfig(tasks=suite, out=str(tmp_path / "r.sqlite"), group_size=4)
    tasks = suites.load_suite(suite)
    store = TrajectoryStore(tmp_path / "r.sqlite")
    first, again = plan_runs(cfg, tasks, {}, store), plan_runs(cfg, tasks, {}, store)
    assert [(s.task.id, s.index, s.run) for s in first] == [
        (t.id, i, 4 * n + i) for n, t in enumerate(tasks) for i in range(4)
    ]
    ids = {s.run_id for s in first} | {s.run_id for s in again}
    assert len(ids) == 2 * len(first) == 24
