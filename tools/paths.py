"""Where podium keeps its files, and how it writes them without leaving half-written ones."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def cache_dir(*parts: str) -> Path:
    """A directory under podium's cache (``$PODIUM_CACHE_DIR`` or ``~/.cache/podium``), created."""
    root = Path(os.environ.get("PODIUM_CACHE_DIR") or Path.home() / ".cache" / "podium")
    path = root.joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


@contextlib.contextmanager
def atomic_path(target: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` only on success.

    Readers never see a half-written ``target``: on any error the temporary file is removed
    and ``target`` keeps its previous content (or stays absent).
    """
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
