"""The load benchmark (benchmarks/load.py) at N=8: every concurrent run stored, none mixed up.

It runs as ``make load`` does, as a script, and must exit 0; its own self-check shows first
that the check can fail (a swapped answer and a lost trajectory are seen).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "load.py"

pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="module")
def load_8() -> subprocess.CompletedProcess[str]:
    """One run of the benchmark at N=8, without the developer's $PODIUM_* settings.

    In-process only: its Ray column starts a cluster (tests/integration/test_ray.py has one).
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("PODIUM_")}
    command = [sys.executable, str(BENCH), "--n", "8", "--no-ray"]
    return subprocess.run(command, capture_output=True, text=True, timeout=170, env=env)


def test_8_concurrent_runs_are_all_stored_with_their_own_answers(load_8) -> None:
    assert load_8.returncode == 0, load_8.stdout + load_8.stderr[-3000:]
    row = re.search(
        r"^\s*8\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s+(\d+)/8\s+(\d+)/8\s+(\d+)$",
        load_8.stdout,
        re.MULTILINE,
    )
    assert row, load_8.stdout
    throughput, p50, p95 = map(float, row.groups()[:3])
    stored, correct, requests = map(int, row.groups()[3:])
    assert (stored, correct) == (8, 8)
    turns = re.search(r"^(\d+) policy turns and \d+ calc calls per run", load_8.stdout, re.M)
    assert turns and requests == 8 * int(turns[1])  # every policy turn reached the server once
    assert throughput > 0 and p95 >= p50 > 0


def test_the_check_sees_a_lost_or_swapped_trajectory(load_8) -> None:
    assert "verify counts (3, 1, 2), must be (3, 1, 2)" in load_8.stdout, load_8.stdout
