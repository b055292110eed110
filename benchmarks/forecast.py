"""Forecast calibration on held-out stored runs: interval coverage and median error vs naive.

History is built with a rule-based fake policy (no model server) over questions of three kinds
with varied tool use: arithmetic (1-3 calculator calls), look-ups (one LLM expert call with
varying token counts) and small talk (no tool). Every run goes through the real graph, ledger
and trajectory store. The last ``--heldout`` runs are forecast from the others; the report gives
how often the 90% interval holds the actual cost, and the median's absolute error next to the
naive forecast "mean cost of all past runs".

    nice -n 19 python benchmarks/forecast.py --runs 200 --heldout 50
"""

from __future__ import annotations

import argparse
import random
import tempfile
import zlib
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import StructuredTool

from podium.graph import Context, TrajectoryStore
from podium.graph.forecast import from_history
from podium.graph.resources import policy_override, tools_override
from podium.tools.cost import ToolCost, Usage, with_cost

TOPICS = ["France", "Japan", "Peru", "Kenya", "Norway", "Egypt", "Chile", "India", "Spain"]
CHAT = ["Say hello", "Thank you!", "How are you today?", "Good morning", "Tell me a greeting"]


def question(rng: random.Random) -> str:
    """A question of one of three kinds."""
    kind = rng.random()
    if kind < 0.4:
        a, b, c = (rng.randint(2, 999) for _ in range(3))
        return rng.choice([f"What is {a} * {b}?", f"Compute {a} * {b} + {c}.",
                           f"What is ({a} + {b}) * {c} - {a}?"])  # fmt: skip
    if kind < 0.8:
        topic = rng.choice(TOPICS)
        return rng.choice([f"What is the capital of {topic}?", f"Summarise the history of {topic}.",
                           f"Who leads {topic} today, and since when?"])  # fmt: skip
    return rng.choice(CHAT)


def tools(rng: random.Random) -> list[Any]:
    """A priced calculator and a priced LLM expert whose token use varies per call."""

    def calc(expression: str) -> tuple[str, Usage]:
        """Evaluate an arithmetic expression."""
        return "1234", Usage()

    def expert(question: str) -> tuple[str, Usage]:
        """Ask a large model."""
        long = "history" in question.lower() or "since" in question
        out = rng.randint(200, 900) if long else rng.randint(20, 120)
        return "an answer", Usage(input_tokens=rng.randint(80, 200), output_tokens=out)

    calc_tool = StructuredTool.from_function(calc, response_format="content_and_artifact")
    expert_tool = StructuredTool.from_function(expert, response_format="content_and_artifact")
    return [
        with_cost(calc_tool, ToolCost(per_call_usd=0.0004, locality="local")),
        with_cost(expert_tool, ToolCost(input_usd_per_mtok=2.0, output_usd_per_mtok=12.0,
                                        max_output_tokens=1000, locality="remote")),
    ]  # fmt: skip


class RulePolicy(BaseChatModel):
    """Calls the calculator 1-3 times for arithmetic, the expert once for look-ups, else answers."""

    seed: int = 0

    @property
    def _llm_type(self) -> str:
        return "rule-policy"

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        """The rules ignore the schemas."""
        return self

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        asked = next(str(m.content) for m in messages if m.type == "human")
        done = sum(isinstance(m, AIMessage) for m in messages)
        rng = random.Random(zlib.crc32(f"{self.seed}:{asked}".encode()))
        arithmetic = any(ch.isdigit() for ch in asked)
        plan = ["calc"] * rng.randint(1, 3) if arithmetic else []
        if any(t in asked for t in TOPICS):
            plan = ["expert"]
        if done < len(plan):
            arg = "expression" if plan[done] == "calc" else "question"
            call = {"name": plan[done], "args": {arg: asked}, "id": f"c{done}{rng.random():.6f}"}
            msg = AIMessage(content="", tool_calls=[call])
        else:
            msg = AIMessage(content="", tool_calls=[{"name": "answer", "args": {"text": "done"},
                                                     "id": f"a{done}"}])  # fmt: skip
        chars = sum(len(str(m.content)) for m in messages)
        out = 30 + 10 * done
        msg.usage_metadata = {"input_tokens": chars // 4, "output_tokens": out,
                              "total_tokens": chars // 4 + out}  # fmt: skip
        return ChatResult(generations=[ChatGeneration(message=msg)])


def build_history(n: int, db: Path, seed: int) -> list[dict[str, Any]]:
    """``n`` runs through the graph, stored in ``db``; their records, oldest first."""
    from podium.graph import graph

    rng = random.Random(seed)
    ctx = Context(policy_base_url="http://127.0.0.1:9/v1", trajectory_db=str(db), budget_usd=1.0)
    with policy_override(RulePolicy(seed=seed)), tools_override(tools(rng)):
        for _ in range(n):
            graph.invoke({"question": question(rng)}, context=ctx)
    return TrajectoryStore(db).records()


def calibrate(records: list[dict[str, Any]], heldout: int) -> dict[str, float]:
    """Coverage of the 90% interval and median errors of the held-out runs."""
    past, future = records[:-heldout], records[-heldout:]
    ctx = Context(budget_usd=1.0)
    naive = sum(r["cost_usd"] for r in past) / len(past)
    covered, err, naive_err = 0, 0.0, 0.0
    for run in future:
        f = from_history(run["question"], ctx, past)
        low, median, high = f.cost_usd
        covered += low <= run["cost_usd"] <= high
        err += abs(median - run["cost_usd"])
        naive_err += abs(naive - run["cost_usd"])
    return {
        "heldout": heldout,
        "coverage_90": covered / heldout,
        "median_abs_error_usd": err / heldout,
        "naive_abs_error_usd": naive_err / heldout,
    }


def main() -> None:
    """Build the history, forecast the held-out runs, print the calibration."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--heldout", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        records = build_history(args.runs, Path(tmp) / "t.sqlite", args.seed)
    result = calibrate(records, args.heldout)
    print(f"held-out runs            {result['heldout']}")
    print(f"90% interval coverage    {result['coverage_90']:.1%}  (must be >= 85%)")
    print(f"median |error|, forecast ${result['median_abs_error_usd']:.6f}")
    print(f"median |error|, naive    ${result['naive_abs_error_usd']:.6f}  (mean of all past runs)")


if __name__ == "__main__":
    main()
