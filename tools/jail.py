"""The bubblewrap jail's command line: mounts, namespaces, seccomp, tmpfs sizes."""

from __future__ import annotations

import contextlib
import functools
import os
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterator

from . import seccomp

NO_BWRAP = "bubblewrap not found: python tool runs WITHOUT isolation; apt-get install bubblewrap"
BROKEN_BWRAP = "bubblewrap is unusable here ({detail}): python tool runs WITHOUT isolation"
JAIL_SITE = "/opt/site-packages"  # neutral path of the venv's site-packages inside the jail


def jail_python() -> list[str]:
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


def jail_argv(tmp_bytes: int, seccomp_fd: int | None) -> list[str]:
    """The bwrap command line, up to (not including) the interpreter.

    Args:
        tmp_bytes: Size of each of the jail's tmpfs (``/tmp``, ``/dev/shm``).
        seccomp_fd: A file descriptor holding the seccomp program (``tools.seccomp``), or
            ``None`` where this architecture has none.
    """
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": "/tmp", "LANG": "C.UTF-8"}
    env |= {"PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1", "PYTHONPATH": JAIL_SITE}
    bwrap = shutil.which("bwrap") or "bwrap"
    argv = [bwrap, "--die-with-parent", "--new-session", "--unshare-net", "--unshare-pid"]
    argv += ["--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try", "--hostname", "sandbox"]
    if os.geteuid() == 0:
        # No --unshare-user as root: bwrap maps the jail uid to host uid 0, which the kernel
        # exempts from RLIMIT_NPROC (measured: 300 forks passed a limit of 64). The jail keeps
        # only CAP_SETUID/SETGID, and the runner drops to an unprivileged uid with them; the
        # seccomp filter keeps runs of one uid from meeting in the kernel keyring.
        argv += ["--cap-drop", "ALL", "--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID"]
    else:
        argv += ["--unshare-user"]
    if seccomp_fd is not None:
        argv += ["--seccomp", str(seccomp_fd)]
    argv += [*_jail_mounts(), "--proc", "/proc", "--dev", "/dev"]
    for tmpfs in ("/tmp", "/dev/shm"):
        argv += ["--size", str(tmp_bytes), "--perms", "1777", "--tmpfs", tmpfs]
    argv += ["--chdir", "/tmp", "--clearenv"]
    for key, value in env.items():
        argv += ["--setenv", key, value]
    return argv


@contextlib.contextmanager
def seccomp_fd() -> Iterator[int | None]:
    """The seccomp program in a file descriptor for one bwrap start (``None``: no filter)."""
    if not seccomp.filter_available():
        yield None
        return
    fd = seccomp.program_fd()
    try:
        yield fd
    finally:
        os.close(fd)


@functools.cache
def bwrap_problem() -> str | None:
    """Why the jail cannot run here, or ``None`` when it can; probed once per process."""
    if shutil.which("bwrap") is None:
        return NO_BWRAP
    try:
        with seccomp_fd() as fd:
            argv = [*jail_argv(1 << 20, fd), *jail_python(), "-c", "pass"]
            probe = subprocess.run(
                argv, capture_output=True, text=True, timeout=30, env={},
                pass_fds=() if fd is None else (fd,),
            )  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as exc:
        return BROKEN_BWRAP.format(detail=exc)
    lines = probe.stderr.strip().splitlines() or [f"exit code {probe.returncode}"]
    return None if probe.returncode == 0 else BROKEN_BWRAP.format(detail=lines[-1])


def bwrap_available() -> bool:
    """True when bubblewrap is installed and can build the jail on this host."""
    return bwrap_problem() is None
