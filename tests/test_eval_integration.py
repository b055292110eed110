"""``podium eval math --limit 20`` and ``podium eval code --limit 10`` on the embedded default.

Real policy, real experts, real sandbox: slow (minutes on 2 cores), so marked integration.
They check that every output is written and that summary.json adds up to results.jsonl.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from podium.training.metrics import summarize

pytestmark = pytest.mark.integration


def _eval(suite: str, limit: int, out: Path) -> dict:
    exe = Path(sys.executable).with_name("podium")
    argv = [str(exe), "eval", suite, "--limit", str(limit), "--out", str(out), "--quiet"]
    argv += ["--max-turns", "4"]  # bounds CI time: a 0.5B policy rarely recovers after 4 turns
    done = subprocess.run(argv, capture_output=True, text=True, timeout=3600)
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
    return summary


def test_eval_math_20(tmp_path):
    _eval("math", 20, tmp_path / "math")


def test_eval_code_10(tmp_path):
    _eval("code", 10, tmp_path / "code")
