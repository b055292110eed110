"""The data-package suites: wiki (fanoutqa ∩ local corpus) and fc (BFCL AST); tau2 has its own."""

from __future__ import annotations

import json

from podium.training.eval import suites as T
from podium.training.eval.runner import RESULTS, EvalConfig, evaluate


def _record(*calls):
    return {"policy_turns": [{"calls": [{"tool": n, "args": a} for n, a in calls]}]}


def test_wiki_questions_are_answerable_from_the_corpus():
    from podium.tools.retrieval import corpus_file
    from podium.training.eval.suites.wiki import normalise

    tasks = T.load_suite("wiki")
    assert len(tasks) >= 50 and len({t.question for t in tasks}) == len(tasks)
    corpus = json.loads(corpus_file().read_text())
    for task in tasks:
        assert normalise(task.gold) in normalise(corpus[task.data["title"]]["extract"])
    asia = next(t for t in tasks if t.question == "Find the largest continent")
    assert T.check(asia, "It is Asia.").correct and not T.check(asia, "Africa").correct
    k2 = next(t for t in tasks if t.question == "What is the height of K2?")
    assert T.check(k2, "K2 is 8611 m high").correct  # thousands separators do not matter
    assert T.load_suite("wiki", limit=5, seed=2) != tasks[:5]


def test_wiki_scores_a_short_answer_not_the_evidence_passage():
    from podium.tools.retrieval import corpus_file
    from podium.training.eval.suites.answers import MAX_ANSWER_WORDS

    corpus = json.loads(corpus_file().read_text())
    asia = next(t for t in T.load_suite("wiki") if t.question == "Find the largest continent")
    passage = corpus[asia.data["title"]]["extract"]  # what local_search returns: it holds "Asia"
    verdict = T.check(asia, passage)
    assert not verdict.correct and "words" in verdict.detail
    padded = " ".join(["so"] * (MAX_ANSWER_WORDS - 1) + ["Asia"])
    assert T.check(asia, padded).correct and not T.check(asia, "and " + padded).correct


def test_fc_mixes_categories_and_matches_calls_by_ast():
    tasks = T.load_suite("fc", limit=6)
    assert [t.data["category"] for t in tasks[:3]] == ["simple_python", "multiple", "parallel"]
    fact = next(t for t in tasks if t.id == "fc-simple_python_1")
    assert [tool.name for tool in T.suite_tools(fact)] == ["math_factorial"]
    assert T.check(fact, "", _record(("math_factorial", {"number": 5}))).correct
    wrong = T.check(fact, "", _record(("math_factorial", {"number": 6})))
    assert not wrong.correct and "number" in wrong.detail
    assert not T.check(fact, "120", None).correct  # prose is not a function call
    songs = next(t for t in tasks if t.id == "fc-parallel_0")
    both = [("spotify_play", {"artist": "Maroon 5", "duration": 15}),
            ("spotify_play", {"artist": "Taylor Swift", "duration": 20})]  # fmt: skip
    assert T.check(songs, "", _record(*both)).correct  # any order
    assert not T.check(songs, "", _record(both[0])).correct


def test_fc_run_binds_the_entrys_functions(fake_graph, tmp_path):
    call = '{"name": "calculate_triangle_area", "arguments": {"base": 10, "height": 5}}'
    policy, ctx = fake_graph([call, "25", "I cannot help."], [])
    summary = evaluate(EvalConfig("fc", tmp_path, limit=2, context=ctx, progress=False))
    rows = {r["task_id"]: r for r in map(json.loads, (tmp_path / RESULTS).read_text().splitlines())}
    assert policy.bound[0] == ["answer", "calculate_triangle_area"]  # the entry's function
    assert rows["fc-simple_python_0"]["correct"], rows["fc-simple_python_0"]["detail"]
    assert rows["fc-simple_python_0"]["tool_calls"] == ["calculate_triangle_area"]
    assert rows["fc-multiple_0"]["detail"] == "the policy made no function call"
    assert summary["routers"]["policy"]["correct"] == 1
