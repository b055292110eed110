"""Exploration: a run's first call is forced to name a tool; ``collect --explore`` tries each."""

from __future__ import annotations

import contextvars
import json
from typing import Any

import pytest
from langchain_core.messages import AIMessage

from podium.graph import Context, ContextError, TrajectoryStore, graph
from podium.graph.testing import FakePolicy, calc_tool, expert_tool
from podium.training.grpo.collect import stored_groups

ARGS = {"calc": {"expression": "2+2"}, "oracle": {"question": "What is 2+2?"}}


class ObedientPolicy(FakePolicy):
    """Calls the tool a named ``tool_choice`` demands, as constrained decoding makes a server do;
    on a free turn it calls ``calc`` first and answers "4" once it has seen a result."""

    def _generate(self, messages: list[Any], stop: Any = None, run_manager: Any = None, **kw: Any):
        choice = kw.get("tool_choice")
        seen = any(isinstance(m, AIMessage) for m in messages)
        if choice:
            name, args = choice, ARGS.get(choice, {"text": "4"})
        else:
            name, args = ("answer", {"text": "4"}) if seen else ("calc", ARGS["calc"])
        call = {"name": name, "args": args, "id": f"c{len(self.prompts)}"}
        self.script = [AIMessage(content="", tool_calls=[call])]
        return super()._generate(messages, stop, run_manager, **kw)


@pytest.fixture
def obedient(fake_graph):
    policy = ObedientPolicy()
    _, ctx = fake_graph(policy, [calc_tool(), expert_tool()])
    return policy, ctx


def test_first_call_names_the_forced_tool_then_the_policy_is_free(obedient):
    policy, ctx = obedient
    out = graph.invoke({"question": "What is 2+2?"}, context=Context(**ctx, first_tool="oracle"))
    assert policy.choices == ["oracle", None]  # forced on the first turn only
    tools = [e["name"] for e in out["ledger"] if e["kind"] == "tool"]
    assert tools == ["oracle"] and out["answer"] == "4"
    record = TrajectoryStore(ctx["trajectory_db"]).get(out["trajectory_id"])
    assert record["explore"] == {"first_tool": "oracle"}
    assert record["policy_turns"][0]["calls"][0]["tool"] == "oracle"


def test_an_unforced_run_is_not_flagged(obedient):
    policy, ctx = obedient
    out = graph.invoke({"question": "What is 2+2?"}, context=Context(**ctx))
    assert policy.choices == [None, None]
    assert TrajectoryStore(ctx["trajectory_db"]).get(out["trajectory_id"])["explore"] is None


def test_forcing_a_tool_the_run_does_not_offer_is_a_context_error(obedient):
    _, ctx = obedient
    with pytest.raises(ContextError, match="'web' is not offered"):
        graph.invoke({"question": "q"}, context=Context(**ctx, first_tool="web"))


def test_collect_explore_runs_each_tool_first_once(obedient, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from podium.studio.cli import app
    from podium.training.grpo import collect

    policy, ctx = obedient
    monkeypatch.setattr(collect, "check_endpoint", lambda url: None)
    monkeypatch.setattr(
        collect, "pool_localities", lambda *a: {"calc": "local", "oracle": "remote"}
    )
    suite = tmp_path / "qs.jsonl"
    suite.write_text('{"id": "q1", "question": "What is 2+2?", "answer": "4"}\n')
    store = tmp_path / "explore.sqlite"
    args = ["collect", "--tasks", f"jsonl:{suite}", "--explore", "--out", str(store), "--json"]
    args += ["--concurrency", "1", "--policy-base-url", ctx["policy_base_url"]]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["runs"] == 3
    (group,) = stored_groups(TrajectoryStore(store)).values()
    explored = [r["training"]["explore_tool"] for r in group]
    assert explored == ["calc", "oracle", "answer"]
    assert [r["explore"]["first_tool"] for r in group] == explored
    firsts = [next((e["name"] for e in r["ledger"] if e["kind"] == "tool"), None) for r in group]
    assert firsts == ["calc", "oracle", None]  # each run's first call is the tool it was forced to
    assert group[2]["turns"] == 1  # forced to answer at once
    assert all(r["training"]["verdict"]["correct"] for r in group)
    assert sorted(c for c in policy.choices if c) == sorted(explored)
    again = CliRunner().invoke(app, args, catch_exceptions=False)  # resumes: nothing left to run
    assert json.loads(again.output.strip().splitlines()[-1])["runs"] == 0
    more = CliRunner().invoke(app, [*args, "--explore-samples", "2"], catch_exceptions=False)
    assert json.loads(more.output.strip().splitlines()[-1])["runs"] == 3  # the second samples
    (group,) = stored_groups(TrajectoryStore(store)).values()
    assert [r["training"]["sample"] for r in group] == list(range(6))
    assert sorted(r["training"]["explore_tool"] for r in group) == sorted(explored * 2)
    teacher = CliRunner().invoke(app, [*args, "--policy-model", "teacher"], catch_exceptions=False)
    assert json.loads(teacher.output.strip().splitlines()[-1])["runs"] == 3  # its own samples
    (group,) = stored_groups(TrajectoryStore(store)).values()
    assert [r["training"]["sample"] for r in group] == list(range(9))
    assert [r["context"]["policy_model"] for r in group[6:]] == ["teacher"] * 3
    bad = CliRunner().invoke(app, [*args, "--explore-samples", "0"])
    assert isinstance(bad.exception, collect.CollectError)  # the CLI's main prints it, exit 2
    assert "--explore-samples must be at least 1" in str(bad.exception)


def test_collect_router_stores_a_fixed_routers_runs_as_demonstrations(
    obedient, tmp_path, monkeypatch
):
    from typer.testing import CliRunner

    from podium.studio.cli import app
    from podium.training.grpo import collect

    policy, _ = obedient
    monkeypatch.setattr(
        collect, "pool_localities", lambda *a: {"calc": "local", "oracle": "remote"}
    )
    suite = tmp_path / "qs.jsonl"
    suite.write_text(
        '{"id": "q1", "question": "What is 6 times 7?", "answer": "the oracle says 42"}\n'
    )
    store = tmp_path / "demo.sqlite"
    args = ["collect", "--tasks", f"jsonl:{suite}", "--router", "strongest", "--json"]
    args += ["--group-size", "1", "--concurrency", "1", "--out", str(store)]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["correct"] == 1
    (group,) = stored_groups(TrajectoryStore(store)).values()
    (record,) = group
    assert record["context"]["policy_model"] == "router:strongest"
    (call,) = record["policy_turns"][0]["calls"]  # the expert, asked the task's own words
    assert (call["tool"], call["args"]) == ("oracle", {"question": "What is 6 times 7?"})
    assert record["answer"] == "the oracle says 42" and record["training"]["verdict"]["correct"]
    assert policy.prompts == []  # the policy was never asked
    for extra, message in (
        (["--router", "oracle"], "'oracle' cannot drive a run"),
        (["--router", "strongest", "--explore"], "exclude each other"),
    ):
        bad = CliRunner().invoke(app, [*args, *extra])
        assert isinstance(bad.exception, collect.CollectError)
        assert message in str(bad.exception)


def test_explore_tools_keep_the_pool_order_and_refuse_unknown_ones():
    from podium.training.grpo.collect import CollectError, explore_tools

    pool = {"python": "local", "local_search": "local", "ask_big": "remote"}
    assert explore_tools(pool) == ["ask_big", "local_search", "python", "answer"]
    assert explore_tools(pool, ["answer", "python"]) == ["python", "answer"]
    with pytest.raises(CollectError, match="--explore-tool 'web' is not offered"):
        explore_tools(pool, ["web"])


def test_resolving_the_pool_alone_starts_no_policy_server(monkeypatch):
    from podium.graph import Context
    from podium.graph.resources import resolve, resolve_tools
    from podium.tools import llamacpp

    started: list[str] = []
    monkeypatch.setattr(llamacpp, "embedded_base_url", lambda *a: started.append("x") or "u")
    ctx = Context(policy_base_url="", profile="local")  # the embedded default policy
    # In a fresh context: no tools override, whatever an earlier test of the session left.
    # (In CI's order, integration first, some test left the calc pool in force; not found yet.)
    fresh = contextvars.Context()
    assert "python" in fresh.run(resolve_tools, ctx) and started == []  # fixed routers' need
    assert fresh.run(resolve, ctx).policy_base_url == "u" and started == ["x"]
