"""Memory and process limits per sandbox run, not per process: a cgroup, or a watchdog.

``RLIMIT_AS`` and ``RLIMIT_NPROC`` bound each process; a run of 64 processes could still
hold 64 times the memory. Each run therefore gets its own control group, with the memory
(kernel memory included: inodes and dentries of the jail's ``/tmp``) and process limits of
the whole run, nested under podium's own group so the host's limits still apply:

* ``cgroup v2``: a child of podium's group on the unified hierarchy, when its ``memory`` and
  ``pids`` controllers can be enabled there (a delegated group, e.g. ``systemd-run --scope``);
* ``cgroup v1``: children in the ``memory`` and ``pids`` hierarchies (writable as root);
* ``watchdog``: neither is writable; the sandbox sums the proportional memory of the run's
  processes a few times a second and kills the run past its limit.

The launcher (:meth:`RunGroup.launcher`) puts the first process of the run in the group
before it execs the jail, so every process of the run is born inside it.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

CGROUP_V2, CGROUP_V1, WATCHDOG = "cgroup v2", "cgroup v1", "watchdog"
_ROOT = Path("/sys/fs/cgroup")
_JOIN = 'while [ "$1" != -- ]; do echo $$ > "$1" || exit 125; shift; done; shift; exec "$@"'
_RMDIR_WAIT_S = 2.0  # processes of a killed run take a moment to leave their group


def _mounts() -> dict[str, Path]:
    """Mount points of the cgroup hierarchies: ``"2"`` for v2, controller names for v1."""
    found: dict[str, Path] = {}
    with contextlib.suppress(OSError), open("/proc/self/mountinfo") as info:
        for line in info:
            fields = line.split()
            sep = fields.index("-")
            fstype, point, options = fields[sep + 1], Path(fields[4]), fields[sep + 3]
            if fstype == "cgroup2":
                found.setdefault("2", point)
            elif fstype == "cgroup":
                for option in options.split(","):
                    found.setdefault(option, point)
    return found


def _own_paths() -> dict[str, str]:
    """This process's group per hierarchy (``"2"`` for v2), from ``/proc/self/cgroup``."""
    paths: dict[str, str] = {}
    with contextlib.suppress(OSError), open("/proc/self/cgroup") as groups:
        for line in groups:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            for name in controllers.split(",") if controllers else ["2"]:
                paths[name] = path
    return paths


def _parents() -> tuple[str, list[Path]]:
    """The mode, and the groups under which each run's group is made (empty: watchdog)."""
    mounts, own = _mounts(), _own_paths()
    if "2" in mounts and "2" in own:
        parent = mounts["2"] / own["2"].lstrip("/")
        controllers = (parent / "cgroup.controllers").read_text().split() if parent.is_dir() else []
        if {"memory", "pids"} <= set(controllers):
            return CGROUP_V2, [parent]
    if {"memory", "pids"} <= mounts.keys() and {"memory", "pids"} <= own.keys():
        return CGROUP_V1, [mounts[c] / own[c].lstrip("/") for c in ("memory", "pids")]
    return WATCHDOG, []


@dataclass
class RunGroup:
    """The control group(s) of one run; a no-op in watchdog mode."""

    memory_bytes: int
    max_pids: int
    mode: str = WATCHDOG
    dirs: list[Path] = field(default_factory=list)

    @classmethod
    def create(cls, memory_bytes: int, max_pids: int, mode: str | None = None) -> RunGroup:
        """Make the run's group with its limits (falling back to the watchdog on failure)."""
        found, parents = _parents()
        mode = mode or active_mode()
        group = cls(memory_bytes, max_pids)
        if mode == WATCHDOG or mode != found:
            return group
        name = f"podium-{uuid.uuid4().hex[:12]}"
        group.mode, group.dirs = mode, [p / name for p in parents]
        try:
            for d in group.dirs:
                d.mkdir()
            group._limit()
        except OSError:
            group.close()
            return cls(memory_bytes, max_pids)
        return group

    def _limit(self) -> None:
        if self.mode == CGROUP_V2:
            if not (self.dirs[0] / "memory.max").exists():  # controllers not enabled below
                (self.dirs[0].parent / "cgroup.subtree_control").write_text("+memory +pids")
            (self.dirs[0] / "memory.max").write_text(str(self.memory_bytes))
            with contextlib.suppress(OSError):
                (self.dirs[0] / "memory.swap.max").write_text("0")
            (self.dirs[0] / "pids.max").write_text(str(self.max_pids))
            return
        memory, pids = self.dirs
        (memory / "memory.limit_in_bytes").write_text(str(self.memory_bytes))
        with contextlib.suppress(OSError):  # only with swap accounting
            (memory / "memory.memsw.limit_in_bytes").write_text(str(self.memory_bytes))
        (pids / "pids.max").write_text(str(self.max_pids))

    @property
    def limited(self) -> bool:
        """Whether the kernel enforces the run's limits (else the caller's watchdog must)."""
        return bool(self.dirs)

    def launcher(self) -> list[str]:
        """The argv prefix that joins the group, then execs the rest of the command line."""
        if not self.dirs:
            return []
        procs = [str(d / "cgroup.procs") for d in self.dirs]
        return ["/bin/sh", "-c", _JOIN, "podium-join", *procs, "--"]

    def out_of_memory(self) -> bool:
        """Whether the kernel's OOM killer killed a process of the run."""
        for name in ("memory.events", "memory.oom_control"):  # v2, v1
            path = self.dirs[0] / name if self.dirs else None
            if path is not None and path.exists():
                for line in path.read_text().splitlines():
                    key, _, value = line.partition(" ")
                    if key == "oom_kill" and int(value or 0) > 0:
                        return True
        return False

    def close(self) -> None:
        """Remove the group(s), killing anything of the run still inside."""
        deadline = time.monotonic() + _RMDIR_WAIT_S
        for d in reversed(self.dirs):
            while d.exists():
                try:
                    d.rmdir()
                except OSError:
                    if time.monotonic() > deadline:
                        break
                    _kill_members(d)
                    time.sleep(0.02)
        self.dirs = []


def _kill_members(group: Path) -> None:
    """SIGKILL every process still in ``group`` (normally none: the pid namespace died)."""
    with contextlib.suppress(OSError):
        for pid in (group / "cgroup.procs").read_text().split():
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(pid), 9)


@functools.cache
def active_mode() -> str:
    """How this host limits a run's memory and processes: cgroup v2, cgroup v1 or watchdog.

    Probed once per process by making (and removing) a group with limits.
    """
    mode, _ = _parents()
    if mode == WATCHDOG:
        return WATCHDOG
    probe = RunGroup.create(64 << 20, 8, mode)
    try:
        return probe.mode
    finally:
        probe.close()


MAX_TMP_FILES = 100_000  # files (inodes) a run may keep in the jail's /tmp and /dev/shm
WATCH_EVERY_S = 0.1


class Watchdog:
    """Per-run accounting the kernel does not do for us, checked a few times a second.

    Always: the inodes of the jail's ``/tmp`` and ``/dev/shm`` (bwrap 0.8 sizes a tmpfs but
    cannot set its ``nr_inodes``; a million empty files cost ~1 GB of kernel memory). In
    watchdog mode also the run's memory: the proportional set size (PSS, so shared pages
    count once) of every process in the jail's pid namespace, or, unisolated, its session.
    """

    def __init__(
        self, group: RunGroup, leader: int, jail_init: int | None, tmp_bytes: int = 0
    ) -> None:
        self.group, self.leader, self.jail_init = group, leader, jail_init
        self.tmp_bytes = tmp_bytes  # size of the jail's tmpfs: tells them from the host's
        self.next_at = 0.0
        self.pid_ns = _pid_ns(jail_init) if jail_init else None

    def over(self) -> str | None:
        """``"memory"`` or ``"files"`` when the run went past a limit, else ``None``."""
        if (now := time.monotonic()) < self.next_at:
            return None
        self.next_at = now + WATCH_EVERY_S
        if self.jail_init is not None and self._tmp_files() > MAX_TMP_FILES:
            return "files"
        if not self.group.limited and self._memory() > self.group.memory_bytes:
            return "memory"
        return None

    def _tmp_files(self) -> int:
        used = 0
        for mount in ("tmp", "dev/shm"):
            with contextlib.suppress(OSError):
                st = os.statvfs(f"/proc/{self.jail_init}/root/{mount}")
                if st.f_blocks * st.f_frsize == self.tmp_bytes:  # not the host's, mid-setup
                    used += st.f_files - st.f_ffree
        return used

    def _members(self) -> list[int]:
        pids = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            with contextlib.suppress(OSError):
                if self.pid_ns is not None:
                    if _pid_ns(int(entry)) == self.pid_ns:
                        pids.append(int(entry))
                elif _session(int(entry)) == self.leader:
                    pids.append(int(entry))
        return pids

    def _memory(self) -> int:
        total = 0
        for pid in self._members():
            with contextlib.suppress(OSError, ValueError):
                total += _pss_bytes(pid)
        return total


def _pid_ns(pid: int) -> int:
    return os.stat(f"/proc/{pid}/ns/pid").st_ino


def _session(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat[stat.rindex(")") + 2 :].split()[3])  # state ppid pgrp session


def _pss_bytes(pid: int) -> int:
    """Proportional set size of ``pid`` (resident size where smaps_rollup is missing)."""
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) << 10
    except FileNotFoundError:
        pass
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE")
