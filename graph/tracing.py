"""Costs in LangSmith: every dollar the ledger bills shows on exactly one traced run.

The policy's model run (``ChatOpenAI``) carries its tokens and dollars itself: the chat model
adds ``input_cost``, ``output_cost`` and ``total_cost`` to the reply's ``usage_metadata``
(:class:`podium.tools.endpoints.BilledChatOpenAI`), beside the ``ls_provider`` and
``ls_model_name`` metadata LangChain sends, so LangSmith splits them as for a hosted model.
Tool calls are priced by the ledger after their tool run has closed, so the node that ran
them (``execute``) carries their ``total_cost`` (LangSmith's "Other" costs).
"""

from __future__ import annotations

from langsmith.run_helpers import get_current_run_tree

from .state import LedgerEntry


def report_cost(entries: list[LedgerEntry], shown_usd: float = 0.0) -> None:
    """Attach the dollars of ``entries`` not already on a child model run to the current run.

    ``shown_usd`` is what the step's model run reports itself (zero for tools); the rest (a
    worst case billed for a lost or invalid usage report, a tool's price) goes on the node's
    run. Tokens stay on the model runs: repeating them would count them twice in the totals.
    """
    run = get_current_run_tree()
    rest = sum(e["cost_usd"] for e in entries) - shown_usd
    if run is None or not entries or rest <= 0:
        return
    run.set(
        usage_metadata={
            "input_tokens": 0,
            "output_tokens": 0,
            "total_tokens": 0,
            "total_cost": rest,
        }
    )
