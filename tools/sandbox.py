"""Run model-written Python in a bubblewrap jail, like a notebook cell, with hard limits."""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import re
import selectors
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass

logger = logging.getLogger(__name__)

ENV_MODE = "PODIUM_SANDBOX"  # "none" forces the unisolated fallback, "bwrap" requires the jail
NO_BWRAP = "bubblewrap not found: python tool runs WITHOUT isolation; apt-get install bubblewrap"
BROKEN_BWRAP = "bubblewrap is unusable here ({detail}): python tool runs WITHOUT isolation"
FORCED_OFF = f"{ENV_MODE}=none: python tool runs WITHOUT isolation"
TIMED_OUT = "timed out after {timeout:g}s (process tree killed)"
FLOODED = "output flood: more than {mib} MiB written (process tree killed)"
OUT_OF_MEMORY = "memory limit of {mb} MB exceeded"
CPU_EXCEEDED = "CPU time limit of {cpu}s exceeded"
KILLED = "killed by signal {name}"
EXITED = "exited with code {code}"

JAIL_SITE = "/opt/site-packages"  # neutral path of the venv's site-packages inside the jail
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
    memory_mb: int = 1024  # RLIMIT_AS
    max_output_bytes: int = 16_000  # stdout+stderr kept; rest dropped, result.truncated=True
    max_processes: int = 64  # RLIMIT_NPROC of the jail uid
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


def _jail_python() -> list[str]:
    """The real interpreter behind ``sys.executable`` (a venv's python is only a symlink).

    With ``-S``: the base prefix's own site-packages and its ``.pth`` hooks stay out of the
    jail (they ran as root before the uid drop and cost ~100 ms here); the venv's packages
    come in through PYTHONPATH, which needs no ``site``.
    """
    exe = os.path.join(sys.base_prefix, "bin", "python{}.{}".format(*sys.version_info[:2]))
    return [exe if os.path.exists(exe) else os.path.realpath(sys.executable), "-S"]


@functools.cache
def _jail_mounts() -> tuple[str, ...]:
    """Read-only binds of only what Python needs, mirroring the host's /bin, /lib* layout."""
    prefix = os.path.realpath(sys.base_prefix)
    site = os.path.realpath(sysconfig.get_path("purelib"))
    etc = ("/etc/ld.so.cache", "/etc/localtime", "/etc/alternatives")  # not /etc wholesale
    binds = [("/usr", "/usr"), *((p, p) for p in etc)]
    if not prefix.startswith("/usr/"):  # e.g. /root/.pyenv/versions/3.11.7: that prefix only
        binds.append((prefix, prefix))
    binds.append((site, JAIL_SITE))  # the venv's; never the repo or home around it
    args, parents = [], set()
    for top in ("/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"):
        if os.path.islink(top):
            args += ["--symlink", os.readlink(top), top]
        elif os.path.isdir(top):
            binds.append((top, top))
    for src, dest in binds:
        if not os.path.exists(src):
            continue
        # bwrap would create missing parents 0700, unreadable once the runner drops root.
        for parent in (dest[:i] for i, c in enumerate(dest) if c == "/" and i):
            if parent not in parents:
                parents.add(parent)
                args += ["--perms", "0755", "--dir", parent]
        args += ["--ro-bind", src, dest]
    return tuple(args)


def _jail_argv(limits: SandboxLimits) -> list[str]:
    """The bwrap command line, up to (not including) the interpreter."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8"}
    env |= {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1", "PYTHONPATH": JAIL_SITE}
    bwrap = shutil.which("bwrap") or "bwrap"
    argv = [bwrap, "--die-with-parent", "--new-session", "--unshare-net", "--unshare-pid"]
    argv += ["--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try", "--hostname", "sandbox"]
    if os.geteuid() == 0:
        # No --unshare-user as root: bwrap maps the jail uid to host uid 0, which the kernel
        # exempts from RLIMIT_NPROC (measured: 300 forks passed a limit of 64). The jail keeps
        # only CAP_SETUID/SETGID, and the runner drops to an unprivileged uid with them.
        argv += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        argv += ["--unshare-user"]
    argv += [*_jail_mounts(), "--proc", "/proc", "--dev", "/dev"]
    for tmpfs in ("/tmp", "/dev/shm"):
        argv += ["--size", str(4 * limits.max_file_mb << 20), "--perms", "1777", "--tmpfs", tmpfs]
    argv += ["--chdir", "/tmp", "--clearenv"]
    for key, value in env.items():
        argv += ["--setenv", key, value]
    return argv


@functools.cache
def _bwrap_problem() -> str | None:
    """Why the jail cannot run here, or ``None`` when it can; probed once per process."""
    if shutil.which("bwrap") is None:
        return NO_BWRAP
    argv = [*_jail_argv(SandboxLimits()), *_jail_python(), "-c", "pass"]
    try:
        probe = subprocess.run(argv, capture_output=True, text=True, timeout=30, env={})
    except (OSError, subprocess.TimeoutExpired) as exc:
        return BROKEN_BWRAP.format(detail=exc)
    lines = probe.stderr.strip().splitlines() or [f"exit code {probe.returncode}"]
    return None if probe.returncode == 0 else BROKEN_BWRAP.format(detail=lines[-1])


def bwrap_available() -> bool:
    """True when bubblewrap is installed and can build the jail on this host."""
    return _bwrap_problem() is None


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

    def __init__(self, argv: list[str], env: dict[str, str], cwd: str | None, code: str) -> None:
        self.pidfd: int | None = None
        self.timed_out = self.flooded = False
        jailed = cwd is None  # bwrap sets the jail's working dir itself
        info_r, info_w = os.pipe() if jailed else (-1, -1)  # bwrap writes its init's pid here
        argv = [argv[0], "--info-fd", str(info_w), *argv[1:]] if jailed else argv
        pipe = subprocess.PIPE
        try:
            self.proc = subprocess.Popen(  # no preexec_fn: it can deadlock while threads run
                argv, stdin=pipe, stdout=pipe, stderr=pipe, env=env, cwd=cwd,
                start_new_session=True, pass_fds=(info_w,) if jailed else (),
            )  # fmt: skip
        except OSError:
            if jailed:
                os.close(info_r)
            raise
        finally:
            if jailed:
                os.close(info_w)
        if jailed:
            with open(info_r, "rb") as info:  # EOF once bwrap has cloned the jail's init, or died
                pid = json.loads(info.read() or b"{}").get("child-pid")
            # The init is still alive here (the runner waits on stdin), so the pidfd is its
            # own; killing it empties the pid namespace before bwrap itself exits.
            with contextlib.suppress(ProcessLookupError, TypeError):
                self.pidfd = os.pidfd_open(pid)
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
                if not killed and (left <= 0 or exited or received > flood_at):
                    # Also on a normal exit: background children must not outlive the cell.
                    self.timed_out, self.flooded = left <= 0 and not exited, received > flood_at
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


def _describe(cell: _Cell, code: int, err: _Capture, limits: SandboxLimits) -> str | None:
    """One line telling the model why the run failed, or ``None``."""
    err_tail = bytes(err.end).decode("utf-8", "replace")
    last = (err_tail.strip().splitlines() or [""])[-1].strip()
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
    problem = FORCED_OFF if mode == "none" else _bwrap_problem()
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
    try:
        if scratch is None:  # bwrap sets the jail's env and working dir itself
            cell = _Cell([*_jail_argv(limits), *_jail_python(), *args], {}, None, code)
        else:
            env = {"PATH": os.defpath, "HOME": scratch.name, "LANG": "C.UTF-8"}
            env |= {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"}
            cell = _Cell([sys.executable, *args], env, scratch.name, code)
        out, err = cell.collect(limits)
    finally:
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
        error=_describe(cell, exit_code, err, limits),
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
