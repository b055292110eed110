"""Run model-written Python in a bubblewrap jail, like a notebook cell, with hard limits."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import re
import selectors
import signal
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass

from . import run_limits
from .jail import bwrap_problem, jail_argv, jail_python, seccomp_fd
from .seccomp import filter_available as seccomp_available

logger = logging.getLogger(__name__)

ENV_MODE = "PODIUM_SANDBOX"  # "none" forces the unisolated fallback, "bwrap" requires the jail
FORCED_OFF = f"{ENV_MODE}=none: python tool runs WITHOUT isolation"
TIMED_OUT = "timed out after {timeout:g}s (process tree killed)"
FLOODED = "output flood: more than {mib} MiB written (process tree killed)"
OUT_OF_MEMORY = "memory limit of {mb} MB exceeded"
RUN_OUT_OF_MEMORY = "memory limit of {mb} MB exceeded by the run's processes together (killed)"
TOO_MANY_FILES = "more than {n} files in /tmp (process tree killed)"
CPU_EXCEEDED = "CPU time limit of {cpu}s exceeded"
KILLED = "killed by signal {name}"
EXITED = "exited with code {code}"

JAIL_UID = 65534  # nobody; concurrent runs count down from it (65000-65533 are unassigned)
MAX_OPEN_FILES = 256
FLOOD_BYTES = 4 << 20  # output beyond the cap is read and dropped up to this, then we kill
KILL_GRACE_S = 1.0  # how long pipes are drained after a kill before we stop waiting
ERROR_TAIL = 4096  # end of stderr kept apart from the caps, to find the traceback's last line
OBS_MAX_CHARS = 4000  # longest stdout section shown to the policy model
_TRACE_LINE = re.compile(r'^\s*File "', re.MULTILINE)
_MEMORY_ERROR = re.compile(r"^[\w.]*MemoryError\b")

# Runs inside the sandboxed interpreter: reads the cell from stdin, sets the rlimits (here, not
# in preexec_fn, which may deadlock while other threads run), drops root for the jail uid, then
# runs the cell in __main__ and prints a trailing expression's repr. argv: uid, NAME:soft:hard...
# It imports _ast, not ast, and traceback only on error: they cost ~50 ms of start-up here.
_RUNNER = r"""
def _podium_main():
    import _ast, os, resource, sys
    source, uid = sys.stdin.read(), int(sys.argv[1])
    sys.stdin = open(os.devnull)
    for spec in sys.argv[2:]:
        name, soft, hard = spec.split(":")
        res = getattr(resource, name)
        top = resource.getrlimit(res)[1]  # without CAP_SYS_RESOURCE a hard limit only drops
        top = int(hard) if top == resource.RLIM_INFINITY else min(int(hard), top)
        resource.setrlimit(res, (min(int(soft), top), top))
    if uid >= 0:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
    if sys.flags.no_site:  # -S in the jail; models still call exit() and quit()
        import site
        site.setquit()

    def fail(exc, tb):
        import linecache, traceback
        linecache.cache["<cell>"] = (len(source), None, source.splitlines(True), "<cell>")
        while tb is not None and tb.tb_frame.f_code.co_filename != "<cell>":
            tb = tb.tb_next
        traceback.print_exception(type(exc), exc, tb)
        sys.exit(1)

    try:
        tree = compile(source, "<cell>", "exec", _ast.PyCF_ONLY_AST)
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], _ast.Expr) else None
        body = compile(tree, "<cell>", "exec")
        value = compile(_ast.Expression(last.value), "<cell>", "eval") if last else None
    except (SyntaxError, ValueError) as exc:
        fail(exc, None)
    namespace = sys.modules["__main__"].__dict__
    del namespace["_podium_main"]
    try:
        exec(body, namespace)
        if value is not None and (result := eval(value, namespace)) is not None:
            print(repr(result))
    except SystemExit:
        raise
    except BaseException as exc:
        fail(exc, exc.__traceback__)
_podium_main()
"""


@dataclass(frozen=True)
class SandboxLimits:
    """Resource limits of one run."""

    timeout_s: float = 10.0  # wall clock; whole process tree killed when exceeded
    cpu_s: int = 10  # RLIMIT_CPU
    memory_mb: int = 1024  # RLIMIT_AS of each process, and the whole run's (run_limits)
    max_output_bytes: int = 16_000  # stdout+stderr kept; rest dropped, result.truncated=True
    max_processes: int = 64  # RLIMIT_NPROC of the jail uid, and the run's pids limit
    max_file_mb: int = 16  # RLIMIT_FSIZE; the jail's /tmp holds 4x this


@dataclass(frozen=True)
class SandboxResult:
    """What one run produced; ``exit_code`` < 0 means killed by that signal."""

    stdout: str
    stderr: str
    exit_code: int
    seconds: float
    timed_out: bool
    truncated: bool
    isolated: bool  # ran under bwrap
    error: str | None  # one line for the model when the run failed

    @property
    def ok(self) -> bool:
        """True when the code ran to completion without error."""
        return self.error is None and self.exit_code == 0 and not self.timed_out


class _Capture:
    """One stream: a head from a budget shared by both streams, then a rolling tail."""

    def __init__(self, tail_size: int) -> None:
        self.head, self.tail, self.end = bytearray(), bytearray(), bytearray()
        self.tail_size, self.dropped = tail_size, 0

    def feed(self, data: bytes, head_room: int) -> int:
        """Keep what the caps allow of ``data``; return how many bytes went into the head."""
        self.end += data
        del self.end[:-ERROR_TAIL]
        taken = 0 if self.tail else min(len(data), max(head_room, 0))
        self.head += data[:taken]
        self.tail += data[taken:]
        if (excess := len(self.tail) - self.tail_size) > 0:
            self.dropped += excess
            del self.tail[:excess]
        return taken

    def text(self) -> str:
        """The kept output, marked where bytes were dropped."""
        gap = f"\n[... {self.dropped} bytes dropped ...]\n".encode() if self.dropped else b""
        return bytes(self.head + gap + self.tail).decode("utf-8", "replace")


_lock = threading.Lock()
_uids_in_use: set[int] = set()


@functools.cache
def _log_once(reason: str) -> None:
    """Log why code runs without isolation, once per reason (warnings repeat per call site)."""
    logger.warning(reason)


def _claim_uid() -> int:
    """A jail uid no concurrent run holds: RLIMIT_NPROC counts per host uid, not per jail."""
    if os.geteuid() != 0:
        return -1  # --unshare-user already gives the jail its own count
    with _lock:
        uid = next(u for u in range(JAIL_UID, 0, -1) if u not in _uids_in_use)
        _uids_in_use.add(uid)
    return uid


class _Cell:
    """One started run: the process, its captured output and how it ended."""

    def __init__(
        self,
        argv: list[str],
        env: dict[str, str],
        cwd: str | None,
        code: str,
        group: run_limits.RunGroup,
        fds: tuple[int, ...] = (),
        tmp_bytes: int = 0,
    ) -> None:
        self.pidfd: int | None = None
        self.timed_out = self.flooded = False
        self.overrun: str | None = None  # the run limit the watchdog killed it for
        jailed = cwd is None  # bwrap sets the jail's working dir itself
        info_r, info_w = os.pipe() if jailed else (-1, -1)  # bwrap writes its init's pid here
        argv = [argv[0], "--info-fd", str(info_w), *argv[1:]] if jailed else argv
        pipe, fds = subprocess.PIPE, (info_w, *fds) if jailed else fds
        try:
            self.proc = subprocess.Popen(  # no preexec_fn: it can deadlock while threads run
                [*group.launcher(), *argv], stdin=pipe, stdout=pipe, stderr=pipe, env=env,
                cwd=cwd, start_new_session=True, pass_fds=fds,
            )  # fmt: skip
        except OSError:
            if jailed:
                os.close(info_r)
            raise
        finally:
            if jailed:
                os.close(info_w)
        pid = None
        if jailed:
            with open(info_r, "rb") as info:  # EOF once bwrap has cloned the jail's init, or died
                pid = json.loads(info.read() or b"{}").get("child-pid")
            # The init is still alive here (the runner waits on stdin), so the pidfd is its
            # own; killing it empties the pid namespace before bwrap itself exits.
            with contextlib.suppress(ProcessLookupError, TypeError):
                self.pidfd = os.pidfd_open(pid)
        jail_init = pid if self.pidfd else None
        self.watchdog = run_limits.Watchdog(group, self.proc.pid, jail_init, tmp_bytes)
        with contextlib.suppress(BrokenPipeError), self.proc.stdin:  # type: ignore[union-attr]
            self.proc.stdin.write(code.encode("utf-8", "replace"))  # type: ignore[union-attr]

    def kill(self) -> None:
        """SIGKILL the jail's init (so its pid namespace) or, unisolated, the process group."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if self.pidfd is not None:
                signal.pidfd_send_signal(self.pidfd, signal.SIGKILL)
            else:
                os.killpg(self.proc.pid, signal.SIGKILL)

    def exited(self) -> bool:
        """Whether the child exited, without reaping it: its group id stays ours until we kill."""
        flags = os.WEXITED | os.WNOHANG | os.WNOWAIT
        return os.waitid(os.P_PID, self.proc.pid, flags) is not None

    def collect(self, limits: SandboxLimits) -> tuple[_Capture, _Capture]:
        """Read both pipes under the caps until EOF; kill on timeout, flood or the main exit."""
        tail = limits.max_output_bytes // 8
        caps = {self.proc.stdout: _Capture(tail), self.proc.stderr: _Capture(tail)}
        room, received, killed = limits.max_output_bytes - 2 * tail, 0, False
        flood_at = max(FLOOD_BYTES, limits.max_output_bytes)
        deadline = time.monotonic() + limits.timeout_s
        with selectors.DefaultSelector() as sel:
            for pipe in caps:
                sel.register(pipe, selectors.EVENT_READ)  # type: ignore[arg-type]
            while sel.get_map():
                if (left := deadline - time.monotonic()) <= 0 and killed:
                    break  # a process outside our reach holds the pipes (unisolated only)
                exited = self.exited()
                over = None if killed or exited else self.watchdog.over()
                if not killed and (left <= 0 or exited or received > flood_at or over):
                    # Also on a normal exit: background children must not outlive the cell.
                    self.timed_out, self.flooded = left <= 0 and not exited, received > flood_at
                    self.overrun = over
                    self.kill()
                    killed, deadline = True, time.monotonic() + KILL_GRACE_S
                    continue
                for key, _ in sel.select(min(left, 0.05)):
                    if not (data := os.read(key.fd, 1 << 16)):
                        sel.unregister(key.fileobj)
                    else:
                        received += len(data)
                        room -= caps[key.fileobj].feed(data, room)  # type: ignore[index]
        try:
            self.proc.wait(KILL_GRACE_S / 2)  # keeps the worst case within timeout + 2 s
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        for fd in (self.proc.stdout, self.proc.stderr):
            fd.close()  # type: ignore[union-attr]
        if self.pidfd is not None:
            os.close(self.pidfd)
        return caps[self.proc.stdout], caps[self.proc.stderr]


def _describe(
    cell: _Cell, code: int, err: _Capture, limits: SandboxLimits, oom: bool
) -> str | None:
    """One line telling the model why the run failed, or ``None``."""
    err_tail = bytes(err.end).decode("utf-8", "replace")
    last = (err_tail.strip().splitlines() or [""])[-1].strip()
    if cell.overrun == "files":
        return TOO_MANY_FILES.format(n=run_limits.MAX_TMP_FILES)
    if cell.overrun == "memory" or oom:
        return RUN_OUT_OF_MEMORY.format(mb=limits.memory_mb)
    if cell.timed_out:
        return TIMED_OUT.format(timeout=limits.timeout_s)
    if cell.flooded:
        return FLOODED.format(mib=max(FLOOD_BYTES, limits.max_output_bytes) >> 20)
    if code < 0 and -code == signal.SIGXCPU:
        return CPU_EXCEEDED.format(cpu=limits.cpu_s)
    if code < 0:
        return KILLED.format(name=next((s.name for s in signal.Signals if s == -code), -code))
    if code and _MEMORY_ERROR.match(last):
        return OUT_OF_MEMORY.format(mb=limits.memory_mb)
    if code == 1 and _TRACE_LINE.search(err_tail):
        return f"Traceback: {last}"
    return EXITED.format(code=code) + (f" ({last})" if last else "") if code else None


def _start(
    code: str,
    args: list[str],
    limits: SandboxLimits,
    group: run_limits.RunGroup,
    scratch: str | None,
) -> _Cell:
    """Start the runner in the jail, or unisolated in ``scratch``, inside the run's group."""
    if scratch is None:  # bwrap sets the jail's env and working dir itself
        tmp_bytes = 4 * limits.max_file_mb << 20  # each tmpfs holds 4 files of the max size
        with seccomp_fd() as fd:
            argv = [*jail_argv(tmp_bytes, fd), *jail_python(), *args]
            return _Cell(argv, {}, None, code, group, () if fd is None else (fd,), tmp_bytes)
    env = {"PATH": os.defpath, "HOME": scratch, "LANG": "C.UTF-8"}
    env |= {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"}
    return _Cell([sys.executable, *args], env, scratch, code, group)


def isolation() -> dict[str, str]:
    """How runs are isolated on this host, for ``podium tools`` and the docs.

    ``jail``: ``bwrap`` or ``none`` (with why); ``run_limits``: how memory and processes
    are limited per run (``cgroup v2``, ``cgroup v1`` or ``watchdog``); ``seccomp``: whether
    the jail's syscall filter is loaded.
    """
    problem = FORCED_OFF if os.environ.get(ENV_MODE, "").strip().lower() == "none" else None
    problem = problem or bwrap_problem()
    return {
        "jail": f"none ({problem})" if problem else "bwrap",
        "run_limits": run_limits.active_mode(),
        "seccomp": "on" if not problem and seccomp_available() else "off",
    }


def run_python(code: str, limits: SandboxLimits | None = None) -> SandboxResult:
    """Run ``code`` as a notebook cell in the jail (or, loudly, unisolated) and report.

    Args:
        code: Python source; a trailing expression's repr is printed when it is not None.
        limits: Resource limits; ``SandboxLimits()`` when omitted.

    Raises:
        RuntimeError: ``PODIUM_SANDBOX=bwrap`` is set and the jail cannot run here.
    """
    limits = limits or SandboxLimits()
    mode = os.environ.get(ENV_MODE, "").strip().lower()
    problem = FORCED_OFF if mode == "none" else bwrap_problem()
    if problem and mode == "bwrap":
        raise RuntimeError(problem)
    if problem:
        warnings.warn(problem, RuntimeWarning, stacklevel=2)
        _log_once(problem)
    mem, fsize, nproc = limits.memory_mb << 20, limits.max_file_mb << 20, limits.max_processes
    rlimits = [("RLIMIT_CPU", limits.cpu_s, limits.cpu_s + 1), ("RLIMIT_AS", mem, mem)]
    rlimits += [("RLIMIT_FSIZE", fsize, fsize), ("RLIMIT_CORE", 0, 0)]
    rlimits += [("RLIMIT_NOFILE", MAX_OPEN_FILES, MAX_OPEN_FILES)]
    # Unisolated, RLIMIT_NPROC stays unset: root ignores it, and for a normal user it would
    # count every process of their session.
    rlimits += [] if problem else [("RLIMIT_NPROC", nproc, nproc)]
    uid = -1 if problem else _claim_uid()
    args = ["-c", _RUNNER, str(uid), *(f"{n}:{soft}:{hard}" for n, soft, hard in rlimits)]
    start = time.monotonic()
    scratch = None
    if problem:
        scratch = tempfile.TemporaryDirectory(prefix="podium-", ignore_cleanup_errors=True)
    group = run_limits.RunGroup.create(mem, nproc)
    try:
        cell = _start(code, args, limits, group, scratch.name if scratch else None)
        out, err = cell.collect(limits)
        oom = group.out_of_memory()
    finally:
        group.close()
        if scratch is not None:
            scratch.cleanup()
        with _lock:
            _uids_in_use.discard(uid)
    exit_code = cell.proc.returncode
    if not problem and exit_code > 128 and exit_code - 128 in signal.valid_signals():
        exit_code = 128 - exit_code  # bwrap exits 128 + N when the code died of signal N
    return SandboxResult(
        stdout=out.text(), stderr=err.text(), exit_code=exit_code,
        seconds=time.monotonic() - start, timed_out=cell.timed_out,
        truncated=bool(out.dropped or err.dropped or cell.flooded), isolated=not problem,
        error=_describe(cell, exit_code, err, limits, oom),
    )  # fmt: skip


def _clip(text: str, limit: int) -> str:
    """Shorten ``text`` to about ``limit`` chars, keeping its start and its end."""
    if len(text) <= limit:
        return text
    head = limit * 3 // 4
    return f"{text[:head]}\n[... {len(text) - limit} chars omitted ...]\n{text[head - limit :]}"


def observation(result: SandboxResult) -> str:
    """The text the policy model sees: the error if any, then output, clearly labelled.

    A clean run shows its output alone, as a notebook does: small policies copy labels.
    """
    if result.ok and not result.stderr.strip() and not result.truncated and result.stdout.strip():
        return _clip(result.stdout.rstrip("\n"), OBS_MAX_CHARS)
    parts = [f"Error: {result.error}"] if result.error else []
    if result.stdout.strip():
        parts.append("Output:\n" + _clip(result.stdout.rstrip("\n"), OBS_MAX_CHARS))
    if result.stderr.strip():
        parts.append("Stderr:\n" + _clip(result.stderr.rstrip("\n"), OBS_MAX_CHARS // 2))
    if result.truncated:
        parts.append("[output was truncated]")
    return "\n".join(parts) or "Output: (none; print() or end the cell with an expression)"
