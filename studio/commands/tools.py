"""``podium tools``: the active tool pool with its cost metadata, or why a tool is absent."""

from __future__ import annotations

import json

from rich.table import Table

from ..console import console
from .options import ConfigFile, JsonOut, LocalOnly, Profile


def tools(
    json_out: JsonOut = False,
    profile: Profile = "local",
    config: ConfigFile = "",
    local_only: LocalOnly = False,
) -> None:
    """List the active tool pool with its cost metadata."""
    from podium.tools import cost_of, pool_entries
    from podium.tools.sandbox import isolation

    sandbox = isolation()
    entries = pool_entries(profile, config=config or None, local_only=local_only)
    rows = [
        {
            "name": e.name,
            "available": e.tool is not None,
            "reason": e.reason,
            **(cost_of(e.tool).model_dump() if e.tool is not None else {}),
        }
        for e in entries
    ]
    if json_out:
        print(json.dumps({"profile": profile, "tools": rows, "sandbox": sandbox}, indent=2))
        return
    table = Table(
        "tool",
        "where",
        "price",
        "latency",
        "capability / why absent",
        title=f"profile {profile}",
        title_justify="left",
        caption="python sandbox: " + ", ".join(f"{k} {v}" for k, v in sandbox.items()),
        caption_justify="left",
    )
    for e in entries:
        if e.tool is None:
            table.add_row(e.name, "-", "-", "-", f"[dim]unavailable: {e.reason}[/dim]")
        else:
            c = cost_of(e.tool)
            table.add_row(
                e.name,
                c.locality,
                c.price_text(),
                f"~{c.expected_latency_s:g}s",
                c.capability,
            )
    console.print(table)
