"""Reports, the trajectory viewer, LangSmith offline and the eval/view CLI (fakes, no models)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from podium.graph import Context, graph
from podium.graph.testing import calc_tool
from podium.graph.trajectory import TrajectoryStore
from podium.studio.console import usd
from podium.studio.reports import REPORT, pareto_front, render_trajectory, write_report, write_view
from podium.training.eval.runner import RESULTS, SUMMARY, EvalConfig, evaluate

SECRET = "sk-reportleak-0123456789abcdef"


@pytest.fixture
def evaluated(fake_graph, toy_expert, tmp_path):
    calls: list[str] = []
    tools = [toy_expert("cheap", 0.1, {"42"}, calls),
             toy_expert("pricey", 10.0, {"42", "4"}, calls)]  # fmt: skip
    _, ctx = fake_graph(["42", "Paris", "5"], tools)
    cfg = EvalConfig("toy", tmp_path / "ev", routers=["policy", "strongest", "cheapest", "oracle"],
                     context=ctx, progress=False)  # fmt: skip
    return cfg, evaluate(cfg), ctx


def test_report_has_table_plots_and_rows(evaluated):
    cfg, summary, _ = evaluated
    page = write_report(cfg.out).read_text()
    assert (cfg.out / "pareto.png").stat().st_size > 5000
    assert (cfg.out / "tool_usage.png").stat().st_size > 3000
    for element in ('id="routers"', 'id="pareto"', 'id="tool-usage"', 'id="tasks"'):
        assert element in page
    assert page.count("data:image/png;base64,") == 2
    for name, s in summary["routers"].items():
        assert f"<td>{name}</td><td>{s['accuracy']:.1%}</td>" in page
    assert page.count("<tr>") == 1 + 4 + 1 + 12  # header + routers, header + task rows


def test_pareto_front():
    points = {"a": (0.0, 0.2), "b": (1.0, 0.9), "c": (2.0, 0.5), "d": (0.5, 0.2), "e": (0.1, 0.6)}
    assert pareto_front(points) == ["a", "e", "b"]


def test_report_and_viewer_never_contain_api_keys(evaluated, monkeypatch):
    cfg, _, ctx = evaluated
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    rows = [json.loads(x) for x in (cfg.out / RESULTS).read_text().splitlines()]
    rows[0]["answer"] = f"my key is {SECRET}"  # an answer that echoes a key
    (cfg.out / RESULTS).write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert SECRET not in write_report(cfg.out).read_text()
    record = TrajectoryStore(ctx["trajectory_db"]).latest(1)[0]
    record["answer"] = SECRET
    assert SECRET not in render_trajectory(record)


def _run(fake_graph, script, tools, **ctx):
    _, base = fake_graph(script, tools)
    state = graph.invoke({"question": "What is 6*7?"}, context=Context(**{**base, **ctx}))
    return TrajectoryStore(base["trajectory_db"]).get(state["trajectory_id"])


def test_viewer_shows_turns_calls_observations_and_totals(fake_graph, tmp_path):
    call = '<think>I should compute.</think>{"name": "calc", "arguments": {"expression": "6*7"}}'
    record = _run(fake_graph, [call, "The answer is 42"], [calc_tool(0.001)])
    page = write_view(record, tmp_path / "v.html").read_text()
    assert "I should compute." in page  # the policy's reasoning
    assert "&quot;expression&quot;: &quot;6*7&quot;" in page  # the call's arguments
    assert '<pre class="obs">42</pre>' in page  # the observation
    assert page.count('class="step policy') == 2 and page.count('class="step tool') == 1
    assert usd(record["cost_usd"]) in page  # final running total = the record's cost
    assert "the policy answered" in page and ">The answer is 42<" in page


def test_viewer_marks_the_budget_guard_and_errors(fake_graph, tmp_path):
    record = _run(fake_graph, ["never asked"], [calc_tool()], budget_usd=0.0)
    page = render_trajectory(record)
    assert record["stopped_by"] == "budget"
    assert 'class="stop budget"' in page and "budget guard stopped the run" in page
    record = _run(fake_graph, [RuntimeError("endpoint down")], [calc_tool()])
    page = render_trajectory(record)
    assert 'class="step policy failed"' in page and "endpoint down" in page
    assert "an error ended the run" in page


def test_langsmith_offline_writes_the_same_files(fake_graph, toy_expert, tmp_path, monkeypatch):
    from podium.training.eval import langsmith_eval

    monkeypatch.delenv("LANGSMITH_API_KEY", raising=False)
    calls: list[str] = []
    tools = [toy_expert("cheap", 0.1, {"42"}, calls),
             toy_expert("pricey", 10.0, {"42", "4"}, calls)]  # fmt: skip
    _, ctx = fake_graph([], tools)
    routers = ["strongest", "cheapest"]
    local = EvalConfig("toy", tmp_path / "local", routers=routers, context=ctx, progress=False)
    tracked = EvalConfig("toy", tmp_path / "ls", routers=routers, context=ctx, progress=False)
    expected = evaluate(local)
    got = langsmith_eval.evaluate_langsmith(tracked)
    for name in routers:
        for key in ("n", "correct", "accuracy", "tool_calls", "total_cost_usd"):
            assert got["routers"][name][key] == expected["routers"][name][key]
    assert len((tmp_path / "ls" / RESULTS).read_text().splitlines()) == 6
    assert calls.count("pricey") == 6  # every task ran once per router per path, none twice
    out = langsmith_eval.feedback({"row": {"correct": True, "detail": "", "cost_usd": 0.5,
                                           "latency_s": 2.0, "tool_calls": ["a"]}})  # fmt: skip
    assert {r["key"]: r["score"] for r in out["results"]} == {
        "correct": 1.0, "cost_usd": 0.5, "latency_s": 2.0, "tool_calls": 1}  # fmt: skip


def _podium(*args: str, cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PODIUM_CACHE_DIR": str(cache)}
    exe = Path(sys.executable).with_name("podium")
    return subprocess.run([str(exe), *args], capture_output=True, text=True, env=env, timeout=120)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("eval", "nope"), "unknown suite 'nope'"),
        (("eval", "math", "--router", "best"), "unknown router 'best'"),
        (("view",), "give a TRAJECTORY_ID or --latest"),
        (("view", "abc", "--no-open"), "no trajectory 'abc'"),
    ],
)
def test_cli_user_errors_are_one_line(tmp_path, args, message):
    result = _podium(*args, "--out", str(tmp_path / "o"), cache=tmp_path) if args[0] == "eval" \
        else _podium(*args, cache=tmp_path)  # fmt: skip
    assert result.returncode == 2, result.stderr
    assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o" / SUMMARY).exists()


def test_cli_view_writes_the_page(fake_graph, tmp_path):
    record = _run(fake_graph, ["42"], [calc_tool()])
    db = str(tmp_path / "traj.sqlite")
    result = _podium("view", record["id"], "--db", db, "--no-open", "--out",
                     str(tmp_path / "page.html"), cache=tmp_path)  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert record["id"] in (tmp_path / "page.html").read_text()
    assert not list(tmp_path.glob(".page.html.*"))  # no temporary left behind
    assert REPORT == "report.html"


def test_report_of_a_run_where_nothing_is_solved(tmp_path):
    """0 of n correct: the Wilson bound rounds just below 0, which must not break the plot."""
    rows = [{"suite": "math", "seed": 0, "router": r, "task_id": f"t{i}", "status": "ok",
             "correct": False, "score": 0.0, "detail": "", "answer": "", "cost_usd": 1e-6,
             "latency_s": 1.0, "tool_calls": [], "trajectory_id": "", "preferred_calls": None}
            for r in ("policy", "oracle") for i in range(3)]  # fmt: skip
    from podium.training.eval.metrics import summarize

    (tmp_path / RESULTS).write_text("".join(json.dumps(r) + "\n" for r in rows))
    summary = {"suite": "math", "seed": 0, "limit": 3, "tasks": 3, "prefer": [],
               "routers": summarize(rows)}  # fmt: skip
    (tmp_path / SUMMARY).write_text(json.dumps(summary))
    write_report(tmp_path)
    table = (tmp_path / "summary.md").read_text()
    assert "| policy | 0/3 (0%) |" in table and "| oracle | 0/3 (0%) |" in table
