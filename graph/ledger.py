"""Billing helpers shared by the nodes: ledger entries and the policy's price and bounds."""

from __future__ import annotations

import json
import logging
from typing import Any, Literal

from langchain_core.messages import AnyMessage

from podium.tools import ToolCost
from podium.tools.cost import token_bound, trusted_seconds, trusted_tokens

from .resources import Resources
from .state import LedgerEntry

logger = logging.getLogger(__name__)
OVER_WORST_CASE = (
    "%s reported usage (%d in, %d out tokens) priced $%.6g, over the $%.6g worst case it was "
    "admitted under: billed the worst case (does the endpoint honour max_tokens?)"
)
UNTRUSTED_USAGE = "%s reported no valid usage (%s): billed its $%.6g worst case"


def entry(kind: Literal["policy", "tool"], name: str, **values: Any) -> LedgerEntry:
    """A ledger entry with zero defaults for what ``values`` does not set."""
    base = LedgerEntry(
        kind=kind,
        name=name,
        turn=0,
        call_id="",
        input_tokens=0,
        output_tokens=0,
        seconds=0.0,
        cost_usd=0.0,
        ok=True,
        error="",
    )
    return LedgerEntry(**{**base, **values})  # type: ignore[typeddict-item]


def bill(
    name: str,
    cost: ToolCost,
    worst_usd: float,
    input_tokens: int = 0,
    output_tokens: int = 0,
    seconds: float = 0.0,
) -> float:
    """Dollars of one step: its price, but never more than the worst case it was admitted at.

    The guard admits a step when its worst case fits the budget, with output bounded by the
    ``max_tokens`` sent with the request. A provider enforcing that cap cannot bill past it,
    so usage reported beyond it is the endpoint's error (or a usage report that disagrees with
    the request): the entry keeps the reported tokens, the ledger bills the admitted bound,
    and a warning names the step. This keeps the budget a hard cap, as seconds over a tool's
    ``max_seconds`` are billed at the limit.
    """
    price = cost.price(input_tokens, output_tokens, seconds)
    if price <= worst_usd:
        return price
    logger.warning(OVER_WORST_CASE, name, input_tokens, output_tokens, price, worst_usd)
    return worst_usd


def bill_report(
    name: str, cost: ToolCost, worst_usd: float, usage: Any, seconds: float
) -> tuple[int, int, float]:
    """``(input_tokens, output_tokens, dollars)`` of a step from its untrusted usage report.

    Counts are checked by :func:`podium.tools.cost.trusted_tokens`, seconds by
    ``trusted_seconds`` (``seconds``, the measured wall time, when none is reported). A
    token-priced step without valid counts, or with invalid seconds, is billed ``worst_usd``:
    what the guard admitted it at, so a lying or lost report can neither refund the budget
    nor spend past it. A failed call its tool marks ``unbilled`` costs nothing.
    """
    report = usage if isinstance(usage, dict) else {}
    if report.get("unbilled") is True and report.get("error"):
        return 0, 0, 0.0
    tokens = trusted_tokens(report)
    wall = trusted_seconds(report.get("compute_seconds", seconds))
    if (tokens is None and cost.token_priced) or wall is None:
        shown = {k: report.get(k) for k in ("input_tokens", "output_tokens", "compute_seconds")}
        logger.warning(UNTRUSTED_USAGE, name, shown, worst_usd)
        return (*(tokens or (0, 0)), worst_usd)
    in_tok, out_tok = tokens or (0, 0)
    return in_tok, out_tok, bill(name, cost, worst_usd, in_tok, out_tok, wall)


def policy_cost(res: Resources) -> ToolCost:
    """The policy billed like a token-priced tool: one formula for every dollar."""
    return ToolCost(
        input_usd_per_mtok=res.policy_price.input,
        output_usd_per_mtok=res.policy_price.output,
        max_output_tokens=res.max_tokens,
        price_source=res.policy_price.source,
    )


def prompt_bound(prompt: list[AnyMessage], tools: dict[str, Any]) -> int:
    """Upper bound on the prompt tokens of ``prompt`` with ``tools`` bound."""
    schemas = json.dumps([t.tool_call_schema.model_json_schema() for t in tools.values()])
    text = "".join(str(m.content) + json.dumps(getattr(m, "tool_calls", [])) for m in prompt)
    return token_bound(text + schemas + "".join(t.description for t in tools.values()))
