"""The trajectory store, the same tests on both backends: a SQLite file and a PostgreSQL server."""

from __future__ import annotations

import subprocess
import sys

import pytest

from podium.graph import TrajectoryStore
from podium.graph.database import DatabaseError, check_reachable, describe
from podium.graph.stores import PostgresTrajectories, SqliteTrajectories

DOWN = "postgresql://podium:s3cret@127.0.0.1:1/runs"  # port 1: nothing listens

pytestmark = pytest.mark.integration  # a real PostgreSQL server beside SQLite


def record(tid: str, created: float, **extra) -> dict:
    return {
        "id": tid, "started_at": created, "question": f"q {tid}", "answer": f"a {tid}",
        "stopped_by": "answer", "cost_usd": 0.25, "latency_s": 1.5, "turns": 2,
        "context": {"profile": "local"}, "ledger": [{"kind": "tool", "cost_usd": 0.25}], **extra,
    }  # fmt: skip


def test_the_location_picks_the_backend(store_at):
    store = TrajectoryStore(store_at("runs"))
    expected = (
        PostgresTrajectories if store_at("runs").startswith("postgresql") else SqliteTrajectories
    )
    assert type(store) is expected and store.location == store_at("runs")


def test_records_round_trip_exactly_and_a_save_replaces(store_at):
    store = TrajectoryStore(store_at("runs"))
    first = record("a", 1.0, messages=["nul \0 and ünïcode 😀"])
    store.save(first)
    store.save(record("b", 2.0))
    assert store.get("a") == first and store.get("missing") is None
    store.save(first | {"answer": "replaced"})
    assert len(store) == 2 and store.get("a")["answer"] == "replaced"


def test_latest_is_newest_first_and_records_filter_on_a_key(store_at):
    store = TrajectoryStore(store_at("runs"))
    for i, extra in enumerate([{}, {"training": {"group_id": "g"}}, {"training": None}, {}]):
        store.save(record(f"r{i}", 10.0 + i, **extra))
    assert [r["id"] for r in store.latest(2)] == ["r3", "r2"]
    assert [r["id"] for r in store.records()] == ["r0", "r1", "r2", "r3"]
    assert [r["id"] for r in store.records("training")] == ["r1"]  # a null value counts as absent


def test_two_stores_on_one_location_see_each_others_rows(store_at):
    TrajectoryStore(store_at("runs")).save(record("x", 1.0))
    assert TrajectoryStore(store_at("runs")).get("x")["answer"] == "a x"


def test_an_unreachable_server_is_one_line_naming_it_without_the_password():
    with pytest.raises(DatabaseError) as err:
        check_reachable(DOWN, "PODIUM_TRAJECTORY_DB", timeout_s=2)
    message = str(err.value)
    assert "\n" not in message and "s3cret" not in message
    assert message.startswith("cannot reach the database postgresql://podium@127.0.0.1:1/runs")
    assert message.endswith("start the server or fix PODIUM_TRAJECTORY_DB")
    check_reachable("/tmp/any.sqlite", "PODIUM_TRAJECTORY_DB")  # a file needs no server
    assert describe("postgresql://u:pw@h:5/d") == "postgresql://u@h:5/d"


@pytest.mark.parametrize(
    ("argv", "variable"),
    [
        (["run", "What is 2+2?"], "PODIUM_CHECKPOINT_DB"),
        (["run", "What is 2+2?"], "PODIUM_TRAJECTORY_DB"),
        (["eval", "math", "--limit", "1", "--quiet"], "PODIUM_TRAJECTORY_DB"),
        (["collect", "--tasks", "math", "--limit", "1", "--out", DOWN], ""),
    ],
)
def test_the_cli_refuses_an_unreachable_database_before_any_run(argv, variable, tmp_path):
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PODIUM_CACHE_DIR": str(tmp_path)}
    env |= {"PYTHONPATH": ":".join(sys.path)} | ({variable: DOWN} if variable else {})
    argv = [sys.executable, "-m", "podium.studio.cli", *argv]
    done = subprocess.run(argv, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr[-2000:]
    (line,) = done.stderr.strip().splitlines()
    assert line.startswith("podium: error: cannot reach the database postgresql://podium@")
    assert not list(tmp_path.glob("**/results.jsonl"))  # no run started, nothing half-written
