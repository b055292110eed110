"""Fixtures of the evaluation tests: a three-question ``toy`` suite and experts that know it."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from langchain_core.tools import BaseTool, StructuredTool

from podium.tools.cost import ToolCost, Usage, with_cost
from podium.training.eval import suites

TOY_QUESTIONS = {"toy-0": ("What is 6*7?", "42"), "toy-1": ("Capital of France?", "Paris"),
                 "toy-2": ("2+2?", "4")}  # fmt: skip


def _toy_load(limit: int | None = None, seed: int = 0) -> list[suites.Task]:
    return [suites.Task(i, "toy", q, g) for i, (q, g) in TOY_QUESTIONS.items()]


def _toy_check(task: suites.Task, answer: str, record: object) -> suites.Verdict:
    if "boom" in answer:
        raise ValueError("checker bug")
    return suites.Verdict(task.gold in answer, float(task.gold in answer))


@pytest.fixture
def toy_suite() -> str:
    """The suite ``toy`` registered: 6*7 = 42, the capital of France, 2+2; its name."""
    suites.register_suite("toy", _toy_load, _toy_check)
    return "toy"


ToyExpert = Callable[[str, float, set[str], list[str]], BaseTool]


@pytest.fixture
def toy_expert(toy_suite: str) -> ToyExpert:
    """``make(name, usd_per_mtok, knows, calls)``: an expert that answers the toy questions
    whose gold it ``knows`` (else "No idea."), appending its name to ``calls`` per call."""

    def make(name: str, price: float, knows: set[str], calls: list[str]) -> BaseTool:
        def ask(question: str) -> tuple[str, Usage]:
            calls.append(name)
            gold = next(g for q, g in TOY_QUESTIONS.values() if q == question)
            reply = f"It is {gold}." if gold in knows else "No idea."
            return reply, Usage(input_tokens=10, output_tokens=100)

        tool = StructuredTool.from_function(
            ask, name=name, description=f"{name} expert", response_format="content_and_artifact"
        )
        cost = ToolCost(input_usd_per_mtok=price, output_usd_per_mtok=price, max_output_tokens=500)
        return with_cost(tool, cost)

    return make
