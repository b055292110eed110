"""The evaluation runner with fake policies and priced fake tools: routers, oracle, outputs."""

from __future__ import annotations

import json
import math

import pytest
from langchain_core.messages import AIMessage

from podium.graph.testing import FakePolicy, calc_tool
from podium.training.eval import suites as T
from podium.training.eval.metrics import summarize, wilson
from podium.training.eval.routers import RESPONSE, RouterError, llm_experts, question_of, router_for
from podium.training.eval.runner import RESULTS, SUMMARY, EvalConfig, EvalError, evaluate


@pytest.fixture
def pool(fake_graph, toy_expert):
    calls: list[str] = []
    tools = [
        toy_expert("cheap", 0.1, {"42"}, calls),
        toy_expert("pricey", 10.0, {"42", "Paris", "4"}, calls),
        calc_tool(0.001),
    ]

    def setup(script=()):
        # a script for the fake policy, or a chat model to use as the policy
        policy, ctx = fake_graph(script if isinstance(script, FakePolicy) else list(script), tools)
        return policy, ctx

    return setup, {t.name: t for t in tools}, calls


def _rows(out):
    return [json.loads(line) for line in (out / RESULTS).read_text().splitlines()]


def test_fixed_routers_pick_experts_by_price(pool):
    _, tools, _ = pool
    assert [t.name for t in llm_experts(tools)] == ["cheap", "pricey"]
    assert router_for("strongest", tools).tool == "pricey"
    assert router_for("cheapest", tools).tool == "cheap"
    assert {router_for("random", tools, seed=s).tool for s in range(40)} == set(tools)
    assert router_for("random", tools, seed=3).tool == router_for("random", tools, seed=3).tool
    with pytest.raises(RouterError, match="needs an LLM expert"):
        router_for("strongest", {"calc": tools["calc"]})


def test_eval_writes_rows_and_a_summary_that_adds_up(pool, tmp_path):
    setup, _, _ = pool
    script = [
        '{"name": "pricey", "arguments": {"question": "What is 6*7?"}}', "It is 42",
        "Paris", "5",
    ]  # fmt: skip
    _, ctx = setup(script)
    routers = ["policy", "strongest", "cheapest", "random"]
    cfg = EvalConfig("toy", tmp_path, routers=routers, context=ctx, progress=False)
    summary = evaluate(cfg)
    rows = _rows(tmp_path)
    assert len(rows) == 12 and {r["status"] for r in rows} == {"ok"}
    assert json.loads((tmp_path / SUMMARY).read_text()) == summary
    assert summary["routers"] == summarize(rows, routers)
    by = summary["routers"]
    assert list(by) == routers
    assert by["policy"]["correct"] == 2 and by["strongest"]["correct"] == 3
    assert by["cheapest"]["correct"] == 1
    assert by["strongest"]["tool_calls"] == {"pricey": 3} and by["strongest"]["tool_errors"] == 0
    for r in rows:  # calc cannot evaluate a question: a failed call, passed through
        assert r["tool_errors"] == (r["tool_calls"] == ["calc"]), r
    assert by["policy"]["tool_calls"] == {"pricey": 1}
    for name, s in by.items():
        mine = [r for r in rows if r["router"] == name]
        assert math.isclose(s["total_cost_usd"], sum(r["cost_usd"] for r in mine))
        assert math.isclose(s["mean_latency_s"], sum(r["latency_s"] for r in mine) / 3)
        assert s["accuracy_ci95"][0] <= s["accuracy"] <= s["accuracy_ci95"][1]
    # Fixed routers pay for their one expert call only: (10 + 100) tokens at $10 per M.
    assert math.isclose(by["strongest"]["mean_cost_usd"], 110 * 10.0 / 1e6)
    assert by["policy"]["malformed_calls"] == 0 and by["policy"]["turns_per_task"] == 4 / 3
    pricey = next(r for r in rows if r["router"] == "policy" and r["tool_calls"])
    assert math.isclose(pricey["tool_cost_usd"], 110 * 10.0 / 1e6)
    assert math.isclose(pricey["policy_cost_usd"] + pricey["tool_cost_usd"], pricey["cost_usd"])


class ForcedFirstPolicy(FakePolicy):
    """Obeys a named ``tool_choice`` (as constrained decoding does) with the question as the
    argument, then answers with the tool's result; forced to answer at once, it guesses "5"."""

    arg: str = "question"

    def _generate(self, messages, stop=None, run_manager=None, **kw):
        choice, text = kw.get("tool_choice"), str(messages[-1].content)
        seen = RESPONSE.findall(text)
        if choice and choice != "answer":
            call = {"name": choice, "args": {self.arg: question_of(messages)}, "id": "c1"}
        else:
            call = {"name": "answer", "args": {"text": seen[-1] if seen else "5"}, "id": "c2"}
        self.script = [AIMessage(content="", tool_calls=[call])]
        return super()._generate(messages, stop, run_manager, **kw)


def test_oracle_is_the_cheapest_correct_explore_run(pool, tmp_path, monkeypatch):
    setup, _, calls = pool
    policy = ForcedFirstPolicy()
    _, ctx = setup(policy)
    cfg = EvalConfig("toy", tmp_path, routers=["oracle"], context=ctx, progress=False)
    by = evaluate(cfg)["routers"]
    oracle = {r["task_id"]: r for r in _rows(tmp_path)}
    # The policy ran once per tool forced first, and once answering at once, on every task.
    assert set(oracle["toy-0"]["oracle_runs"]) == {"cheap", "pricey", "calc", "answer"}
    assert [c for c in policy.choices if c] == ["calc", "cheap", "pricey", "answer"] * 3
    assert oracle["toy-0"]["oracle_tool"] == "cheap"  # cheap and pricey know 42: cheaper wins
    assert oracle["toy-1"]["oracle_tool"] == "pricey"
    assert oracle["toy-2"]["oracle_tool"] == "pricey"
    assert by["oracle"]["correct"] == 3 and calls.count("cheap") == 3
    assert by["oracle"]["calls_per_task"] == 1  # the kept runs; the policy's turns are billed
    assert all(r["policy_cost_usd"] > 0 for r in oracle.values())


def test_resume_skips_finished_tasks_and_torn_lines(pool, tmp_path):
    setup, _, calls = pool
    _, ctx = setup()
    cfg = EvalConfig("toy", tmp_path, routers=["strongest"], limit=2, context=ctx, progress=False)
    evaluate(cfg)
    assert calls == ["pricey", "pricey"]
    with pytest.raises(EvalError, match="--resume"):
        evaluate(cfg)
    with (tmp_path / RESULTS).open("a") as f:
        f.write('{"suite": "toy", "router": "stro')  # a run killed mid-write
    cfg.limit, cfg.resume = None, True
    summary = evaluate(cfg)
    assert calls == ["pricey"] * 3
    assert summary["routers"]["strongest"]["n"] == 3 and len(_rows(tmp_path)) == 3
    other = EvalConfig("math", tmp_path, context=ctx, resume=True, progress=False)
    with pytest.raises(EvalError, match="another --out"):
        evaluate(other)


def test_retry_errors_reruns_only_the_failed_tasks(pool, tmp_path):
    setup, _, _ = pool
    policy, ctx = setup(["It is 42", RuntimeError("endpoint down"), "4"])
    cfg = EvalConfig("toy", tmp_path, context=ctx, progress=False)
    assert evaluate(cfg)["routers"]["policy"]["errors"] == 1
    with pytest.raises(EvalError, match="add --resume"):
        evaluate(EvalConfig("toy", tmp_path, context=ctx, retry_errors=True, progress=False))
    policy.script[:] = ["Paris"]  # the endpoint is back; only toy-1 asks it again
    cfg.resume = cfg.retry_errors = True
    summary = evaluate(cfg)["routers"]["policy"]
    assert summary["errors"] == 0 and summary["correct"] == 3 and summary["n"] == 3
    assert sorted(r["task_id"] for r in _rows(tmp_path)) == ["toy-0", "toy-1", "toy-2"]


def test_a_checker_that_raises_or_a_failed_run_marks_the_task_error(pool, tmp_path):
    setup, _, _ = pool
    _, ctx = setup(["boom", RuntimeError("endpoint down"), "4"])
    summary = evaluate(EvalConfig("toy", tmp_path, context=ctx, progress=False))
    rows = {r["task_id"]: r for r in _rows(tmp_path)}
    assert rows["toy-0"]["status"] == "error" and "checker bug" in rows["toy-0"]["detail"]
    assert rows["toy-1"]["status"] == "error" and rows["toy-1"]["stopped_by"] == "error"
    assert summary["routers"]["policy"]["errors"] == 2
    assert summary["routers"]["policy"]["correct"] == 1


def test_preference_compliance_is_the_share_of_preferred_calls(pool, tmp_path):
    setup, _, _ = pool
    _, ctx = setup()
    cfg = EvalConfig("toy", tmp_path, routers=["strongest", "cheapest"], prefer=["cheap"],
                     context=ctx, concurrency=2, progress=False)  # fmt: skip
    by = evaluate(cfg)["routers"]
    assert by["strongest"]["preference_compliance"] == 0.0
    assert by["cheapest"]["preference_compliance"] == 1.0


def test_bad_requests_are_user_errors(pool, tmp_path):
    setup, _, _ = pool
    _, ctx = setup()
    with pytest.raises(EvalError, match="unknown router 'best'"):
        evaluate(EvalConfig("toy", tmp_path, routers=["best"], context=ctx, progress=False))
    with pytest.raises(T.SuiteError):
        evaluate(EvalConfig("nope", tmp_path, context=ctx, progress=False))
    assert not (tmp_path / SUMMARY).exists()


def test_wilson_interval():
    assert wilson(0, 0) == (0.0, 0.0)
    low, high = wilson(5, 10)
    assert math.isclose(low + high, 1.0) and 0.23 < low < 0.24
    assert math.isclose(wilson(10, 10)[1], 1.0)


def test_oracle_tools_restrict_the_forced_tools(pool, tmp_path, monkeypatch):
    setup, _, _ = pool
    policy = ForcedFirstPolicy()
    _, ctx = setup(policy)
    cfg = EvalConfig("toy", tmp_path, routers=["oracle"], context=ctx, progress=False, limit=1,
                     oracle_tools=["cheap", "answer"])  # fmt: skip
    evaluate(cfg)
    assert set(_rows(tmp_path)[0]["oracle_runs"]) == {"cheap", "answer"}
    cfg = EvalConfig("toy", tmp_path / "b", routers=["oracle"], context=ctx, progress=False,
                     oracle_tools=["web"])  # fmt: skip
    with pytest.raises(EvalError, match="--oracle-tool 'web' is not a tool"):
        evaluate(cfg)
    assert not (tmp_path / "b").exists()


def test_direct_router_asks_the_policy_model_the_bare_question(pool, tmp_path):
    setup, _, calls = pool
    policy, ctx = setup(["It is 42.", "Lyon", "4"])  # plain replies: the model alone
    cfg = EvalConfig("toy", tmp_path, routers=["direct"], context=ctx, progress=False)
    by = evaluate(cfg)["routers"]["direct"]
    rows = _rows(tmp_path)
    assert by["correct"] == 2 and [r["answer"] for r in rows] == ["It is 42.", "Lyon", "4"]
    assert all(r["tool_calls"] == [] and r["turns"] == 1 for r in rows) and calls == []
    assert [[m.content for m in p] for p in policy.prompts] == [
        ["What is 6*7?"], ["Capital of France?"], ["2+2?"],
    ]  # fmt: skip  # no system prompt, no tools: the question alone
    assert all(r["policy_cost_usd"] > 0 for r in rows)  # its tokens are billed as the policy's
