"""The jail's seccomp filter: a classic BPF program, assembled here, loaded by bwrap.

Runs in the jail share the host kernel. Three parts of it outlive a run or cross between
runs without a namespace of their own, so the filter refuses them (``EPERM``):

* the kernel keyring (``add_key``, ``keyctl``, ``request_key``): all runs of one uid share
  a user keyring that outlives podium, so run 1 could leave a secret for run 2;
* new namespaces (``unshare``, ``setns``, ``clone`` with ``CLONE_NEW*``; ``clone3``, whose
  flags a filter cannot read, answers ``ENOSYS`` and libc falls back to ``clone``): a user
  namespace would give the model code capabilities over fresh kernel surface;
* ``io_uring``, ``bpf``, ``userfaultfd``, ``perf_event_open`` and the mount calls: kernel
  surface no notebook cell needs, and a frequent source of privilege escalations.

libseccomp's own Python binding is on neither PyPI nor this venv (only Debian's system
Python has it), and the program is 50
instructions: it is built with ``struct``. Other architectures get no filter (reported by
:func:`filter_available`).
"""

from __future__ import annotations

import errno
import os
import platform
import struct

# BPF instruction classes and fields (linux/filter.h, linux/bpf_common.h).
_LD_W_ABS = 0x00 | 0x00 | 0x20  # BPF_LD | BPF_W | BPF_ABS
_JEQ_K = 0x05 | 0x10 | 0x00  # BPF_JMP | BPF_JEQ | BPF_K
_JGE_K = 0x05 | 0x30 | 0x00  # BPF_JMP | BPF_JGE | BPF_K
_JSET_K = 0x05 | 0x40 | 0x00  # BPF_JMP | BPF_JSET | BPF_K
_RET_K = 0x06 | 0x00  # BPF_RET | BPF_K
_RET_ALLOW = 0x7FFF0000  # SECCOMP_RET_ALLOW
_RET_ERRNO = 0x00050000  # SECCOMP_RET_ERRNO | errno
_NR, _ARCH, _ARG0 = 0, 4, 16  # offsets in struct seccomp_data (arg0's low word on LE)
_X32_BIT = 0x40000000
_CLONE_NEW = 0x00020000 | 0x02000000 | 0x04000000 | 0x08000000  # NS, CGROUP, UTS, IPC
_CLONE_NEW |= 0x10000000 | 0x20000000 | 0x40000000 | 0x00000080  # USER, PID, NET, TIME

# name -> syscall number, per architecture (asm/unistd_64.h; asm-generic/unistd.h).
_DENIED = (
    *("add_key", "request_key", "keyctl"),  # the kernel keyring
    *("unshare", "setns"),  # namespaces (clone's flags are checked apart)
    *("io_uring_setup", "io_uring_enter", "io_uring_register"),
    *("bpf", "userfaultfd", "perf_event_open"),
    *("mount", "umount2", "pivot_root", "open_tree", "move_mount"),
    *("fsopen", "fsconfig", "fsmount", "fspick"),
)
_ARCHES: dict[str, tuple[int, dict[str, int]]] = {
    "x86_64": (
        0xC000003E,  # AUDIT_ARCH_X86_64
        {
            "add_key": 248, "request_key": 249, "keyctl": 250, "unshare": 272, "setns": 308,
            "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
            "bpf": 321, "userfaultfd": 323, "perf_event_open": 298, "mount": 165,
            "umount2": 166, "pivot_root": 155, "open_tree": 428, "move_mount": 429,
            "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433,
            "clone": 56, "clone3": 435,
        },
    ),
    "aarch64": (
        0xC00000B7,  # AUDIT_ARCH_AARCH64
        {
            "add_key": 217, "request_key": 218, "keyctl": 219, "unshare": 97, "setns": 268,
            "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427,
            "bpf": 280, "userfaultfd": 282, "perf_event_open": 241, "mount": 40,
            "umount2": 39, "pivot_root": 41, "open_tree": 428, "move_mount": 429,
            "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433,
            "clone": 220, "clone3": 435,
        },
    ),
}  # fmt: skip


def _ins(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    """One ``struct sock_filter``."""
    return struct.pack("=HBBI", code, jt, jf, k)


def filter_available(machine: str | None = None) -> bool:
    """Whether a filter exists for this CPU architecture."""
    return (machine or platform.machine()) in _ARCHES


def program(machine: str | None = None) -> bytes:
    """The filter for ``machine`` (this one by default), as bwrap's ``--seccomp`` reads it.

    Raises:
        ValueError: no syscall table for the architecture.
    """
    machine = machine or platform.machine()
    if machine not in _ARCHES:
        raise ValueError(f"no seccomp filter for {machine}")
    audit_arch, nr = _ARCHES[machine]
    deny, enosys = _RET_ERRNO | errno.EPERM, _RET_ERRNO | errno.ENOSYS
    code = [_ins(_LD_W_ABS, _ARCH), _ins(_JEQ_K, audit_arch, 1, 0), _ins(_RET_K, deny)]
    code.append(_ins(_LD_W_ABS, _NR))
    if machine == "x86_64":  # the x32 ABI numbers the same calls differently
        code += [_ins(_JGE_K, _X32_BIT, 0, 1), _ins(_RET_K, deny)]
    for name in _DENIED:
        code += [_ins(_JEQ_K, nr[name], 0, 1), _ins(_RET_K, deny)]
    code += [_ins(_JEQ_K, nr["clone3"], 0, 1), _ins(_RET_K, enosys)]
    code += [
        _ins(_JEQ_K, nr["clone"], 0, 3),
        _ins(_LD_W_ABS, _ARG0),
        _ins(_JSET_K, _CLONE_NEW, 0, 1),
        _ins(_RET_K, deny),
        _ins(_RET_K, _RET_ALLOW),
    ]
    return b"".join(code)


def program_fd() -> int:
    """A file descriptor holding :func:`program` from its start, for ``bwrap --seccomp``.

    The caller passes it to bwrap (``pass_fds``) and closes it once bwrap has started.
    """
    fd = os.memfd_create("podium-seccomp", os.MFD_CLOEXEC)
    os.write(fd, program())
    os.lseek(fd, 0, os.SEEK_SET)
    return fd
