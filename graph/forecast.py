"""Cost forecasts: what a question will cost, before anything is spent, from similar past runs.

The store's runs under the same policy model and pool settings are ranked by how close their
question is to this one (MiniLM embeddings, cosine); the nearest ones give a median and a 90%
interval of cost and latency, and the tool mix. The interval is the distribution-free one of
order statistics: with ``k`` neighbours, the ranks ``floor(0.05(k+1))`` and
``ceil(0.95(k+1))`` bracket a new exchangeable run with probability >= 90%. Past tool calls
are re-priced with today's cost model of each tool when the pool is given. With fewer than
:data:`MIN_HISTORY` comparable runs the forecast says so and gives the budget guard's bound:
no run spends more than its budget.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
from langchain_core.tools import BaseTool
from langgraph.runtime import Runtime

from podium.tools.cost import cost_of

from .context import Context, context_of
from .resources import resolve
from .state import State
from .trajectory import FORK_KEY, TrajectoryStore

MIN_HISTORY = 5
NEIGHBOURS = 20
MAX_CACHED = 20_000
_VECTORS: dict[str, np.ndarray] = {}  # question -> embedding: a store's questions embed once
_SAME = ("profile", "policy_model", "local_only", "environment")


@dataclass
class Forecast:
    """A run's predicted cost (dollars) and latency (seconds): median and 90% interval."""

    question: str
    history: int  # comparable past runs
    neighbours: int  # of them, the ones the forecast uses
    enough: bool
    budget_usd: float
    cost_usd: list[float | None] = field(default_factory=list)  # [low, median, high]
    latency_s: list[float | None] = field(default_factory=list)
    tool_mix: dict[str, float] = field(default_factory=dict)  # mean calls per run
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return asdict(self)

    @property
    def high_usd(self) -> float:
        """The 90% bound on cost (the budget when history is too thin)."""
        high = self.cost_usd[2] if self.enough else None
        return high if high is not None else self.budget_usd


def comparable(
    records: list[dict[str, Any]], ctx: Context, pool: list[str] | None = None
) -> list[dict[str, Any]]:
    """Finished runs made under ``ctx``'s policy model and pool settings (not replay forks).

    With ``pool`` (tool names), a run that recorded another pool does not count either.
    """
    want = {k: getattr(ctx, k) for k in _SAME}
    return [
        r
        for r in records
        if r.get("stopped_by") != "error"
        and FORK_KEY not in r
        and all((r.get("context") or {}).get(k) == v for k, v in want.items())
        and (pool is None or r.get("tools") in (None, pool))
    ]


def repriced_cost(record: Mapping[str, Any], tools: Mapping[str, BaseTool] | None) -> float:
    """The record's dollars with each tool call priced by today's cost model of that tool."""
    total = 0.0
    for e in record.get("ledger", []):
        tool = (tools or {}).get(e["name"]) if e["kind"] == "tool" else None
        if tool is None:
            total += e["cost_usd"]
        else:
            total += cost_of(tool).price(e["input_tokens"], e["output_tokens"], e["seconds"])
    return total


def interval(values: list[float]) -> list[float | None]:
    """``[low, median, high]``: the order-statistic 90% interval and the median."""
    x = sorted(values)
    k = len(x)
    lo = max(1, math.floor(0.05 * (k + 1)))
    hi = min(k, math.ceil(0.95 * (k + 1)))
    return [x[lo - 1], float(np.median(x)), x[hi - 1]]


def nearest(question: str, questions: list[str], k: int) -> list[int]:
    """Indices of the ``k`` questions closest to ``question`` (MiniLM, cosine)."""
    from podium.tools.retrieval import embed_texts

    missing = [q for q in dict.fromkeys([question, *questions]) if q not in _VECTORS]
    if missing:
        if len(_VECTORS) > MAX_CACHED:
            _VECTORS.clear()
        _VECTORS.update(zip(missing, embed_texts(missing), strict=True))
    scores = np.stack([_VECTORS[q] for q in questions]) @ _VECTORS[question]
    return [int(i) for i in np.argsort(-scores, kind="stable")[:k]]


def from_history(
    question: str,
    ctx: Context,
    records: list[dict[str, Any]],
    tools: Mapping[str, BaseTool] | None = None,
    k: int = NEIGHBOURS,
) -> Forecast:
    """The forecast of ``question`` from ``records`` (already loaded)."""
    history = comparable(records, ctx, sorted(tools) if tools is not None else None)
    base = Forecast(question, len(history), 0, False, ctx.budget_usd)
    if len(history) < MIN_HISTORY:
        base.note = (
            f"too little history: {len(history)} comparable past runs (need {MIN_HISTORY}); "
            f"the budget guard's bound is ${ctx.budget_usd:.6g}"
        )
        base.cost_usd = [0.0, None, ctx.budget_usd]
        return base
    picked = [history[i] for i in nearest(question, [r["question"] for r in history], k)]
    calls = Counter(e["name"] for r in picked for e in r.get("ledger", []) if e["kind"] == "tool")
    base.neighbours, base.enough = len(picked), True
    base.cost_usd = interval([repriced_cost(r, tools) for r in picked])
    base.latency_s = interval([r.get("latency_s", 0.0) for r in picked])
    base.tool_mix = {t: n / len(picked) for t, n in sorted(calls.items())}
    base.note = f"from the {len(picked)} most similar of {len(history)} comparable past runs"
    return base


def forecast(
    question: str,
    ctx: Context,
    store: TrajectoryStore | None = None,
    tools: Mapping[str, BaseTool] | None = None,
) -> Forecast:
    """Predict the cost, latency and tool mix of asking ``question`` under ``ctx``.

    Spends nothing: it reads the trajectory store (``ctx.trajectory_db``) and, when there is
    enough history, embeds questions with the packaged MiniLM.
    """
    store = store or TrajectoryStore(ctx.trajectory_db or None)
    return from_history(question, ctx, store.records(), tools)


def forecast_node(state: State, runtime: Runtime[Context]) -> dict[str, Any]:
    """Graph node: the run's forecast in the state, before the policy's first turn (Studio)."""
    ctx = context_of(runtime)
    return {"forecast": forecast(state.question, ctx, tools=resolve(ctx).tools).as_dict()}


def route_start(state: State, runtime: Runtime[Context]) -> Literal["forecast", "policy"]:
    """From START: through the forecast node when the context asks for one."""
    return "forecast" if context_of(runtime).forecast and state.question else "policy"
