"""Billing helpers shared by the nodes: ledger entries and the policy's price and bounds."""

from __future__ import annotations

import json
from typing import Any, Literal

from langchain_core.messages import AnyMessage

from podium.tools import ToolCost
from podium.tools.cost import token_bound

from .resources import Resources
from .state import LedgerEntry


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
