"""State of a podium run: the conversation, the cost/latency ledger and the turn count."""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal, TypedDict

from langchain_core.messages import AnyMessage
from langgraph.graph import add_messages

StopReason = Literal["answer", "budget", "max_turns", "error"]


class LedgerEntry(TypedDict):
    """One billed step: a policy turn or a tool call."""

    kind: Literal["policy", "tool"]
    name: str
    turn: int
    call_id: str
    input_tokens: int
    output_tokens: int
    seconds: float
    cost_usd: float
    ok: bool
    error: str


class PendingCall(TypedDict):
    """A tool call the guard admitted and the ledger has not settled yet.

    Counted at its worst case until its result is billed; ``lease`` tells the process that
    admitted it from one resuming a run killed while the call was in flight.
    """

    call_id: str
    name: str
    worst_usd: float
    lease: str


@dataclass(kw_only=True)
class InputState:
    """What a caller gives a run."""

    question: str = field(default="", metadata={"description": "The user's question or task."})
    preference: str = field(
        default="", metadata={"description": "Tool preference for this run (overrides context)."}
    )
    trajectory_id: str = field(
        default="",
        metadata={
            "description": "Id of this run's stored trajectory (default: a fresh one); a retried "
            "run given the same id replaces its record instead of adding a second one."
        },
    )


@dataclass(kw_only=True)
class State(InputState):
    """Everything a run accumulates; the ledger's sum is the cost so far."""

    messages: Annotated[list[AnyMessage], add_messages] = field(default_factory=list)
    ledger: Annotated[list[LedgerEntry], operator.add] = field(default_factory=list)
    pending: list[PendingCall] = field(default_factory=list)
    turns: int = 0
    malformed_calls: int = 0
    force_final: StopReason | None = None
    stopped_by: StopReason | None = None
    answer: str = ""
    cost_usd: float = 0.0
    latency_s: float = 0.0
    forecast: dict[str, Any] | None = None  # set before the first turn when Context.forecast
    store_error: str = ""  # why the trajectory could not be stored; the answer stands
    started_at: float = 0.0
    run_ledger_start: int = 0
    run_turn_start: int = 0
    run_message_start: int = 0

    def run_ledger(self) -> list[LedgerEntry]:
        """The ledger of the current run (a thread holds one run per question)."""
        return self.ledger[self.run_ledger_start :]

    def run_turns(self) -> int:
        """Policy turns of the current run."""
        return self.turns - self.run_turn_start


def spent(ledger: list[LedgerEntry]) -> float:
    """Dollars spent so far."""
    return sum(e["cost_usd"] for e in ledger)


def with_cost(state: State, update: dict[str, Any]) -> dict[str, Any]:
    """``update`` plus the run's cost so far (``cost_usd``), so a state shows it at every step.

    Pending calls count at their worst case: a checkpoint taken while they are in flight
    shows what they may cost.
    """
    start = update.get("run_ledger_start", state.run_ledger_start)
    before = state.ledger[start:]
    pending = sum(p["worst_usd"] for p in update.get("pending", state.pending))
    return update | {"cost_usd": spent(before) + spent(update.get("ledger", [])) + pending}
