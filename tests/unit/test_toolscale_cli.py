"""``podium synth``: output, determinism, bad input (one line, exit 2, no half-written file)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from podium.graph.testing import FakePolicy
from podium.training.synth import toolscale
from podium.training.synth.domains import DOMAINS
from podium.training.synth.llm import build_llm_env
from podium.training.synth.tasks import SynthError

pytestmark = pytest.mark.usefixtures("private_cache")


def podium(*args: str, env_dir) -> subprocess.CompletedProcess:
    code = "from podium.studio.cli import main; main()"
    env = {"PODIUM_CACHE_DIR": str(env_dir), "PATH": "/usr/bin:/bin", "HOME": str(env_dir)}
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env=env, timeout=300)  # fmt: skip


def test_synth_env_and_tasks_are_deterministic(tmp_path):
    out = [tmp_path / "a.jsonl", tmp_path / "b.jsonl"]
    for path in out:
        r = podium("synth", "tasks", "--env", "travel", "-n", "50", "--seed", "1", "--out",
                   str(path), env_dir=tmp_path / "c")  # fmt: skip
        assert r.returncode == 0, r.stderr
        assert "50 tasks" in r.stdout
    assert out[0].read_bytes() == out[1].read_bytes()
    rows = [json.loads(line) for line in out[0].read_text().splitlines()]
    assert len(rows) == 50 and all(r["suite"] == "toolscale" for r in rows)
    assert {"actions", "required", "difficulty", "gold_hash"} <= set(rows[0]["data"])
    r = podium("synth", "verify", str(out[0]), env_dir=tmp_path / "c")
    assert r.returncode == 0 and "50/50 tasks verified" in r.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["synth", "env", "--domain", "casino"], "unknown domain 'casino'"),
        (["synth", "tasks", "--env", "nowhere.sqlite", "-n", "5"], "unknown domain"),
        (["synth", "tasks", "--env", "bank", "-n", "0"], "-n must be at least 1"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    r = podium(*args, "--out", str(tmp_path / "out.x"), env_dir=tmp_path / "c")
    assert r.returncode == 2
    assert r.stderr.count("\n") == 1 and message in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "out.x").exists()


def test_a_corrupt_database_is_refused(tmp_path):
    bad = tmp_path / "bad.sqlite"
    bad.write_bytes(b"this is not sqlite" * 100)
    r = podium("synth", "tasks", "--env", str(bad), "--out", str(tmp_path / "t.jsonl"),
               env_dir=tmp_path / "c")  # fmt: skip
    assert r.returncode == 2 and "is not a podium environment" in r.stderr
    assert r.stderr.count("\n") == 1 and not (tmp_path / "t.jsonl").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["bad.sqlite", "c"] or not list(
        tmp_path.glob(".t.jsonl*")
    )


def test_a_task_naming_a_missing_tool_is_refused(tmp_path):
    env = toolscale.build_env("bank", 0, tmp_path / "bank.sqlite")
    tasks, _ = toolscale.synthesize(env, 3, 0)
    path = tmp_path / "tasks.jsonl"
    toolscale.write_tasks(tasks, path)
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    rows[1]["data"]["actions"][0]["tool"] = "launder_money"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    r = podium("synth", "verify", str(path), env_dir=tmp_path / "c")
    assert r.returncode == 2 and r.stderr.count("\n") == 1
    assert "names tool 'launder_money', which environment bank does not have" in r.stderr


def test_interrupted_write_leaves_no_file(tmp_path, monkeypatch):
    from podium.training.synth import toolscale as ts

    def boom(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(ts, "create_environment", boom)
    with pytest.raises(RuntimeError):
        ts.build_env("bank", 0, tmp_path / "env.sqlite")
    assert list(tmp_path.iterdir()) == []


def _proposal(name: str) -> str:
    spec, rows = DOMAINS["bank"](0)
    spec = spec.model_copy(update={"name": name})
    return "```json\n" + json.dumps({"spec": spec.model_dump(), "rows": rows}) + "\n```"


def test_llm_proposals_are_validated_before_they_are_kept(tmp_path):
    broken = json.loads(_proposal("credit").strip("`json\n"))
    broken["spec"]["tools"][5]["steps"][3]["expr"] = "acct.no_such_field > 0"
    llm = FakePolicy(script=["not json at all", json.dumps(broken), _proposal("credit")])
    out = build_llm_env(llm, "credit", tmp_path / "credit.sqlite", seed=0)
    assert out.is_file() and len(llm.prompts) == 3
    assert "rejected: not a valid spec" in llm.prompts[1][-1].content
    assert "breaks when run" in llm.prompts[2][-1].content
    tasks, _ = toolscale.synthesize(out, 10, 0)
    assert len(tasks) == 10


def test_llm_that_never_proposes_a_valid_env_writes_nothing(tmp_path):
    llm = FakePolicy(script=[_proposal("wrong_name")] * 2)
    with pytest.raises(SynthError, match="all failed validation"):
        build_llm_env(llm, "credit", tmp_path / "credit.sqlite", attempts=2)
    assert list(tmp_path.iterdir()) == []
