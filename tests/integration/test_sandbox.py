"""The python sandbox against real bubblewrap: results, limits, capping, the fallback."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from podium.tools import jail, sandbox
from podium.tools.sandbox import SandboxLimits, SandboxResult, observation, run_python

pytestmark = pytest.mark.integration
# The jail is required here: where bubblewrap is unusable these tests fail, they never skip.


def test_bubblewrap_is_usable_here() -> None:
    assert jail.bwrap_available(), "install bubblewrap (make system-deps)"


@pytest.fixture(autouse=True)
def _auto_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(sandbox.ENV_MODE, raising=False)


def _jailed(code: str, limits: SandboxLimits | None = None) -> SandboxResult:
    result = run_python(code, limits)
    assert result.isolated
    return result


def test_trailing_expression_value_is_shown() -> None:
    result = _jailed("1234 * 5678")
    assert result.ok and result.error is None
    assert result.stdout == "7006652\n"
    assert observation(result) == "7006652"  # a clean run shows its output alone


def test_print_output_and_none_value() -> None:
    result = _jailed("print('hello')\nx = None\nx")
    assert result.ok
    assert result.stdout == "hello\n"


def test_exception_reports_its_last_traceback_line() -> None:
    result = _jailed("def f(x):\n    return 1 / x\n\nf(0)")
    assert not result.ok and result.exit_code == 1
    assert result.error == "Traceback: ZeroDivisionError: division by zero"
    assert 'File "<cell>", line 2' in result.stderr
    assert observation(result).startswith("Error: Traceback: ZeroDivisionError")


def test_syntax_error_is_reported() -> None:
    result = _jailed("def f(:\n    pass")
    assert result.error == "Traceback: SyntaxError: invalid syntax"


def test_runs_unprivileged_in_own_pid_namespace_with_numpy() -> None:
    code = "import os, numpy\nprint(os.getuid(), [p for p in os.listdir('/proc') if p.isdigit()])"
    result = _jailed(code + "\nnumpy.arange(4).sum()")
    uid, pids = result.stdout.splitlines()[0].split(" ", 1)
    assert result.ok, result.stderr
    assert int(uid) != 0 and len(eval(pids)) <= 3  # the jail's init, the cell, maybe a reader
    assert result.stdout.splitlines()[-1] == "np.int64(6)"


def test_the_unisolated_fallback_clears_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # The jail's side of this, and every other attack, is in tests/integration/test_containment.py.
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret")
    monkeypatch.setenv(sandbox.ENV_MODE, "none")
    with pytest.warns(RuntimeWarning):
        result = run_python("import os\ndict(os.environ)")
    assert result.ok and "PATH" in result.stdout
    assert "OPENAI_API_KEY" not in result.stdout and "sk-test-secret" not in result.stdout


def test_cpu_spin_hits_cpu_limit() -> None:
    result = _jailed("while True:\n    pass", SandboxLimits(cpu_s=1, timeout_s=8))
    assert result.error == "CPU time limit of 1s exceeded"
    assert result.exit_code < 0 and not result.timed_out and result.seconds < 8


@pytest.mark.parametrize("then", ["", "time.sleep(60)"])
def test_unisolated_background_children_do_not_survive(
    then: str, monkeypatch: pytest.MonkeyPatch, processes
) -> None:
    # A child in its own session escapes the process group: only the jail's pid namespace
    # catches it (integration/test_containment.py), so the unisolated fallback is not asked to.
    monkeypatch.setenv(sandbox.ENV_MODE, "none")
    tag = str(random.randrange(10**8, 10**9))
    code = f"""
import subprocess, time
subprocess.Popen(["sleep", "{tag}"])
subprocess.Popen(["sleep", "{tag}"], stdout=subprocess.DEVNULL)
time.sleep(0.3)
{then}
"""
    with pytest.warns(RuntimeWarning):
        result = run_python(code, SandboxLimits(timeout_s=2))
    assert result.timed_out == bool(then), result.stderr
    assert processes.running(f"sleep\0{tag}") == []


def test_long_output_keeps_head_and_tail() -> None:
    result = _jailed("print('a' * 50_000)\n42", SandboxLimits(max_output_bytes=4000))
    assert result.ok and result.truncated
    assert result.stdout.startswith("aaa") and result.stdout.endswith("a\n42\n")
    assert "bytes dropped" in result.stdout and len(result.stdout) < 4100
    assert "[output was truncated]" in observation(result)


def test_forced_fallback_runs_and_warns(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(sandbox.ENV_MODE, "none")
    with pytest.warns(RuntimeWarning, match="WITHOUT isolation"):
        result = run_python("1234 * 5678")
    assert not result.isolated and result.ok and result.stdout == "7006652\n"
    with pytest.warns(RuntimeWarning):
        result = run_python("1/0")
    assert result.error == "Traceback: ZeroDivisionError: division by zero"


MISSING_BWRAP = """
import warnings
from podium.tools.sandbox import run_python
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    try:
        result = run_python("1")
    except RuntimeError as exc:
        print("raised:", exc)
    else:
        print("isolated:", result.isolated, [str(w.message) for w in caught])
"""


@pytest.mark.parametrize(
    ("mode", "says"),
    [
        ("", ["isolated: False", "apt-get install bubblewrap"]),  # auto: warn, run unisolated
        ("bwrap", ["raised: ", "bubblewrap not found"]),  # the jail required: refuse
    ],
)
def test_missing_bwrap_warns_or_raises(tmp_path: Path, mode: str, says: list[str]) -> None:
    """On a host without bwrap (here: a PATH without it), in a fresh process."""
    env = {**os.environ, "PATH": str(tmp_path), sandbox.ENV_MODE: mode}
    done = subprocess.run(
        [sys.executable, "-c", MISSING_BWRAP], capture_output=True, text=True, env=env, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert all(s in done.stdout for s in says), done.stdout


def test_concurrent_calls_are_all_correct() -> None:
    code = "import time\ntime.sleep(0.3)\n{i} ** 2"
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda i: _jailed(code.format(i=i)), range(8)))
    assert [r.stdout for r in results] == [f"{i**2}\n" for i in range(8)]
    assert all(r.ok for r in results)


def test_observation_labels_error_output_and_silence() -> None:
    base = SandboxResult("", "", 0, 0.1, False, False, True, None)
    assert observation(base).startswith("Output: (none")
    failed = SandboxResult(
        "partial\n", "Tb\nValueError: x\n", 1, 0.1, False, False, True, "Traceback: ValueError: x"
    )
    assert observation(failed) == (
        "Error: Traceback: ValueError: x\nOutput:\npartial\nStderr:\nTb\nValueError: x"
    )
    long = SandboxResult("y" * 20_000, "", 0, 0.1, False, True, True, None)
    assert len(observation(long)) < sandbox.OBS_MAX_CHARS + 200
