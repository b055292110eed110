"""``podium eval`` of math (20), code (10) and tau2 (2) on the embedded default.

Real policy, real experts, real sandbox: slow (minutes on 2 cores), so marked integration.
They check that every output is written and that summary.json adds up to results.jsonl.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from podium.training.eval.metrics import summarize

pytestmark = [pytest.mark.integration, pytest.mark.timeout(3700)]  # an eval may take ~1 h


def _eval(suite: str, limit: int, out: Path, env: dict[str, str] | None = None) -> dict:
    exe = Path(sys.executable).with_name("podium")
    argv = [str(exe), "eval", suite, "--limit", str(limit), "--out", str(out), "--quiet"]
    argv += ["--max-turns", "4"]  # bounds CI time: a 0.5B policy rarely recovers after 4 turns
    env = {**os.environ, **(env or {})}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=3600, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    for name in ("results.jsonl", "summary.json", "report.html", "pareto.png", "tool_usage.png"):
        assert (out / name).stat().st_size > 0, name
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    summary = json.loads((out / "summary.json").read_text())
    assert len(rows) == limit and summary["tasks"] == limit
    assert summary["routers"] == summarize(rows, ["policy"])
    policy = summary["routers"]["policy"]
    assert policy["n"] == limit and policy["errors"] < limit
    assert math.isclose(policy["total_cost_usd"], sum(r["cost_usd"] for r in rows))
    assert policy["total_cost_usd"] > 0  # the policy's own tokens are billed
    assert all(r["trajectory_id"] for r in rows if r["status"] == "ok")
    return summary | {"rows": rows}


def test_eval_math_20(tmp_path):
    _eval("math", 20, tmp_path / "math")


def test_eval_code_10(tmp_path):
    _eval("code", 10, tmp_path / "code")


def test_eval_tau2_2(tmp_path):
    """The embedded policy serves airline and retail customers played by the same model."""
    from podium.tools.llamacpp import embedded_base_url

    sim = {"PODIUM_USER_SIM_BASE_URL": embedded_base_url(), "PODIUM_USER_SIM_MODEL": "policy",
           "PODIUM_USER_SIM_MAX_TURNS": "2"}  # fmt: skip
    rows = _eval("tau2", 2, tmp_path / "tau2", sim)["rows"]
    assert [r["task_id"].split("-")[1] for r in rows] == ["airline", "retail"]
    for row in rows:
        said = row["dialogue"]
        assert said[0]["content"] == "Hi! How can I help you today?"
        assert said[1]["role"] == "user" and said[1]["content"].strip()  # the simulator spoke
        assert sum(m["role"] == "user" for m in said) <= 2
        assert row["termination"] in ("user_stop", "max_user_turns", "agent_error")
        ran = [c["name"] for m in said for c in m.get("tool_calls", [])]
        assert ran == [c for c in row["tool_calls"] if c in ran]  # tau2 saw every domain call
        assert len(row["trajectory_ids"]) == sum(m["role"] == "user" for m in said) - (
            row["termination"] == "user_stop"
        )
