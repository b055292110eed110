"""The python sandbox against real bubblewrap: results, isolation, limits, teardown, fallback."""

from __future__ import annotations

import contextlib
import hashlib
import random
import socket
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from podium.tools import sandbox
from podium.tools.sandbox import SandboxLimits, SandboxResult, observation, run_python

pytestmark = pytest.mark.integration
# The jail is required here: where bubblewrap is unusable these tests fail, they never skip.


def test_bubblewrap_is_usable_here() -> None:
    assert sandbox.bwrap_available(), "install bubblewrap (make system-deps)"


REPO_FILE = Path(__file__).resolve().parents[1] / "pyproject.toml"


@pytest.fixture(autouse=True)
def _auto_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(sandbox.ENV_MODE, raising=False)


def _running(marker: str) -> list[int]:
    """Pids whose command line contains ``marker`` (zombies have none, so they don't count)."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and marker.encode() in (entry / "cmdline").read_bytes():
                pids.append(int(entry.name))
        except OSError:
            continue
    return pids


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


def test_no_network_and_no_dns() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        socket.create_connection(("127.0.0.1", port), timeout=2).close()  # reachable from host
        code = f"""
import socket
for host, port in [("1.1.1.1", 53), ("127.0.0.1", {port})]:
    try:
        socket.create_connection((host, port), timeout=2).close()
        print("CONNECTED", host)
    except OSError as exc:
        print("blocked", host, type(exc).__name__)
try:
    socket.getaddrinfo("example.com", 443)
    print("RESOLVED")
except OSError as exc:
    print("dns blocked", type(exc).__name__)
"""
        result = _jailed(code)
    assert result.ok, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[:2] for line in lines[:2]] == [
        ["blocked", "1.1.1.1"],
        ["blocked", "127.0.0.1"],
    ]
    assert lines[2].startswith("dns blocked")


def test_cannot_read_host_secrets_home_or_repo() -> None:
    home_file = Path.home() / f"podium-sandbox-test-{uuid.uuid4().hex}.txt"
    home_file.write_text("host secret")
    try:
        paths = ["/etc/shadow", str(home_file), str(REPO_FILE)]
        code = f"""
for path in {paths!r}:
    try:
        print("READ", path, open(path).read()[:20])
    except OSError as exc:
        print("blocked", type(exc).__name__)
"""
        result = _jailed(code)
    finally:
        home_file.unlink()
    assert result.ok, result.stderr
    assert result.stdout.splitlines() == ["blocked FileNotFoundError"] * 3


def test_cannot_write_outside_tmp() -> None:
    before = hashlib.sha256(REPO_FILE.read_bytes()).hexdigest()
    usr_file = f"/usr/podium-sandbox-test-{uuid.uuid4().hex}"
    code = f"""
for path in {[usr_file, str(REPO_FILE), "/tmp/scratch.txt"]!r}:
    try:
        with open(path, "a") as f:
            f.write("pwned")
        print("wrote", path)
    except OSError as exc:
        print("blocked", type(exc).__name__)
"""
    result = _jailed(code)
    assert result.ok, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "blocked OSError"  # read-only file system
    assert lines[1] == "blocked FileNotFoundError"
    assert lines[2] == "wrote /tmp/scratch.txt"
    assert not Path(usr_file).exists()
    assert hashlib.sha256(REPO_FILE.read_bytes()).hexdigest() == before


@pytest.mark.parametrize("mode", ["bwrap", "none"])
def test_host_environment_does_not_leak(mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-secret")
    monkeypatch.setenv(sandbox.ENV_MODE, mode)
    with pytest.warns(RuntimeWarning) if mode == "none" else contextlib.nullcontext():
        result = run_python("import os\ndict(os.environ)")
    assert result.ok and "PATH" in result.stdout
    assert "OPENAI_API_KEY" not in result.stdout and "sk-test-secret" not in result.stdout


def test_process_limit_holds_for_root() -> None:
    code = """
import os, time
n = 0
try:
    while True:
        if os.fork() == 0:
            time.sleep(5)
            os._exit(0)
        n += 1
except OSError as exc:
    print("blocked after", n, type(exc).__name__)
"""
    result = _jailed(code, SandboxLimits(max_processes=32))
    assert result.ok, result.stderr
    words = result.stdout.split()
    assert words[:2] == ["blocked", "after"] and int(words[2]) < 32
    assert words[3] == "BlockingIOError"


def test_fork_bomb_is_contained_and_torn_down() -> None:
    # memory_mb marks the bomb's command line: the runner gets its rlimits, in bytes, as argv.
    limits = SandboxLimits(timeout_s=3, memory_mb=987)
    code = "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass"
    result = _jailed(code, limits)
    assert result.timed_out and result.seconds < limits.timeout_s + 2
    assert result.error == "timed out after 3s (process tree killed)"
    assert _running(str(987 << 20)) == []
    assert subprocess.run(["true"], check=False).returncode == 0


def test_memory_bomb_reports_memory_limit() -> None:
    result = _jailed("x = bytearray(4 * 1024**3)")
    assert result.error == "memory limit of 1024 MB exceeded"


def test_cpu_spin_hits_cpu_limit() -> None:
    result = _jailed("while True:\n    pass", SandboxLimits(cpu_s=1, timeout_s=8))
    assert result.error == "CPU time limit of 1s exceeded"
    assert result.exit_code < 0 and not result.timed_out and result.seconds < 8


def test_sleep_past_timeout_is_killed_in_time() -> None:
    start = time.monotonic()
    result = _jailed("import time\ntime.sleep(60)", SandboxLimits(timeout_s=1))
    assert time.monotonic() - start < 3
    assert result.timed_out and not result.ok
    assert result.error == "timed out after 1s (process tree killed)"


@pytest.mark.parametrize("mode", ["bwrap", "none"])
@pytest.mark.parametrize("then", ["", "time.sleep(60)"])
def test_background_children_do_not_survive(
    mode: str, then: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(sandbox.ENV_MODE, mode)
    tag = str(random.randrange(10**8, 10**9))
    # A child in its own session escapes the process group: only the jail's pid namespace
    # catches it, so the unisolated fallback is not asked to.
    escape = mode == "bwrap"
    code = f"""
import subprocess, time
subprocess.Popen(["sleep", "{tag}"])
subprocess.Popen(["sleep", "{tag}"], stdout=subprocess.DEVNULL, start_new_session={escape})
time.sleep(0.3)
{then}
"""
    with pytest.warns(RuntimeWarning) if mode == "none" else contextlib.nullcontext():
        result = run_python(code, SandboxLimits(timeout_s=2))
    assert result.timed_out == bool(then), result.stderr
    assert _running(f"sleep\0{tag}") == []


def test_output_flood_is_cut_quickly() -> None:
    start = time.monotonic()
    result = _jailed("while True:\n    print('x' * 10**6)")
    assert time.monotonic() - start < 3
    assert result.truncated and len(result.stdout) < 16_000 + 100
    assert result.error is not None and result.error.startswith("output flood")


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


def test_missing_bwrap_warns_or_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sandbox, "_bwrap_problem", lambda: sandbox.NO_BWRAP)
    with pytest.warns(RuntimeWarning, match="apt-get install bubblewrap"):
        assert not run_python("1").isolated
    monkeypatch.setenv(sandbox.ENV_MODE, "bwrap")
    with pytest.raises(RuntimeError, match="bubblewrap not found"):
        run_python("1")


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
