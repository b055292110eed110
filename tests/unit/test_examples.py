"""The embedding examples (examples/embed.py) work as documented, with fakes."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from podium.graph import Context
from podium.graph.testing import FakePolicy, calc_tool, tool_call

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "embed.py"


def load_example():
    spec = importlib.util.spec_from_file_location("podium_embed_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def example():
    return load_example()


def test_runnable_batch_answers_each_question_with_its_context(fake_graph, example):
    _, base = fake_graph(["42", "7"], [calc_tool()])
    states = example.as_runnable(Context(**base, budget_usd=0.5), ["6*7?", "3+4?"])
    assert sorted(s["answer"] for s in states) == ["42", "7"]
    assert all(s["cost_usd"] > 0 for s in states)


def test_an_agent_uses_the_graph_as_a_tool(fake_graph, example):
    inner, base = fake_graph([tool_call("calc", expression="6*7"), "42"], [calc_tool()])
    outer = FakePolicy(script=[tool_call("ask_podium", question="What is 6 * 7?")])
    answer = example.as_tool(Context(**base), outer, "Please find 6 times 7.")
    assert answer == "42"
    assert outer.bound == [["ask_podium"]] and outer.choices == ["ask_podium"]
    assert str(inner.prompts[0][-1].content) == "What is 6 * 7?"  # the question it delegated


def test_the_graph_is_a_subgraph_whose_updates_stream_out(fake_graph, example):
    _, base = fake_graph([tool_call("calc", expression="6*7"), "42"], [calc_tool(0.001)])
    updates, final = example.as_subgraph(Context(**base), "What is 6 * 7?")
    inner = [node for where, node in updates if where == "podium"]
    assert inner == ["policy", "tools", "execute", "policy", "finish"]
    assert [n for w, n in updates if w == "parent"] == ["podium", "report"]
    assert final["answer"] == "42" and final["cost_usd"] > 0.001
    assert final["log"] == [f"answered 'What is 6 * 7?': 42 (${final['cost_usd']:.6f})"]
