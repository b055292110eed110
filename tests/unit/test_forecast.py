"""Cost forecasts from similar past runs (MiniLM neighbours), and the thin-history fallback."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from podium.graph import Context, TrajectoryStore, forecast
from podium.graph.forecast import MIN_HISTORY, from_history, interval
from podium.graph.testing import calc_tool


def record(i, question, tool, cost, seconds, **context):
    ledger = [
        {"kind": "policy", "name": "p", "turn": 1, "input_tokens": 10, "output_tokens": 5,
         "seconds": 0.1, "cost_usd": 0.0001, "call_id": "", "ok": True, "error": ""},
        {"kind": "tool", "name": tool, "turn": 1, "input_tokens": 0, "output_tokens": 0,
         "seconds": seconds, "cost_usd": cost, "call_id": f"c{i}", "ok": True, "error": ""},
    ]  # fmt: skip
    ctx = {"profile": "local", "policy_model": "", "local_only": False, "environment": ""}
    return {
        "id": f"r{i}", "question": question, "answer": "x", "stopped_by": "answer",
        "cost_usd": 0.0001 + cost, "latency_s": seconds + 0.1, "turns": 1, "started_at": i,
        "context": ctx | context, "ledger": ledger,
    }  # fmt: skip


ARITHMETIC = [f"What is {a} times {a + 3}?" for a in range(8)]
HISTORY_QS = [f"Who was the king of {c} in the year 1500?" for c in ("France", "Spain", "Poland",
              "England", "Sweden", "Scotland", "Portugal", "Denmark")]  # fmt: skip


def history():
    cheap = [record(i, q, "calc", 0.001, 0.5) for i, q in enumerate(ARITHMETIC)]
    dear = [record(10 + i, q, "expert", 0.05 + 0.001 * i, 4.0) for i, q in enumerate(HISTORY_QS)]
    return cheap + dear


def test_the_forecast_follows_the_nearest_questions():
    ctx = Context(budget_usd=1.0)
    cheap = from_history("What is 12 times 15?", ctx, history(), k=5)
    dear = from_history("Who was the king of Hungary in the year 1500?", ctx, history(), k=5)
    assert cheap.enough and cheap.neighbours == 5 and cheap.history == 16
    assert cheap.cost_usd[1] == pytest.approx(0.0011) and cheap.tool_mix == {"calc": 1.0}
    assert dear.cost_usd[1] > 0.05 and dear.tool_mix == {"expert": 1.0}
    assert dear.latency_s[1] == pytest.approx(4.1)
    assert dear.cost_usd[0] <= dear.cost_usd[1] <= dear.cost_usd[2]


def test_past_calls_are_repriced_with_todays_cost_model():
    ctx = Context(budget_usd=1.0)
    doubled = {"calc": calc_tool(0.002)}
    out = from_history("What is 12 times 15?", ctx, history(), tools=doubled, k=5)
    assert out.cost_usd[1] == pytest.approx(0.0021)


def test_other_policies_do_not_count_and_thin_history_falls_back_to_the_budget(tmp_path):
    store = TrajectoryStore(tmp_path / "t.sqlite")
    for r in history()[:4]:
        store.save(r)
    for r in history()[4:]:
        store.save(r | {"context": r["context"] | {"policy_model": "other"}})
    ctx = Context(budget_usd=0.25, trajectory_db=str(store.path))
    out = forecast("What is 2 times 3?", ctx)
    assert not out.enough and out.history == 4 and out.high_usd == 0.25
    assert "too little history: 4 comparable past runs (need 5)" in out.note
    assert out.cost_usd[1] is None


def test_the_interval_is_order_statistics():
    assert interval([float(x) for x in range(1, 20)]) == [1.0, 10.0, 19.0]
    assert interval([float(x) for x in range(1, 40)])[0::2] == [2.0, 38.0]


def test_with_forecast_on_the_state_holds_it_before_the_first_turn(fake_graph):
    from podium.graph import graph

    _, ctx = fake_graph(["42"], [calc_tool()])
    chunks = list(
        graph.stream({"question": "6*7?"}, context=Context(**ctx, forecast=True),
                     stream_mode="updates")
    )  # fmt: skip
    assert [next(iter(c)) for c in chunks] == ["forecast", "policy", "finish"]
    shown = chunks[0]["forecast"]["forecast"]
    assert shown["question"] == "6*7?" and shown["enough"] is False
    assert "too little history: 0 comparable past runs" in shown["note"]


def test_run_estimate_spends_nothing_and_warns_over_the_budget(tmp_path, monkeypatch, capsys):
    from podium.studio import cli

    store = TrajectoryStore(tmp_path / "t.sqlite")
    for r in history():
        store.save(r)
    monkeypatch.setenv("PODIUM_TRAJECTORY_DB", str(store.path))
    monkeypatch.setenv("PODIUM_CHECKPOINT_DB", str(tmp_path / "cp.sqlite"))
    question = "Who was the king of Hungary in the year 1500?"
    argv = ["podium", "run", question, "--estimate", "--budget-usd", "0.01", "--json"]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    out, err = capsys.readouterr()
    assert exit_.value.code == 0
    shown = json.loads(out)
    assert shown["enough"] and shown["neighbours"] == 16 and shown["cost_usd"][2] > 0.05
    assert "over --budget-usd 0.01" in err and err.count("\n") == 1
    assert len(store) == 16 and not (tmp_path / "cp.sqlite").exists()  # nothing ran


def test_runs_with_another_pool_do_not_count():
    ctx = Context(budget_usd=1.0)
    runs = [r | {"tools": ["calc", "expert"]} for r in history()]
    runs[:10] = [r | {"tools": ["calc"]} for r in runs[:10]]
    pool = {"calc": calc_tool(0.001), "expert": calc_tool(0.001)}
    assert from_history("What is 1 times 2?", ctx, runs, tools=pool).history == 6


@pytest.mark.parametrize("runs", [0, MIN_HISTORY - 1, MIN_HISTORY])
def test_a_thin_history_never_loads_the_embedding_model(
    runs, tmp_path, monkeypatch, capsys, no_podium_env
):
    """``podium run`` forecasts every question: with too few runs it must not pay for MiniLM.

    The seam is :func:`podium.tools.retrieval.embed_texts`, podium's one way to embed text;
    with enough history the same run does embed (so the seam is the one in use).
    """
    from podium.studio import cli
    from podium.tools import retrieval

    embedded: list[list[str]] = []

    def recording(texts: list[str]) -> np.ndarray:
        embedded.append(list(texts))
        return np.full((len(texts), 4), 0.5, dtype=np.float32)

    monkeypatch.setattr(retrieval, "embed_texts", recording)
    store = TrajectoryStore(tmp_path / "t.sqlite")
    unique = tmp_path.name  # questions no earlier test embedded (forecasts cache vectors)
    for i in range(runs):
        store.save(record(i, f"{unique}: what is {i} times 7?", "calc", 0.001, 0.5))
    monkeypatch.setenv("PODIUM_TRAJECTORY_DB", str(store.path))
    monkeypatch.setenv("PODIUM_CHECKPOINT_DB", str(tmp_path / "cp.sqlite"))
    argv = ["podium", "run", f"{unique}: what is 3 times 9?", "--estimate", "--json"]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    shown = json.loads(capsys.readouterr().out)
    assert exit_.value.code == 0 and shown["history"] == runs
    assert shown["enough"] is (runs >= MIN_HISTORY)
    assert bool(embedded) is shown["enough"]
