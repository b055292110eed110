"""The CLI against a live thread, the environment, a broken store and hostile model text.

Each CLI case is a real ``python -m podium.studio.cli run`` against a fake OpenAI-compatible
policy on 127.0.0.1 (:func:`podium.graph.testing.fake_openai`), so the whole path is
exercised: flags, the context, the durable thread with its lease, the graph, the store and the
printing.
"""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from rich.console import Console

from podium.graph.testing import fake_openai
from podium.studio import lease as leases
from podium.studio.durable import load_context

PODIUM = ["nice", "-n", "19", sys.executable, "-m", "podium.studio.cli"]
HOSTILE = "See [/x] and [bold]b[/bold] \x1b]0;pwned\x07\x1b[2J\x9b31m 42"
"""An answer with rich markup that does not close, an OSC title change, CSI clear-screen."""


def env_for(tmp: Path, base_url: str, **extra: str) -> dict[str, str]:
    """The caller's environment with podium pinned to ``tmp`` and the fake policy."""
    (tmp / "empty.toml").touch()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PODIUM_")}
    return env | {
        "PODIUM_CONFIG": str(tmp / "empty.toml"),
        "PODIUM_POLICY_BASE_URL": base_url,
        "PODIUM_CHECKPOINT_DB": str(tmp / "cp.sqlite"),
        "PODIUM_TRAJECTORY_DB": str(tmp / "traj.sqlite"),
        "NO_PROXY": "127.0.0.1,localhost",
        **extra,
    }


def start(env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*PODIUM, *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def podium_lines(stderr: str) -> list[str]:
    """podium's own stderr lines (libraries may warn about the environment's proxy)."""
    return [line for line in stderr.splitlines() if line.startswith("podium:")]


def answering(text: str, gate: threading.Event | None = None):
    """A policy reply function: wait for ``gate`` (a run held live), then answer ``text``."""

    def reply(body: dict) -> dict:
        if gate is not None:
            gate.wait(120)
        return {"role": "assistant", "content": text}

    return reply


# --- the thread lease --------------------------------------------------------------------------


def test_a_lease_refuses_a_second_holder_until_released(tmp_path):
    db = tmp_path / "cp.sqlite"
    first = leases.acquire(db, "t", "What is 6*7?")
    with pytest.raises(leases.LeaseError, match=rf"thread t is running .*pid {os.getpid()}"):
        leases.acquire(db, "t", "another")
    assert leases.acquire(db, "u", "") != first  # other threads are free
    assert leases.renew(db, first)
    leases.release(db, first)
    assert leases.holder_of(db, "t") is None
    leases.acquire(db, "t", "now free")


def test_a_lease_whose_holder_died_or_stopped_beating_is_taken_over(tmp_path, monkeypatch):
    db = tmp_path / "cp.sqlite"
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    monkeypatch.setattr(leases.os, "getpid", lambda: dead.pid)
    leases.acquire(db, "t", "a run whose process was killed")
    monkeypatch.undo()
    taken = leases.acquire(db, "t", "the resume")  # the dead pid's lease is stale at once
    assert leases.holder_of(db, "t").holder == taken.holder
    # A live holder whose heartbeat stopped (hung, or on another host) goes stale in time.
    with sqlite3.connect(db) as conn:
        conn.execute(
            "UPDATE podium_thread_leases SET host = 'elsewhere', heartbeat_at = ?",
            (time.time() - leases.STALE_AFTER_S - 1,),
        )
    again = leases.acquire(db, "t", "after the stall")
    assert not leases.renew(db, taken) and leases.renew(db, again)  # the stalled one lost it


def test_a_held_lease_is_renewed_while_the_run_goes_on_and_released_after(tmp_path, monkeypatch):
    db = tmp_path / "cp.sqlite"
    monkeypatch.setattr(leases, "RENEW_EVERY_S", 0.05)
    with leases.thread_lease(db, "t", "q") as held:
        deadline = time.monotonic() + 30
        while leases.holder_of(db, "t").heartbeat_at == held.heartbeat_at:
            assert time.monotonic() < deadline, "the heartbeat was never renewed"
            time.sleep(0.05)
        with pytest.raises(leases.LeaseError):
            leases.acquire(db, "t", "meanwhile")
    assert leases.holder_of(db, "t") is None


def test_a_live_thread_refuses_a_resume_and_a_second_new_question(tmp_path):
    """Two new questions at once on one thread, and a resume while it runs: one run, one bill."""
    gate = threading.Event()
    with fake_openai(reply=answering("42", gate), lifetime_s=300) as policy:
        env = env_for(tmp_path, policy.base_url)
        pair = [start(env, "run", q, "--thread", "T", "--json") for q in ("first q", "second q")]
        deadline = time.monotonic() + 240
        while all(p.poll() is None for p in pair) or not policy.requests:
            assert time.monotonic() < deadline, "neither run reached the policy"
            time.sleep(0.1)
        live = next(p for p in pair if p.poll() is None)
        resume = start(env, "run", "--thread", "T")
        refused = resume.communicate(timeout=240)
        gate.set()
        outputs = {p: p.communicate(timeout=240) for p in pair}
        requests = policy.requests
    for proc, (out, err) in [*outputs.items(), (resume, refused)]:
        if proc is live:
            assert proc.returncode == 0, err[-2000:]
            assert json.loads(out)["answer"] == "42" and json.loads(out)["thread_id"] == "T"
            continue
        lines = podium_lines(err)
        assert proc.returncode == 2 and "Traceback" not in err, err[-2000:]
        assert len(lines) == 1 and out == "", err
        assert f"thread T is running in another process (pid {live.pid} " in lines[0]
    assert requests == 1  # only the live run asked the policy, once
    assert leases.holder_of(tmp_path / "cp.sqlite", "T") is None  # released at the end


# --- flags, environment, store, printing --------------------------------------------------------


def test_flags_win_over_the_environment_even_at_their_defaults(tmp_path):
    with fake_openai(reply=answering("42")) as policy:
        env = env_for(
            tmp_path,
            policy.base_url,
            PODIUM_BUDGET_USD="50",
            PODIUM_MAX_TURNS="7",
            PODIUM_PROFILE="nope",  # would fail the run if it won
        )
        argv = ["run", "hi", "--thread", "F", "--json", "--budget-usd", "1", "--max-turns", "50"]
        done = subprocess.run(
            [*PODIUM, *argv, "--profile", "local"], env=env, capture_output=True, text=True
        )
    assert done.returncode == 0, done.stderr[-2000:]
    ctx = load_context(tmp_path / "cp.sqlite", "F")
    assert (ctx.budget_usd, ctx.max_turns, ctx.profile) == (1.0, 50, "local")
    with sqlite3.connect(tmp_path / "traj.sqlite") as db:
        (row,) = db.execute("SELECT record FROM trajectories").fetchall()
    record = json.loads(row[0])
    assert record["context"]["budget_usd"] == 1.0 and record["context"]["max_turns"] == 50


def test_a_paid_answer_survives_a_corrupt_store_and_prints_as_text(tmp_path):
    """Markup and escape sequences in the answer reach the terminal as visible text."""
    bad = tmp_path / "traj.sqlite"
    garbage = b"not a database " * 100
    bad.write_bytes(garbage)
    with fake_openai(reply=answering(HOSTILE)) as policy:
        env = env_for(tmp_path, policy.base_url)
        done = subprocess.run([*PODIUM, "run", "hi", "--thread", "S"], env=env, capture_output=True)
    out, err = done.stdout.decode(), done.stderr.decode()
    assert done.returncode == 0, err[-2000:]
    assert "Traceback" not in err and "MarkupError" not in err
    assert "See [/x] and [bold]b[/bold]" in out and "42" in out and "thread S" in out
    assert b"\x1b" not in done.stdout and "\x9b" not in out  # neutralised, not passed through
    assert "\\x1b]0;pwned\\x07" in out  # shown, so the user sees what the model tried
    lines = podium_lines(err)  # the forecast cannot read the store either: said, run goes on
    assert all(x.startswith("podium: warning: ") for x in lines)
    assert any(x.startswith("podium: warning: no forecast: ") for x in lines)
    (line,) = [x for x in lines if "not stored" in x]
    assert line.startswith("podium: warning: the run was not stored: trajectory store")
    assert str(bad) in line and "move it aside" in line
    assert bad.read_bytes() == garbage  # the broken file is left for the user to inspect


def test_the_approval_prompt_prints_model_text_as_text(monkeypatch):
    from podium.studio.commands import run as run_command

    screen = io.StringIO()
    monkeypatch.setattr(run_command, "console", Console(file=screen, force_terminal=True))
    monkeypatch.setattr(run_command.typer, "confirm", lambda *a, **k: True)
    waiting = {"question": f"Run [/x]? {HOSTILE}", "tool": "python", "args": {"code": HOSTILE}}
    assert run_command._ask(waiting) == "approve"
    shown = screen.getvalue()
    assert "Run [/x]?" in shown and "[bold]b[/bold]" in shown
    assert "\x1b]0;pwned" not in shown and "\x1b[2J" not in shown and "\x9b" not in shown


def test_a_resumed_run_keeps_its_stored_settings_whatever_the_environment(tmp_path, monkeypatch):
    from podium.graph import Context
    from podium.studio.durable import save_context

    db = tmp_path / "cp.sqlite"
    save_context(db, "t", Context(budget_usd=1.0, max_turns=50, profile="local"))
    monkeypatch.setenv("PODIUM_BUDGET_USD", "50")
    monkeypatch.setenv("PODIUM_MAX_TURNS", "7")
    stored = load_context(db, "t")
    assert (stored.budget_usd, stored.max_turns) == (1.0, 50)
    assert Context().budget_usd == 50.0  # a field left at its default still reads the env


def test_a_directory_is_never_written_as_a_file(tmp_path):
    from podium.tools.errors import UserError
    from podium.tools.paths import atomic_path

    refused = pytest.raises(UserError, match=r"output file .* is a directory: pass a file path")
    with refused, atomic_path(tmp_path):
        raise AssertionError("the body ran")
    assert list(tmp_path.iterdir()) == []  # nothing half-written beside it
