"""Typed cost metadata carried by every podium tool, and the one formula that prices a call."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, Literal, TypedDict

from langchain_core.tools import BaseTool
from pydantic import BaseModel, ConfigDict, Field

COST_KEY = "podium_cost"
"""Key of the :class:`ToolCost` inside ``tool.metadata``."""


class Usage(TypedDict, total=False):
    """What one tool call consumed, reported by the tool as its artifact.

    Tools built with ``response_format="content_and_artifact"`` return this dict as the
    artifact. Counts are untrusted input (:func:`trusted_tokens`): a tool with token prices
    that reports no valid ``input_tokens`` and ``output_tokens`` is billed its worst case (a
    lost reply is reported that way); seconds default to wall time. ``error`` marks a call
    that ran (and may be billed) but failed; ``unbilled`` one that no provider can bill (the
    request never left this host, or the provider refused it with an error status), set by
    podium's own code from the exception, never from what an endpoint reported.
    """

    input_tokens: int
    output_tokens: int
    compute_seconds: float
    error: str
    unbilled: bool


class ToolCost(BaseModel):
    """How a tool is priced, how long it takes and where it runs.

    Stored in ``tool.metadata[COST_KEY]``; the policy reads ``capability`` and the price
    summary in the tool description, the ledger uses :meth:`price` for every call.
    """

    model_config = ConfigDict(frozen=True)

    per_call_usd: float = Field(0.0, ge=0, description="Flat price of one call.")
    input_usd_per_mtok: float = Field(0.0, ge=0, description="Price per million input tokens.")
    output_usd_per_mtok: float = Field(0.0, ge=0, description="Price per million output tokens.")
    per_second_usd: float = Field(0.0, ge=0, description="Price per second of compute.")
    expected_latency_s: float = Field(1.0, ge=0, description="Typical wall time of one call.")
    max_seconds: float | None = Field(
        None, gt=0, description="Hard time limit of one call, if the tool enforces one."
    )
    max_output_tokens: int | None = Field(
        None, gt=0, description="Hard cap on output tokens, for token-priced tools."
    )
    prompt_tokens: int = Field(
        0, ge=0, description="Input tokens the tool adds to every call (its own prompt)."
    )
    locality: Literal["local", "remote"] = Field(
        "local", description="'local' runs on this machine; 'remote' calls a hosted API."
    )
    sees_question: bool = Field(
        False,
        description="The graph hands the tool the user's question as its ``task`` argument "
        "(LLM experts); the budget guard counts its tokens.",
    )
    capability: str = Field("", description="What the tool is good at, in the policy's words.")
    price_source: str = Field(
        "", description="Where the prices came from (table key or genai-prices)."
    )

    def price(
        self, input_tokens: float = 0, output_tokens: float = 0, seconds: float = 0.0
    ) -> float:
        """Dollar cost of one call that used these tokens and seconds.

        Seconds are billed up to ``max_seconds``: a call the tool killed at its limit costs
        the limit, which keeps :meth:`worst_case` a true bound.
        """
        if self.max_seconds is not None:
            seconds = min(seconds, self.max_seconds)
        return (
            self.per_call_usd
            + input_tokens * self.input_usd_per_mtok / 1e6
            + output_tokens * self.output_usd_per_mtok / 1e6
            + seconds * self.per_second_usd
        )

    @property
    def token_priced(self) -> bool:
        """Whether the price depends on reported token counts."""
        return bool(self.input_usd_per_mtok or self.output_usd_per_mtok)

    def worst_case(self, input_tokens: int = 0) -> float:
        """Upper bound on the cost of one call with ``input_tokens`` of input.

        Infinite when the tool has a per-second or per-output-token price and no cap on
        either: such a call could cost anything, so a budget guard must not allow it.
        """
        seconds = 0.0
        if self.per_second_usd:
            seconds = self.max_seconds if self.max_seconds is not None else math.inf
        out: float = 0
        if self.output_usd_per_mtok:
            out = self.max_output_tokens if self.max_output_tokens is not None else math.inf
        return self.price(input_tokens + self.prompt_tokens, out, seconds)

    def price_text(self) -> str:
        """The prices in words, e.g. ``$1.25 in / $10 out per M tokens``."""
        parts = []
        if self.per_call_usd:
            parts.append(f"${self.per_call_usd:g}/call")
        if self.input_usd_per_mtok or self.output_usd_per_mtok:
            parts.append(
                f"${self.input_usd_per_mtok:g} in / ${self.output_usd_per_mtok:g} out per M tokens"
            )
        if self.per_second_usd:
            parts.append(f"${self.per_second_usd:g}/s")
        return ", ".join(parts) or "free"

    def summary(self) -> str:
        """One line a person or the policy reads: where it runs and what it costs."""
        return f"{self.locality}, {self.price_text()}, ~{self.expected_latency_s:g}s"


def _count(value: Any) -> int | None:
    """``value`` as a token count, or ``None`` when it is not a non-negative finite integer."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not (math.isfinite(value) and value.is_integer()):
        return None
    return int(value) if value >= 0 else None


def usage_costs(cost: ToolCost, input_tokens: int, output_tokens: int) -> dict[str, float]:
    """The dollars of a token-priced call as LangSmith's ``usage_metadata`` cost fields.

    ``total_cost`` is :meth:`ToolCost.price`, the ledger's formula; input and output are its
    token parts, so LangSmith splits a local model's cost as it does a hosted one's.
    """
    return {
        "input_cost": input_tokens * cost.input_usd_per_mtok / 1e6,
        "output_cost": output_tokens * cost.output_usd_per_mtok / 1e6,
        "total_cost": cost.price(input_tokens, output_tokens),
    }


def trusted_tokens(usage: Mapping[str, Any] | None) -> tuple[int, int] | None:
    """``(input_tokens, output_tokens)`` of a usage report, or ``None`` if it cannot be billed.

    Usage comes from endpoints and tools, so it is untrusted input: a negative count would
    refund the budget and NaN would poison the ledger. Both counts must be present,
    non-negative, finite integers; otherwise the caller bills the step's admitted worst case.
    Counts above the worst case are capped by the ledger (``graph.ledger.bill``).
    """
    if not isinstance(usage, Mapping):
        return None
    counts = (_count(usage.get("input_tokens")), _count(usage.get("output_tokens")))
    if counts[0] is None or counts[1] is None:
        return None
    return counts[0], counts[1]


def trusted_seconds(value: Any) -> float | None:
    """Reported compute seconds, or ``None`` when negative, NaN, infinite or not a number."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None


def cost_of(tool: BaseTool) -> ToolCost:
    """The :class:`ToolCost` of ``tool``.

    Raises:
        ValueError: if the tool carries no podium cost metadata.
    """
    cost = (tool.metadata or {}).get(COST_KEY)
    if not isinstance(cost, ToolCost):
        raise ValueError(f"tool {tool.name!r} has no cost metadata; build it with podium.tools")
    return cost


def with_cost(tool: BaseTool, cost: ToolCost) -> BaseTool:
    """Attach ``cost`` to ``tool`` and append the price summary to its description."""
    tool.metadata = {**(tool.metadata or {}), COST_KEY: cost}
    tool.description = f"{tool.description.rstrip()} [{cost.summary()}]"
    return tool


PROMPT_OVERHEAD_TOKENS = 64
"""Tokens a chat template may add around a request (roles, special tokens, system text)."""


def token_bound(text: str) -> int:
    """An upper bound on the tokens of ``text`` for byte-level BPE tokenizers.

    Every token of such a tokenizer spells at least one byte, so the UTF-8 length bounds the
    count; the overhead covers template tokens. Used where a budget must be a hard cap.
    """
    return len(text.encode()) + PROMPT_OVERHEAD_TOKENS
