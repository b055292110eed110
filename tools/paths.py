"""Where podium keeps its files, and how it writes them without leaving half-written ones."""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import UserError


class PathError(UserError, ValueError):
    """A file or directory podium needs cannot be used as given; the message names the fix."""


def cache_dir(*parts: str) -> Path:
    """A directory under podium's cache (``$PODIUM_CACHE_DIR`` or ``~/.cache/podium``), created."""
    root = Path(os.environ.get("PODIUM_CACHE_DIR") or Path.home() / ".cache" / "podium")
    path = root.joinpath(*parts)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PathError(
            f"cache directory {path} cannot be created ({exc.strerror or exc}): set "
            "$PODIUM_CACHE_DIR to a writable directory"
        ) from None
    return path


def writable_file(path: Path, what: str, fix: str) -> Path:
    """``path`` if a file can be written there; else a one-line :class:`PathError`.

    Catches the mistakes SQLite and ``open`` report only as a traceback deep in a run: a
    directory given as a file, or a parent that is a file or cannot be created.
    """
    if path.is_dir():
        raise PathError(f"{what} {path} is a directory: {fix}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise PathError(f"{what} {path} cannot be created ({exc.strerror or exc}): {fix}") from None
    return path


def _new_file_mode() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it; restored at once
    os.umask(mask)
    return 0o666 & ~mask


_NEW_FILE_MODE = _new_file_mode()


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` only on success.

    Readers never see a half-written ``target``: on any error the temporary file is removed
    and ``target`` keeps its previous content (or stays absent).
    """
    writable_file(target, "output file", "pass a file path")
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        if os.path.isfile(tmp):  # mkstemp makes 0600; give what a plain open() would have
            mode = stat.S_IMODE(target.stat().st_mode) if target.is_file() else _NEW_FILE_MODE
            os.chmod(tmp, mode)
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
