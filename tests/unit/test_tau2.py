"""The tau2 suite with a scripted policy and a scripted customer: tau2's own tools and scoring."""

from __future__ import annotations

import json

import pytest
from langchain_core.messages import AIMessage

from podium.graph.testing import FakePolicy
from podium.training.eval import suites as T
from podium.training.eval.runner import RESULTS, EvalConfig, EvalError, evaluate
from podium.training.eval.suites import tau2 as S

TASK = "tau2-airline-011"  # update_reservation_flights; must say "5244" (the price difference)


def _call(name: str, args: dict, n: int = 0) -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": f"c{n}"}])


def _gold_script(raw) -> list[AIMessage]:
    """The policy's turns that replay the gold actions, then tell the customer what it must."""
    calls = [_call(a.name, a.arguments, i) for i, a in enumerate(raw.evaluation_criteria.actions)]
    said = " ".join(raw.evaluation_criteria.communicate_info)
    return [*calls, _call("answer", {"text": f"Done. You pay {said} dollars."}, 99)]


@pytest.fixture
def tau2(monkeypatch, fake_graph, tmp_path):
    """``setup(policy_script, customer_script) -> (EvalConfig, customer, policy)``: one task."""
    monkeypatch.setenv(S.BASE_URL_ENV, "http://127.0.0.1:9/v1")

    def setup(script, customer_says):
        policy, ctx = fake_graph(script, [])
        customer = FakePolicy(script=list(customer_says))
        monkeypatch.setattr(S, "user_simulator_model", lambda: customer)
        # One task of tau2 as its own suite: tau2's checker and dialogue, tau2 itself untouched.
        T.register_suite("tau2-one", lambda limit=None, seed=0: [_task()], S._check,
                         dialogue=S.Tau2Dialogue)  # fmt: skip
        cfg = EvalConfig("tau2-one", tmp_path / "out", context=ctx, progress=False)
        return cfg, customer, policy

    return setup


def _task() -> T.Task:
    raw = S.tau2_tasks("airline")["11"]
    return S._task("airline", raw)


def _row(cfg) -> dict:
    evaluate(cfg)
    (row,) = [json.loads(line) for line in (cfg.out / RESULTS).read_text().splitlines()]
    return row


def test_replaying_the_gold_actions_and_saying_the_facts_scores_1(tau2):
    raw = S.tau2_tasks("airline")["11"]
    says = ["I need to change my flights.", "Thanks! ###STOP###"]
    cfg, customer, policy = tau2(_gold_script(raw), says)
    row = _row(cfg)
    assert row["task_id"] == TASK and row["status"] == "ok"
    assert row["correct"] and row["score"] == 1.0, row["detail"]
    assert row["termination"] == S.USER_STOP
    assert row["tool_calls"] == ["update_reservation_flights"]
    roles = [m["role"] for m in row["dialogue"]]
    assert roles == ["assistant", "user", "assistant", "tool", "assistant", "user"]
    # the customer saw the greeting and the agent's reply, never the tool traffic
    seen = [m.content for m in customer.prompts[-1][1:]]
    assert seen[0] == S.GREETING and "5244" in seen[2] and len(seen) == 3
    # the policy was briefed with the domain's policy and offered tau2's tools
    first = str(policy.prompts[0][1].content)
    assert "<policy>" in first and "I need to change my flights." in first
    assert {"update_reservation_flights", "get_user_details", "answer"} <= set(policy.bound[0])
    assert len(row["trajectory_ids"]) == 1
    # the static report reads a conversation suite's rows like any other
    from podium.studio.reports import write_report

    page = write_report(cfg.out).read_text()
    assert "tau2" in page and TASK in page
    assert '<details class="dialogue"><summary>2 customer messages, ended by user_stop' in page
    assert "update_reservation_flights(" in page and "<b>customer:</b> I need to" in page


def test_doing_nothing_leaves_the_database_unlike_gold(tau2):
    said = _call("answer", {"text": "Sorry, I cannot help with that."})
    cfg, *_ = tau2([said], ["Change my flights please.", "###STOP###"])
    row = _row(cfg)
    assert row["status"] == "ok" and not row["correct"]
    assert "database differs from gold" in row["detail"] and "5244" in row["detail"]


def test_wrong_arguments_are_scored_on_the_database(tau2):
    raw = S.tau2_tasks("airline")["11"]
    script = _gold_script(raw)
    args = dict(script[0].tool_calls[0]["args"], cabin="business")
    script[0] = _call("update_reservation_flights", args)
    cfg, *_ = tau2(script, ["Change my flights.", "###STOP###"])
    row = _row(cfg)
    assert not row["correct"] and "database differs" in row["detail"]


def test_a_customer_who_never_stops_scores_0(tau2, monkeypatch):
    monkeypatch.setattr(S, "MAX_USER_TURNS", 2)
    replies = [_call("answer", {"text": f"Reply {i}."}, i) for i in range(3)]
    cfg, *_ = tau2(replies, ["Hello?", "Hello again?", "Still there?"])
    row = _row(cfg)
    assert row["termination"] == "max_user_turns"
    assert not row["correct"] and "scored 0" in row["detail"]
    assert len(row["trajectory_ids"]) == 2  # one graph run per customer message, one thread


def test_a_customer_that_stops_at_once_runs_no_graph(tau2):
    cfg, *_ = tau2([], ["###STOP###"])
    row = _row(cfg)
    assert row["trajectory_ids"] == [] and row["termination"] == S.USER_STOP
    assert not row["correct"]  # the gold change was never made


def test_tool_errors_come_from_tau2_and_are_marked(tau2):
    bad = _call("get_reservation_details", {"reservation_id": "NOPE00"})
    said = _call("answer", {"text": "I could not find it."}, 1)
    cfg, *_ = tau2([bad, said], ["Look up NOPE00.", "###STOP###"])
    row = _row(cfg)
    assert row["tool_errors"] == 1
    tool_msg = next(m for m in row["dialogue"] if m["role"] == "tool")
    assert tool_msg["error"] and "not found" in tool_msg["content"]


def test_fixed_routers_cannot_hold_a_conversation(tau2):
    cfg, *_ = tau2([], [])
    cfg.routers = ["policy", "strongest"]
    with pytest.raises(EvalError, match="cannot hold a tau2-one conversation"):
        evaluate(cfg)


def test_tau2_is_skipped_without_a_user_simulator(monkeypatch):
    monkeypatch.delenv(S.BASE_URL_ENV, raising=False)
    with pytest.raises(T.SuiteSkipped, match="PODIUM_USER_SIM_BASE_URL"):
        T.load_suite("tau2")


def test_the_suite_interleaves_both_domains(monkeypatch):
    monkeypatch.setenv(S.BASE_URL_ENV, "http://127.0.0.1:9/v1")
    tasks = T.load_suite("tau2", limit=4)
    assert [t.data["domain"] for t in tasks] == ["airline", "retail"] * 2
    assert len(T.load_suite("tau2")) == 50 + 114
    assert T.load_suite("tau2", seed=3)[0].id != tasks[0].id


def test_the_checker_needs_a_transcript():
    with pytest.raises(T.CheckerError, match="no transcript"):
        T.check(_task(), "ok", {"policy_turns": []})
