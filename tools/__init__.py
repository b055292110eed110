"""podium.tools: LangChain tools with cost metadata, their prices, pools and sandbox."""

from .config import ConfigError, PodiumConfig, load_config
from .cost import COST_KEY, ToolCost, Usage, cost_of
from .errors import UserError
from .pool import PoolEntry, load_pool, pool_entries

__all__ = [
    "COST_KEY",
    "ConfigError",
    "PodiumConfig",
    "PoolEntry",
    "ToolCost",
    "Usage",
    "UserError",
    "cost_of",
    "load_config",
    "load_pool",
    "pool_entries",
]
