"""The embedding examples (examples/embed.py) run as documented, on the embedded default."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "embed.py"


@pytest.mark.integration
@pytest.mark.timeout(1000)  # the example may take up to 900 s
def test_the_example_runs_on_the_embedded_default():
    done = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("1. runnable: ") and lines[1].startswith("2. as a tool")
    assert "podium/policy" in lines[2] and "parent/report" in lines[2]
