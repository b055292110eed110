"""``podium view``: a self-contained HTML page of one trajectory, opened in a browser."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from .options import UsageError


def view(
    trajectory_id: Annotated[str | None, typer.Argument(help="Trajectory id.")] = None,
    latest: Annotated[bool, typer.Option("--latest", help="The most recent run.")] = False,
    out: Annotated[Path | None, typer.Option(help="Where to write the HTML page.")] = None,
    db: Annotated[str, typer.Option(help="Trajectory SQLite file (default: cache).")] = "",
    no_open: Annotated[bool, typer.Option("--no-open", help="Do not open a browser.")] = False,
) -> None:
    """Write (and open) a self-contained HTML page of one trajectory."""
    from ..reports import find_record, open_page, write_view

    if (trajectory_id is None) == (not latest):
        raise UsageError("give a TRAJECTORY_ID or --latest (one of them)")
    record = find_record(None if latest else trajectory_id, db or None)
    path = write_view(record, out)
    print(path)
    if not no_open:
        open_page(path)
