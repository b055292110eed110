"""Tool pools: the profiles of the config turned into LangChain tools with cost metadata."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from langchain_core.tools import BaseTool

from .config import ConfigError, PodiumConfig, load_config
from .cost import cost_of
from .experts import expert_tool, unavailable_reason
from .pricing import Prices
from .python_tool import python_tool
from .search import (
    local_search_tool,
    local_search_unavailable,
    web_search_tool,
    web_search_unavailable,
)

UNKNOWN_PROFILE = "unknown profile {name!r}: choose one of {known} (or define [profiles.{name}])"
UNKNOWN_TOOL = (
    "profile {profile!r} names unknown tool {tool!r}: builtins are {builtins}, "
    "or add [experts.{tool}]"
)


@dataclass(frozen=True)
class PoolEntry:
    """One tool of a profile: built, or the reason it is not offered."""

    name: str
    tool: BaseTool | None
    reason: str = ""


def _builtins(config: PodiumConfig, prices: Prices) -> dict[str, Callable[[], BaseTool]]:
    return {
        "python": lambda: python_tool(config.python, prices),
        "local_search": lambda: local_search_tool(config.local_search, prices),
        "web_search": lambda: web_search_tool(prices),
    }


def _builtin_unavailable(name: str) -> str | None:
    """Why builtin ``name`` cannot be offered now (a missing key or extra), or None."""
    if name == "web_search":
        return web_search_unavailable()
    if name == "local_search":
        return local_search_unavailable()
    return None


def _as_config(config: PodiumConfig | str | Path | None) -> PodiumConfig:
    return config if isinstance(config, PodiumConfig) else load_config(config)


def pool_entries(
    profile: str = "local",
    *,
    config: PodiumConfig | str | Path | None = None,
    local_only: bool = False,
) -> list[PoolEntry]:
    """Every tool the profile names, built where available, with reasons where not.

    Raises:
        ConfigError: unknown profile or tool name, or a price that cannot be found.
    """
    config = _as_config(config)
    if profile not in config.profiles:
        known = ", ".join(sorted(config.profiles))
        raise ConfigError(UNKNOWN_PROFILE.format(name=profile, known=known))
    prices = Prices(config)
    builtins = _builtins(config, prices)
    entries = []
    for name in config.profiles[profile].tools:
        if name in builtins:
            reason = _builtin_unavailable(name)
            tool = None if reason else builtins[name]()
        elif name in config.experts:
            expert = config.experts[name]
            reason = unavailable_reason(expert)
            tool = None if reason else expert_tool(name, expert, prices, config.policy.adapter)
        else:
            builtin_names = ", ".join(builtins)
            raise ConfigError(
                UNKNOWN_TOOL.format(profile=profile, tool=name, builtins=builtin_names)
            )
        if tool is not None and local_only and cost_of(tool).locality != "local":
            tool, reason = None, "remote tool excluded by --local-only"
        entries.append(PoolEntry(name, tool, reason or ""))
    return entries


def load_pool(
    profile: str = "local",
    *,
    config: PodiumConfig | str | Path | None = None,
    local_only: bool = False,
) -> list[BaseTool]:
    """The available tools of ``profile``, each with :class:`~podium.tools.cost.ToolCost` metadata.

    Args:
        profile: a profile of the config (``local``, ``hosted`` or user-defined).
        config: a loaded config, a path to a user config file, or None for the default lookup.
        local_only: drop every tool that is not local.
    """
    entries = pool_entries(profile, config=config, local_only=local_only)
    return [e.tool for e in entries if e.tool is not None]
