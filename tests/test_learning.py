"""The learning benchmark's parts: its priced tools, its disjoint suites, its before/after table.

The benchmark itself (``benchmarks/learning.py``) trains a real 0.5B policy for ~45 minutes;
its ``--quick`` mode takes ~7 minutes on 2 shared cores, too long for the test suite.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import pytest

from podium.graph import Context, TrajectoryStore, graph
from podium.training.eval import suites as suites
from podium.training.grpo.collect import finish_record
from podium.training.grpo.config import TrainConfigError
from podium.training.grpo.preferences import make_preference

BENCH = Path(__file__).resolve().parents[1] / "benchmarks" / "learning.py"


@pytest.fixture(scope="module")
def learning():
    spec = importlib.util.spec_from_file_location("podium_learning_benchmark", BENCH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through it
    spec.loader.exec_module(module)
    return module


SETUP_KW = {"train_tasks": 6, "heldout_tasks": 5}


def test_suites_are_disjoint_and_both_tools_compute_the_gold_answer(learning):
    setup = learning.Setup(**SETUP_KW)
    train, heldout = learning.register_routing_suites(setup)
    train_tasks, heldout_tasks = suites.load_suite(train), suites.load_suite(heldout)
    assert (len(train_tasks), len(heldout_tasks)) == (6, 5)
    assert not {t.question for t in train_tasks} & {t.question for t in heldout_tasks}
    expert, calculator = learning.routing_tools()
    for task in train_tasks + heldout_tasks:
        expression = task.data["entry"]["metadata"]["expression"]
        value = calculator.invoke({"expression": expression})
        assert suites.check(task, value).correct, (expression, value, task.gold)
        said = expert.invoke({"expression": expression})
        assert suites.check(task, said).correct, (expression, said, task.gold)
        assert not suites.check(task, str(int(task.gold) + 1)).correct


def test_calculator_refuses_what_is_not_arithmetic(learning):
    _, calculator = learning.routing_tools()
    assert calculator.invoke({"expression": "__import__('os')"}).startswith("error")
    assert calculator.invoke({"expression": "1/0"}).startswith("error")
    assert calculator.invoke({"expression": "( 7 / 2 )"}) == "3.5"


def _run(fake_graph, tools, store, task, script):
    """One stored, judged run of the real graph with a scripted policy."""
    pref = make_preference("save_money", {t.name: "local" for t in tools})
    _, ctx = fake_graph(script, tools)
    ctx |= {"trajectory_db": str(store.path), "max_turns": 2}
    ctx |= {"preference": pref.instruction, "preference_vector": pref.vector}
    state = graph.invoke({"question": task.question}, context=Context(**ctx))
    return finish_record(store, state["trajectory_id"], task, task.id, 0, pref)


def _call(tool: str, expression: str) -> str:
    call = {"name": tool, "arguments": {"expression": expression}}
    return f"<tool_call>\n{json.dumps(call)}\n</tool_call>"


def _answer(text: str) -> str:
    return f'<tool_call>\n{{"name": "answer", "arguments": {{"text": "{text}"}}}}\n</tool_call>'


def test_summary_prefers_the_cheap_right_route(learning, fake_graph, tmp_path):
    setup = learning.Setup(**SETUP_KW)
    _, heldout = learning.register_routing_suites(setup)
    tasks = suites.load_suite(heldout)[:2]
    tools = learning.routing_tools()
    store = TrajectoryStore(tmp_path / "runs.sqlite")
    expert_runs, calc_runs = [], []
    for task in tasks:
        expr = task.data["entry"]["metadata"]["expression"]
        expert_runs.append(
            _run(fake_graph, tools, store, task, [_call("math_expert", expr), _answer(task.gold)])
        )
        calc_runs.append(
            _run(fake_graph, tools, store, task, [_call("calculator", expr), _answer(task.gold)])
        )
    summary = learning.summarize(expert_runs, calc_runs, setup)
    before, after = summary["before"], summary["after"]
    assert before["accuracy"] == after["accuracy"] == 1.0
    assert before["calls_per_task"] == {"math_expert": 1.0, "calculator": 0.0}
    assert after["calls_per_task"] == {"math_expert": 0.0, "calculator": 1.0}
    assert after["mean_cost_usd"] < before["mean_cost_usd"] - 0.015
    assert after["mean_reward"] > before["mean_reward"]
    learning.print_table(summary, len(tasks))


def test_unknown_fixed_preference_is_one_line(learning, tmp_path, tiny_policy_dir):
    from podium.graph.resources import tools_override
    from podium.training.grpo.trainer import build_trainer

    setup = learning.Setup(**SETUP_KW, preference="be_cheap")
    train, _ = learning.register_routing_suites(setup)
    cfg = learning.train_config(setup, Path(tiny_policy_dir), tmp_path, train)
    refused = pytest.raises(TrainConfigError, match="unknown preference 'be_cheap'")
    with tools_override(learning.routing_tools()), refused:
        build_trainer(cfg)
