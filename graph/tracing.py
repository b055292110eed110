"""Costs in LangSmith: each node's run carries the tokens and dollars of what it billed."""

from __future__ import annotations

from langsmith.run_helpers import get_current_run_tree

from .state import LedgerEntry


def report_cost(entries: list[LedgerEntry]) -> None:
    """Attach ``usage_metadata`` with costs to the current traced run, if tracing is on.

    LangSmith prices LLM runs only for models in its price map; local models and tools are
    not there, so podium sends the dollars it computed (shown under "Other" costs). Tokens
    stay on the child LLM runs, which report them already; repeating them here would count
    them twice in the trace's totals.
    """
    run = get_current_run_tree()
    if run is None or not entries:
        return
    run.set(
        usage_metadata={
            "input_tokens": 0,
            "output_tokens": 0,
            "total_tokens": 0,
            "total_cost": sum(e["cost_usd"] for e in entries),
        }
    )
