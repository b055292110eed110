"""ToolScale-style environments and tasks: generation, determinism, the checker's verdicts."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from langgraph.graph.state import CompiledStateGraph

from podium.tools.environment import call_tool, db_hash, environment_tools, load_spec, touched
from podium.training.eval.suites import Task, load_suite
from podium.training.eval.suites import toolscale as toolscale_suite
from podium.training.synth import toolscale
from podium.training.synth.domains import DOMAINS
from podium.training.synth.tasks import mentioned

pytestmark = pytest.mark.usefixtures("private_cache")


@pytest.mark.parametrize("domain", sorted(DOMAINS))
def test_every_domain_has_8_tools_and_50_verified_tasks(domain, tmp_path):
    env = toolscale.build_env(domain, 0, tmp_path / f"{domain}.sqlite")
    spec = load_spec(env)
    assert len(spec.tools) >= 8
    assert any(t.writes for t in spec.tools) and any(not t.writes for t in spec.tools)
    tools = environment_tools(env)
    assert {t.name for t in tools} == {t.name for t in spec.tools}
    assert all(t.metadata["podium_cost"].locality == "local" for t in tools)
    tasks, stats = toolscale.synthesize(env, 50, seed=0)
    assert len(tasks) == 50 and stats["kept"] == 50
    assert len({t.question for t in tasks}) == 50
    assert {t.data["difficulty"] for t in tasks} >= {"easy", "medium"}
    assert {t.data["evolution"] for t in tasks} == {"base", "constraint", "chain"}
    pristine = db_hash(env)
    for task in tasks[:10]:  # verified by execution: the gold actions reproduce the gold state
        copy = tmp_path / "copy.sqlite"
        shutil.copyfile(env, copy)
        assert all(call_tool(copy, a["tool"], a["args"]).ok for a in task.data["actions"])
        assert db_hash(copy) == task.data["gold_hash"]
        assert (db_hash(copy) != pristine) == task.data["writes"]
        assert not any(mentioned(r, task.question) for r in task.data["required"])


def test_generation_is_deterministic_for_a_seed(tmp_path):
    a = toolscale.build_env("railway", 3, tmp_path / "a.sqlite")
    b = toolscale.build_env("railway", 3, tmp_path / "b.sqlite")
    c = toolscale.build_env("railway", 4, tmp_path / "c.sqlite")
    assert db_hash(a) == db_hash(b) != db_hash(c)
    ta, _ = toolscale.synthesize(a, 20, seed=3)
    tb, _ = toolscale.synthesize(b, 20, seed=3)
    strip = lambda ts: [(t.id, t.question, {**t.data, "env": ""}) for t in ts]  # noqa: E731
    assert strip(ta) == strip(tb)


def _task(tasks: list[Task], pred) -> Task:
    return next(t for t in tasks if pred(t))


@pytest.fixture
def bank(tmp_path):
    env = toolscale.build_env("bank", 0, tmp_path / "bank.sqlite")
    tasks, _ = toolscale.synthesize(env, 60, seed=0)
    return env, tasks


def _run(task: Task, workdir: Path, actions: list[dict]) -> dict:
    env = toolscale_suite.prepare(task, workdir)["environment"]
    for a in actions:
        call_tool(env, a["tool"], a["args"])
    return {"context": {"environment": env}}


def test_checker_accepts_the_gold_trajectory(bank, tmp_path):
    _, tasks = bank
    task = _task(tasks, lambda t: t.data["writes"] and t.data["required"])
    record = _run(task, tmp_path / "run", task.data["actions"])
    answer = "Done. " + " and ".join(task.data["required"])
    verdict = toolscale_suite.check(task, answer, record)
    assert verdict.correct and verdict.score == 1.0, verdict.detail


def test_checker_rejects_a_wrong_database_change(bank, tmp_path):
    _, tasks = bank
    task = _task(tasks, lambda t: [a["tool"] for a in t.data["actions"]] == ["transfer"])
    wrong = [{"tool": "transfer", "args": {**task.data["actions"][0]["args"], "amount": 1.0}}]
    verdict = toolscale_suite.check(
        task, " ".join(task.data["required"]), _run(task, tmp_path, wrong)
    )
    assert not verdict.correct and "database differs" in verdict.detail


def test_checker_rejects_an_answer_missing_the_information(bank, tmp_path):
    _, tasks = bank
    task = _task(tasks, lambda t: t.data["required"])
    verdict = toolscale_suite.check(task, "All done!", _run(task, tmp_path, task.data["actions"]))
    assert not verdict.correct and "answer lacks" in verdict.detail
    assert verdict.score == pytest.approx(2 / 3)


def test_checker_rejects_a_guess_that_never_touched_the_record(bank, tmp_path):
    _, tasks = bank
    task = _task(tasks, lambda t: not t.data["writes"] and len(t.data["actions"]) == 1)
    record = _run(task, tmp_path, [])  # right answer, database untouched, nothing looked up
    verdict = toolscale_suite.check(task, " ".join(task.data["required"]), record)
    assert not verdict.correct and "never touched" in verdict.detail


def test_business_rules_are_clear_observations(bank, tmp_path):
    env, _ = bank
    copy = tmp_path / "c.sqlite"
    shutil.copyfile(env, copy)
    res = call_tool(copy, "withdraw", {"account_id": "A0001", "amount": 10**9})
    assert not res.ok and res.text.startswith("Error: insufficient funds")
    assert db_hash(copy) == db_hash(env)  # rolled back
    res = call_tool(copy, "get_account", {"account_id": "ZZZ"})
    assert res.text == "Error: no account with account_id 'ZZZ'"
    assert call_tool(copy, "deposit", {"account_id": "A0001"}).text == (
        "Error: missing argument(s): amount"
    )
    assert touched(copy) == {"accounts/A0001"}


def test_the_graph_runs_a_task_through_its_environment(bank, tmp_path, fake_graph):
    from podium.graph import Context, graph
    from podium.graph.trajectory import TrajectoryStore

    _, tasks = bank
    task = _task(tasks, lambda t: [a["tool"] for a in t.data["actions"]] == ["deposit"])
    args = task.data["actions"][0]["args"]
    script = [
        json.dumps({"name": "deposit", "arguments": args}),
        json.dumps({"name": "answer", "arguments": {"text": f"New balance {task.gold}"}}),
    ]
    _, base = fake_graph(script, [])
    overrides = toolscale_suite.prepare(task, tmp_path / "work")
    assert isinstance(graph, CompiledStateGraph)
    out = graph.invoke({"question": task.question}, context=Context(**{**base, **overrides}))
    record = TrajectoryStore(base["trajectory_db"]).get(out["trajectory_id"])
    assert record["context"]["environment"] == overrides["environment"]
    assert "deposit" in record["tools"]
    assert toolscale_suite.check(task, out["answer"], record).correct


def test_suite_interleaves_domains(tmp_path):
    tasks = load_suite("toolscale", limit=12, seed=0)
    assert len(tasks) == 12
    assert {t.data["domain"] for t in tasks[:10]} == set(DOMAINS)
    again = load_suite("toolscale", limit=12, seed=0)  # from the cache
    assert [t.id for t in again] == [t.id for t in tasks]


def test_training_tasks_come_from_environments_no_evaluation_seed_builds(monkeypatch):
    from podium.training.synth.mixture import TRAIN_SEED

    two = {k: DOMAINS[k] for k in ("bank", "movie")}
    monkeypatch.setattr(toolscale_suite, "DOMAINS", two)
    held = load_suite("toolscale", limit=6, seed=0)
    train = load_suite("toolscale-train", limit=6, seed=0)
    assert {t.data["env_seed"] for t in train} == {TRAIN_SEED}
    assert all(t.id.startswith("toolscale-train-") for t in train)
    assert not {t.question for t in train} & {t.question for t in held}
    assert not {t.id for t in train} & {t.id for t in held}
