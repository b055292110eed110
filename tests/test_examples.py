"""The embedding examples (examples/embed.py) run as documented."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage

from podium.graph import Context

from .fakes import FakePolicy, calc_tool

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "embed.py"


def load_example():
    spec = importlib.util.spec_from_file_location("podium_embed_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


def call(name, **args):
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": f"c_{name}"}])


@pytest.fixture
def example():
    return load_example()


def test_runnable_batch_answers_each_question_with_its_context(fake_graph, example):
    _, base = fake_graph(["42", "7"], [calc_tool()])
    states = example.as_runnable(Context(**base, budget_usd=0.5), ["6*7?", "3+4?"])
    assert sorted(s["answer"] for s in states) == ["42", "7"]
    assert all(s["cost_usd"] > 0 for s in states)


def test_an_agent_uses_the_graph_as_a_tool(fake_graph, example):
    inner, base = fake_graph([call("calc", expression="6*7"), "42"], [calc_tool()])
    outer = FakePolicy(script=[call("ask_podium", question="What is 6 * 7?")])
    answer = example.as_tool(Context(**base), outer, "Please find 6 times 7.")
    assert answer == "42"
    assert outer.bound == [["ask_podium"]] and outer.choices == ["ask_podium"]
    assert str(inner.prompts[0][-1].content) == "What is 6 * 7?"  # the question it delegated


def test_the_graph_is_a_subgraph_whose_updates_stream_out(fake_graph, example):
    _, base = fake_graph([call("calc", expression="6*7"), "42"], [calc_tool(0.001)])
    updates, final = example.as_subgraph(Context(**base), "What is 6 * 7?")
    inner = [node for where, node in updates if where == "podium"]
    assert inner == ["policy", "tools", "execute", "policy", "finish"]
    assert [n for w, n in updates if w == "parent"] == ["podium", "report"]
    assert final["answer"] == "42" and final["cost_usd"] > 0.001
    assert final["log"] == [f"answered 'What is 6 * 7?': 42 (${final['cost_usd']:.6f})"]


@pytest.mark.integration
def test_the_example_runs_on_the_embedded_default():
    done = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=900
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert lines[0].startswith("1. runnable: ") and lines[1].startswith("2. as a tool")
    assert "podium/policy" in lines[2] and "parent/report" in lines[2]
