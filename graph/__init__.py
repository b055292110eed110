"""podium.graph: the orchestrator's LangGraph state graph, its state, context and record."""

from .context import Context, ContextError
from .forecast import Forecast, forecast
from .graph import build_graph, graph
from .state import InputState, LedgerEntry, State
from .trajectory import TrajectoryStore

__all__ = [
    "Context",
    "ContextError",
    "Forecast",
    "InputState",
    "LedgerEntry",
    "State",
    "TrajectoryStore",
    "build_graph",
    "forecast",
    "graph",
]
