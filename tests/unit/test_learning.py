"""The learning benchmark's routing task: its priced tools, disjoint suites, before/after table.

The benchmark itself (``benchmarks/routing.py``) trains a real 0.5B policy for ~45 minutes;
its ``--quick`` mode takes ~7 minutes on 2 shared cores, too long for the test suite. Its
parts live in :mod:`podium.training.grpo.routing` and are tested here.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from podium.graph import Context, TrajectoryStore, graph
from podium.graph.testing import text_tool_call
from podium.training.eval import suites as suites
from podium.training.grpo import routing
from podium.training.grpo.collect import finish_record
from podium.training.grpo.config import TrainConfigError
from podium.training.grpo.preferences import make_preference

SETUP_KW = {"train_tasks": 6, "heldout_tasks": 5}


def test_suites_are_disjoint_and_both_tools_compute_the_gold_answer():
    setup = routing.Setup(**SETUP_KW)
    train, heldout = routing.register_routing_suites(setup)
    train_tasks, heldout_tasks = suites.load_suite(train), suites.load_suite(heldout)
    assert (len(train_tasks), len(heldout_tasks)) == (6, 5)
    assert not {t.question for t in train_tasks} & {t.question for t in heldout_tasks}
    expert, calculator = routing.routing_tools()
    for task in train_tasks + heldout_tasks:
        expression = task.data["entry"]["metadata"]["expression"]
        value = calculator.invoke({"expression": expression})
        assert suites.check(task, value).correct, (expression, value, task.gold)
        said = expert.invoke({"expression": expression})
        assert suites.check(task, said).correct, (expression, said, task.gold)
        assert not suites.check(task, str(int(task.gold) + 1)).correct


def test_calculator_refuses_what_is_not_arithmetic():
    _, calculator = routing.routing_tools()
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


def test_summary_prefers_the_cheap_right_route(fake_graph, tmp_path):
    setup = routing.Setup(**SETUP_KW)
    _, heldout = routing.register_routing_suites(setup)
    tasks = suites.load_suite(heldout)[:2]
    tools = routing.routing_tools()
    store = TrajectoryStore(tmp_path / "runs.sqlite")
    expert_runs, calc_runs = [], []

    def route(tool: str, task) -> list[str]:
        expression = task.data["entry"]["metadata"]["expression"]
        return [
            text_tool_call(tool, expression=expression),
            text_tool_call("answer", text=task.gold),
        ]

    for task in tasks:
        expert_runs.append(_run(fake_graph, tools, store, task, route("math_expert", task)))
        calc_runs.append(_run(fake_graph, tools, store, task, route("calculator", task)))
    summary = routing.summarize(expert_runs, calc_runs, setup)
    before, after = summary["before"], summary["after"]
    assert before["accuracy"] == after["accuracy"] == 1.0
    assert before["calls_per_task"] == {"math_expert": 1.0, "calculator": 0.0}
    assert after["calls_per_task"] == {"math_expert": 0.0, "calculator": 1.0}
    assert after["mean_cost_usd"] < before["mean_cost_usd"] - 0.015
    assert after["mean_reward"] > before["mean_reward"]
    routing.print_table(summary, len(tasks))


def test_unknown_fixed_preference_is_one_line(tmp_path, tiny_policy_dir):
    from podium.graph.resources import tools_override
    from podium.training.grpo.trainer import build_trainer

    setup = routing.Setup(**SETUP_KW, preference="be_cheap")
    train, _ = routing.register_routing_suites(setup)
    cfg = routing.train_config(setup, Path(tiny_policy_dir), tmp_path, train)
    refused = pytest.raises(TrainConfigError, match="unknown preference 'be_cheap'")
    with tools_override(routing.routing_tools()), refused:
        build_trainer(cfg)
