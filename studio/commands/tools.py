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
    """List the active tool pool with its cost metadata, and the policy's adapter."""
    from podium.tools import cost_of, load_config, pool_entries
    from podium.tools.adapters import active_adapter
    from podium.tools.sandbox import isolation

    sandbox = isolation()
    entries = pool_entries(profile, config=config or None, local_only=local_only)
    adapter = active_adapter(load_config(config or None))
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
        info = {"profile": profile, "tools": rows, "sandbox": sandbox, "adapter": adapter}
        print(json.dumps(info, indent=2))
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
    if adapter is not None:
        console.print(f"policy adapter: {adapter['path']} (sha256 {adapter['sha256']})")
    else:
        console.print("policy adapter: none (the base model)")
