"""Containment: adversarial programs run through the ``python`` tool the graph calls.

Every program attacks the host (network, files, secrets, processes, resources, privileges)
and must end with a clear observation (mostly ``Error: ...``), with the host unaffected (a
canary process alive, the repo, a home file and a host ``/tmp`` file unchanged), no API key
visible, and no process of the program left behind: each case's tool has its own memory
limit, which the jail's runner carries in its argv (``RLIMIT_AS:<bytes>``), and its own tag
for the programs it execs, and ``/proc`` is scanned for both afterwards.

Functional behaviour of the sandbox (results, tracebacks, output capping, the unisolated
fallback) is in ``tests/integration/test_sandbox.py``.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

import pytest
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import BaseTool

from podium.graph import Context, graph
from podium.tools import jail, load_config, run_limits, sandbox
from podium.tools.config import PythonConfig
from podium.tools.pricing import Prices
from podium.tools.python_tool import KILL_GRACE_S, python_tool

pytestmark = [pytest.mark.integration, pytest.mark.timeout(60)]

REPO_FILE = Path(__file__).resolve().parents[2] / "pyproject.toml"  # must stay untouched
TIMEOUT_S = 3.0
KEYS = {
    "OPENAI_API_KEY": "sk-contain-openai-41c9e07d",
    "ANTHROPIC_API_KEY": "sk-ant-contain-anthropic-0b7a2f",
    "TAVILY_API_KEY": "tvly-contain-tavily-5d1e88",
    "PODIUM_POLICY_API_KEY": "pk-contain-policy-9f03c4",
}
TRACEBACK = "Error: Traceback: "
RAISE_ERRNO = "raise OSError(ctypes.get_errno(), os.strerror(ctypes.get_errno()))"


@dataclass(frozen=True)
class Attack:
    """One adversarial program: its code (a ``string.Template``) and the observation it gets."""

    name: str
    code: str
    expect: str  # regex the observation must match (re.search)


ATTACKS = [
    # --- network -------------------------------------------------------------------------
    Attack(
        "tcp egress",
        "import socket\nsocket.create_connection(('1.1.1.1', 443), timeout=2)",
        TRACEBACK + r"OSError: \[Errno 101\] Network is unreachable",
    ),
    Attack(
        "tcp to a host loopback listener",
        "import socket\nsocket.create_connection(('127.0.0.1', $tcp_port), timeout=2)",
        TRACEBACK + "ConnectionRefusedError",
    ),
    Attack(
        "dns",
        "import socket\nsocket.getaddrinfo('example.com', 443)",
        TRACEBACK + r"socket.gaierror: \[Errno -3\]",
    ),
    Attack(
        "udp egress",
        "import socket\nsocket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b'x', "
        "('8.8.8.8', 53))",
        TRACEBACK + r"OSError: \[Errno 101\] Network is unreachable",
    ),
    Attack(  # the jail's loopback is its own: the host's socket must receive nothing
        "udp to a host loopback listener",
        "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
        "s.sendto(b'$tag', ('127.0.0.1', $udp_port))\nprint('sent into the jail')",
        r"^sent into the jail$",
    ),
    Attack(  # abstract unix sockets belong to the network namespace
        "host abstract unix socket",
        "import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect(b'\\0$abstract')",
        TRACEBACK + "ConnectionRefusedError",
    ),
    Attack(
        "raw packet socket",
        "import socket\nsocket.socket(socket.AF_PACKET, socket.SOCK_RAW)",
        TRACEBACK + "PermissionError",
    ),
    # --- host files and secrets ------------------------------------------------------------
    Attack("read /etc/shadow", "open('/etc/shadow').read()", TRACEBACK + "FileNotFoundError"),
    Attack("read a home file", "open('$home_file').read()", TRACEBACK + "FileNotFoundError"),
    Attack("read the repo", "open('$repo_file').read()", TRACEBACK + "FileNotFoundError"),
    Attack("read the host's /tmp", "open('$host_tmp').read()", TRACEBACK + "FileNotFoundError"),
    Attack(
        "symlink escape",
        "import os\nos.symlink('$repo_file', '/tmp/link')\nopen('/tmp/link').read()",
        TRACEBACK + "FileNotFoundError",
    ),
    Attack(
        "environment secrets",
        "import os\nprint(sorted(os.environ))\nprint(open('/proc/self/environ', 'rb').read())",
        r"'PATH'",  # the keys themselves are checked for every attack
    ),
    Attack(
        "/proc/1/environ of the jail's init",
        "open('/proc/1/environ', 'rb').read()",
        TRACEBACK + "PermissionError",
    ),
    Attack(
        "/proc of the podium process",
        "open('/proc/$podium_pid/environ', 'rb').read()",
        TRACEBACK + "FileNotFoundError",
    ),
    Attack("/dev/mem", "open('/dev/mem', 'rb').read(16)", TRACEBACK + "FileNotFoundError"),
    # --- writing outside the scratch dir -------------------------------------------------
    Attack(
        "write /usr",
        "open('/usr/podium-$tag', 'w').write('x')",
        TRACEBACK + r"OSError: \[Errno 30\] Read-only file system",
    ),
    Attack(
        "write the venv's site-packages",
        f"open('{jail.JAIL_SITE}/sitecustomize.py', 'w').write('x')",
        TRACEBACK + r"OSError: \[Errno 30\] Read-only file system",
    ),
    Attack(
        "write /etc",
        "open('/etc/podium-$tag', 'w').write('x')",
        TRACEBACK + "PermissionError",
    ),
    Attack(
        "write the repo",
        "open('$repo_file', 'a').write('pwned')",
        TRACEBACK + "FileNotFoundError",
    ),
    Attack(
        "write /proc/sys",
        "open('/proc/sys/vm/drop_caches', 'w').write('1')",
        TRACEBACK + "PermissionError",
    ),
    Attack(
        "fill /tmp with one file",
        "open('/tmp/big', 'wb').write(b'x' * (200 << 20))",
        TRACEBACK + r"OSError: \[Errno 27\] File too large",
    ),
    Attack(
        "fill /tmp with many files",
        "for i in range(100):\n    open(f'/tmp/f{i}', 'wb').write(b'x' * (15 << 20))",
        TRACEBACK + r"OSError: \[Errno 28\] No space left on device",
    ),
    # --- privileges ------------------------------------------------------------------------
    Attack("setuid(0)", "import os\nos.setuid(0)", TRACEBACK + "PermissionError"),
    Attack(
        "a setuid binary",
        "import subprocess\nsubprocess.run(['su', '-c', 'id'], check=True)",
        TRACEBACK + "subprocess.CalledProcessError",
    ),
    Attack(
        "ptrace the jail's init",
        "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        f"if libc.ptrace(16, 1, 0, 0) != 0:\n    {RAISE_ERRNO}\nprint('ESCAPED')",
        TRACEBACK + "PermissionError",
    ),
    Attack(
        "mount over /usr",
        "import ctypes, os\nlibc = ctypes.CDLL(None, use_errno=True)\n"
        f"if libc.mount(b'none', b'/usr', b'tmpfs', 0, None) != 0:\n    {RAISE_ERRNO}\n"
        "print('ESCAPED')",
        TRACEBACK + "PermissionError",
    ),
    # --- signals to the parent, the jail's init and the host -------------------------------
    Attack(
        "kill -9 the parent",
        "import os\nos.kill(os.getppid(), 9)",
        TRACEBACK + "PermissionError",
    ),
    Attack("kill -9 pid 1", "import os\nos.kill(1, 9)", TRACEBACK + "PermissionError"),
    Attack(
        "kill -9 the podium process",
        "import os\nos.kill($podium_pid, 9)",
        TRACEBACK + "ProcessLookupError",
    ),
    Attack(
        "kill -9 a host process",
        "import os\nos.kill($canary_pid, 9)",
        TRACEBACK + "ProcessLookupError",
    ),
    Attack("kill -9 everything", "import os\nos.kill(-1, 9)", TRACEBACK + "ProcessLookupError"),
    # --- resources -------------------------------------------------------------------------
    Attack(
        "fork bomb",
        "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass",
        r"^Error: (timed out after 3s|CPU time limit of 3s exceeded)",
    ),
    Attack(
        "process limit",
        "import os, time\nfor _ in range(1000):\n    if os.fork() == 0:\n"
        "        time.sleep(30)\n        os._exit(0)",
        TRACEBACK + "BlockingIOError",
    ),
    Attack(
        "thread bomb",
        "import threading, time\nfor _ in range(1000):\n"
        "    threading.Thread(target=time.sleep, args=(30,)).start()",
        r"^Error: timed out after 3s(.|\n)*can't start new thread",
    ),
    Attack("memory bomb", "x = bytearray(8 * 1024**3)", r"^Error: memory limit of \d+ MB exceeded"),
    Attack(
        "cpu spin",
        "while True:\n    pass",
        r"^Error: (CPU time limit of 3s exceeded|timed out after 3s)",
    ),
    Attack(
        "huge stdout",
        "while True:\n    print('x' * 10**6)",
        r"^Error: output flood(.|\n)*\[output was truncated\]$",
    ),
    Attack("open files", "fs = [open('/dev/null') for _ in range(10**5)]", TRACEBACK + "OSError"),
    Attack(
        "sleep past the timeout",
        "import time\ntime.sleep(600)",
        r"^Error: timed out after 3s \(process tree killed\)$",
    ),
    Attack(
        "ignore SIGTERM and sleep",
        "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(600)",
        r"^Error: timed out after 3s",
    ),
    # --- leaving processes behind --------------------------------------------------------
    Attack(
        "background processes, then exit",
        "import subprocess\nsubprocess.Popen(['sleep', '$tag'])\n"
        "subprocess.Popen(['sleep', '$tag'], start_new_session=True)\nprint('left')",
        r"^left$",
    ),
    Attack(
        "a double-forked daemon, then exit",
        "import os, time\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
        "        os.execvp('sleep', ['sleep', '$tag'])\n    os._exit(0)\n"
        "time.sleep(0.3)\nprint('daemonized')",
        r"^daemonized$",
    ),
    Attack(
        "background processes, then time out",
        "import subprocess, time\n"
        "subprocess.Popen(['sh', '-c', 'sleep $tag'], start_new_session=True)\ntime.sleep(600)",
        r"^Error: timed out after 3s",
    ),
]


@dataclass
class Host:
    """What the attacks aim at on the host, and how to see that nothing changed."""

    canary: subprocess.Popen[bytes]
    tcp: socket.socket
    udp: socket.socket
    abstract: socket.socket
    abstract_name: str
    home_file: Path
    host_tmp: Path
    repo_hash: str

    def values(self, tag: str) -> dict[str, Any]:
        """The ``$names`` of the programs."""
        return {
            "tag": tag,
            "tcp_port": self.tcp.getsockname()[1],
            "udp_port": self.udp.getsockname()[1],
            "abstract": self.abstract_name,
            "home_file": self.home_file,
            "repo_file": REPO_FILE,
            "host_tmp": self.host_tmp,
            "podium_pid": os.getpid(),
            "canary_pid": self.canary.pid,
        }

    def assert_unaffected(self) -> None:
        """The host is as it was: canary alive, files unchanged, no packet or connection."""
        assert self.canary.poll() is None, "the canary host process was killed"
        assert self.home_file.read_text() == "home secret"
        assert self.host_tmp.read_text() == "host tmp secret"
        assert hashlib.sha256(REPO_FILE.read_bytes()).hexdigest() == self.repo_hash
        for listener in (self.tcp, self.abstract):
            with pytest.raises(BlockingIOError):
                listener.accept()
        with pytest.raises(BlockingIOError):
            self.udp.recv(64)


@pytest.fixture(scope="module")
def host() -> Iterator[Host]:
    """Listeners, files and a canary process the attacks try to reach."""
    tag = uuid.uuid4().hex
    home_file = Path.home() / f"podium-containment-{tag}.txt"
    host_tmp = Path("/tmp") / f"podium-containment-{tag}.txt"
    home_file.write_text("home secret")
    host_tmp.write_text("host tmp secret")
    canary = subprocess.Popen(["sleep", "600"])
    tcp = socket.socket()
    tcp.bind(("127.0.0.1", 0))
    tcp.listen()
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 0))
    abstract = socket.socket(socket.AF_UNIX)
    abstract.bind(f"\0podium-{tag}")
    abstract.listen()
    for s in (tcp, udp, abstract):
        s.setblocking(False)
    repo_hash = hashlib.sha256(REPO_FILE.read_bytes()).hexdigest()
    try:
        yield Host(canary, tcp, udp, abstract, f"podium-{tag}", home_file, host_tmp, repo_hash)
    finally:
        canary.kill()
        canary.wait()
        for s in (tcp, udp, abstract):
            s.close()
        home_file.unlink(missing_ok=True)
        host_tmp.unlink(missing_ok=True)


@pytest.fixture(autouse=True)
def _keys_and_jail(monkeypatch: pytest.MonkeyPatch) -> None:
    """API keys set in podium's environment; the jail in its default mode."""
    for name, value in KEYS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv(sandbox.ENV_MODE, raising=False)


def leaked(text: str) -> list[str]:
    """The names of the keys whose values occur in ``text``."""
    return [name for name, value in KEYS.items() if value in text]


def jail_tool(memory_mb: int) -> BaseTool:
    """The python tool with the suite's timeout and ``memory_mb`` (the case's marker)."""
    cfg = PythonConfig(timeout_s=TIMEOUT_S, memory_mb=memory_mb)
    return python_tool(cfg, Prices(load_config()))


def run_tool(code: str, memory_mb: int) -> ToolMessage:
    """``code`` through the real python tool, as the graph's ToolNode calls it."""
    msg = jail_tool(memory_mb).invoke(
        {"type": "tool_call", "name": "python", "args": {"code": code}, "id": "c1"}
    )
    assert isinstance(msg, ToolMessage)
    return msg


def test_the_jail_is_usable_here() -> None:
    assert jail.bwrap_available(), "install bubblewrap (make system-deps)"


def test_the_suite_has_at_least_20_attacks() -> None:
    assert len(ATTACKS) >= 20 and len({a.name for a in ATTACKS}) == len(ATTACKS)


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_an_attack_is_contained(attack: Attack, host: Host, processes) -> None:
    memory_mb = 400 + ATTACKS.index(attack)  # unique: marks this case's processes
    tag = str(uuid.uuid4().int % 10**12 + 10**12)  # a valid `sleep` duration, unique
    msg = run_tool(Template(attack.code).substitute(host.values(tag)), memory_mb)
    content, usage = str(msg.content), msg.artifact

    assert re.search(attack.expect, content, re.MULTILINE), content[:1500]
    assert "ESCAPED" not in content
    if content.startswith("Error: "):  # the graph bills and records it as a failed call
        assert usage["error"] and usage["error"] in content.splitlines()[0]
    assert not leaked(content + repr(usage))
    assert usage["compute_seconds"] < TIMEOUT_S + KILL_GRACE_S  # killed in time
    assert processes.running(f"RLIMIT_AS:{memory_mb << 20}") == []  # nothing of it survives
    assert processes.running(tag) == []
    host.assert_unaffected()


def test_the_graph_runs_on_after_attacks_in_one_turn(fake_graph, host: Host, processes) -> None:
    """Three attacks as parallel calls of one turn, then a harmless call: the run answers."""
    bombs = [a for a in ATTACKS if a.name in ("fork bomb", "kill -9 the parent", "memory bomb")]
    values = host.values("1")
    calls = [
        {"name": "python", "args": {"code": Template(a.code).substitute(values)}, "id": f"c{i}"}
        for i, a in enumerate(bombs)
    ]
    script = [
        AIMessage(content="", tool_calls=calls),
        AIMessage(content="", tool_calls=[{"name": "python", "args": {"code": "6*7"}, "id": "ok"}]),
        "42",
    ]
    _, ctx = fake_graph(script, [jail_tool(499)])
    out = graph.invoke({"question": "6*7?"}, context=Context(**ctx, budget_usd=1.0))

    assert out["stopped_by"] == "answer" and out["answer"] == "42"
    tool_entries = [e for e in out["ledger"] if e["kind"] == "tool"]
    assert [e["ok"] for e in tool_entries] == [False, False, False, True]
    assert all(e["error"] for e in tool_entries[:3])
    assert [m.content for m in out["messages"] if isinstance(m, ToolMessage)][-1] == "42"
    assert processes.running(f"RLIMIT_AS:{499 << 20}") == []
    host.assert_unaffected()


def test_the_host_checks_can_fail(host: Host) -> None:
    """A connection or a datagram that does reach the host fails the check (and is consumed)."""
    with socket.create_connection(host.tcp.getsockname()), pytest.raises(pytest.fail.Exception):
        host.assert_unaffected()
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sender:
        sender.sendto(b"x", host.udp.getsockname())
        with pytest.raises(pytest.fail.Exception):
            host.assert_unaffected()
    host.assert_unaffected()


# --- limits of the whole run, not of each process ------------------------------------------

HOLD_3X800 = """
import os, time
for _ in range(3):
    if os.fork() == 0:
        x = b'x' * (800 << 20)  # written, so resident: 2.4 GB together
        time.sleep(30)
        os._exit(0)
for _ in range(3):
    os.wait()
print('the children ended')
"""
RUN_OOM = r"^Error: memory limit of 1100 MB exceeded by the run's processes together"


@pytest.mark.parametrize("mode", ["kernel", "watchdog"])
def test_three_processes_of_800_mb_are_killed_as_one_run(
    mode: str, monkeypatch: pytest.MonkeyPatch, processes
) -> None:
    """Each process is under its own 1100 MB; the run's 2.4 GB is not (cgroup or watchdog)."""
    if mode == "watchdog":
        monkeypatch.setattr(run_limits, "active_mode", lambda: run_limits.WATCHDOG)
    else:
        assert run_limits.active_mode() != run_limits.WATCHDOG, "no writable cgroup here"
    before = _run_groups()
    msg = run_tool(HOLD_3X800, 1100)
    assert re.search(RUN_OOM, str(msg.content)), str(msg.content)[:1500]
    assert msg.artifact["error"] in str(msg.content)
    assert msg.artifact["compute_seconds"] < TIMEOUT_S + KILL_GRACE_S
    assert processes.running(f"RLIMIT_AS:{1100 << 20}") == []
    assert _run_groups() - before == set()


def test_a_million_empty_files_in_tmp_are_bounded(processes) -> None:
    code = "for i in range(10**6):\n    open(f'/tmp/f{i}', 'w').close()\nprint('ESCAPED')"
    cfg = PythonConfig(timeout_s=30, memory_mb=1101)
    before = _run_groups()
    msg = python_tool(cfg, Prices(load_config())).invoke(
        {"type": "tool_call", "name": "python", "args": {"code": code}, "id": "c1"}
    )
    content = str(msg.content)
    assert content.startswith(f"Error: more than {run_limits.MAX_TMP_FILES} files in /tmp")
    assert "ESCAPED" not in content and msg.artifact["compute_seconds"] < 30
    assert processes.running(f"RLIMIT_AS:{1101 << 20}") == [] and _run_groups() - before == set()


def _run_groups() -> set[str]:
    """Run groups on the host now; a run must remove its own (compare before and after).

    Other processes (another test session, a run SIGKILLed before it could clean up) may
    hold groups of their own, so only the groups a run adds are its leftovers.
    """
    found: set[str] = set()
    for controller in ("memory", "pids", "unified"):
        own = Path(f"/sys/fs/cgroup/{controller}")
        found |= {str(p) for p in own.rglob("podium-*")} if own.is_dir() else set()
    return found


# --- the kernel keyring and other shared kernel state -------------------------------------

KEYRING = """
import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
libc.syscall.restype = ctypes.c_long
SYS = {'x86_64': (248, 249, 250), 'aarch64': (217, 218, 219)}[os.uname().machine]
"""
STORE_KEY = (
    KEYRING
    + """
key = libc.syscall(SYS[0], b'user', b'podium-$tag', b'secret-$tag', 13 + len('$tag'), -4)
print('stored' if key > 0 else f'add_key: {os.strerror(ctypes.get_errno())}')
"""
)
READ_KEY = (
    KEYRING
    + """
key = libc.syscall(SYS[1], b'user', b'podium-$tag', None, -4)
if key < 0:
    print(f'request_key: {os.strerror(ctypes.get_errno())}')
else:
    buf = ctypes.create_string_buffer(256)
    n = libc.syscall(SYS[2], 11, key, buf, 256)  # KEYCTL_READ
    print(buf.raw[:n])
"""
)


def test_runs_do_not_share_the_kernel_keyring() -> None:
    """Run 1 stores a secret in the user keyring; run 2, another process, cannot read it."""
    tag = uuid.uuid4().hex[:8]
    stored = run_tool(Template(STORE_KEY).substitute(tag=tag), 1102)
    read = run_tool(Template(READ_KEY).substitute(tag=tag), 1103)
    assert f"secret-{tag}" not in str(read.content)
    assert str(stored.content) == "add_key: Operation not permitted"
    assert str(read.content) == "request_key: Operation not permitted"


@pytest.mark.parametrize(
    ("name", "code"),
    [
        ("io_uring_setup", "libc.syscall(425, 8, ctypes.create_string_buffer(120))"),
        ("unshare a user namespace", "libc.unshare(0x10000000)"),
        ("clone into a new net namespace", "libc.unshare(0x40000000)"),
    ],
)
def test_shared_kernel_surface_is_refused(name: str, code: str) -> None:
    program = f"{KEYRING}\nr = {code}\nprint(r, os.strerror(ctypes.get_errno()))"
    assert str(run_tool(program, 1104).content) == "-1 Operation not permitted", name


def test_threads_and_subprocesses_still_work_under_the_filter() -> None:
    code = (
        "import subprocess, threading\nt = threading.Thread(target=print, args=('thread',))\n"
        "t.start(); t.join()\nprint(subprocess.run(['echo', 'child'], capture_output=True,"
        " text=True).stdout.strip())"
    )
    assert str(run_tool(code, 1105).content) == "thread\nchild"


def test_the_isolation_mode_is_reported() -> None:
    mode = sandbox.isolation()
    assert mode["jail"] == "bwrap" and mode["seccomp"] == "on"
    assert mode["run_limits"] in (run_limits.CGROUP_V1, run_limits.CGROUP_V2, run_limits.WATCHDOG)
