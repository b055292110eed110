"""The learning mixture: held-out and training tasks never share an article or a question."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import pytest

from podium.training.eval import suites
from podium.training.eval.suites.chat import chat_check, chat_tasks
from podium.training.eval.suites.mixture import interleave, part_sizes
from podium.training.synth.code_tasks import code_tasks
from podium.training.synth.mixture import (
    OverlapError,
    assert_disjoint,
    drop_overlap,
    evidence_titles,
    train_arithmetic,
    train_mixture,
)

T = suites.Task


def test_overlap_is_refused_and_dropped():
    heldout = [T("h1", "wiki", "Where is Paris?", "France", {"title": "Paris"})]
    train = [
        T("t1", "wiki", "Paris has ____ people.", "2", {"title": "Paris"}),  # same article
        T("t2", "chat", "Where is Paris?"),  # same question
        T("t3", "wiki", "Rome was founded in ____.", "753", {"title": "Rome"}),
    ]
    with pytest.raises(OverlapError, match="share the article 'Paris'"):
        assert_disjoint(train, heldout)
    with pytest.raises(OverlapError, match="t2 is a held-out question"):
        assert_disjoint(train[1:], heldout)
    kept = drop_overlap(train, heldout)
    assert [t.id for t in kept] == ["t3"]
    assert_disjoint(kept, heldout)


def test_training_mixture_is_disjoint_from_every_heldout_task():
    train = train_mixture(40, seed=0)
    heldout = suites.load_suite("mixture", limit=60, seed=0)
    assert_disjoint(train, heldout)
    # every wiki evaluation article is excluded, not only those of one sample
    assert not evidence_titles(train) & evidence_titles(suites.load_suite("wiki"))
    assert Counter(t.suite for t in train) == {"wiki": 12, "chat": 12, "math": 10, "code": 6}
    facts = [t for t in train if t.suite == "wiki"]
    assert len({t.data["relation"] for t in facts}) >= 5  # relations in turn, none dominates


def test_fact_questions_name_their_article_and_its_intro_holds_the_answer():
    import json

    from podium.tools.retrieval import corpus_file
    from podium.training.eval.suites.wiki import normalise
    from podium.training.synth.wiki_facts import wiki_facts

    corpus = json.loads(corpus_file().read_text(encoding="utf-8"))
    facts = wiki_facts(30, seed=3, exclude=set())
    assert len(facts) == 30 and len({t.data["title"] for t in facts}) == 30
    for t in facts:
        name = t.data["title"].split(" (")[0]
        assert name in t.question and "____" not in t.question
        assert normalise(t.gold) in normalise(corpus[t.data["title"]]["extract"])
        assert normalise(t.gold) not in normalise(name)  # the question does not give it away


def test_arith_train_extends_the_mixtures_arithmetic_under_the_same_ids():
    mixed = [t for t in train_mixture(60, seed=0) if t.id.startswith("arith-")]
    fresh = "from podium.training.eval import suites; print(suites.suite_names())"
    named = subprocess.run([sys.executable, "-c", fresh], capture_output=True, text=True)
    assert "'arith-train'" in named.stdout  # named before its module is imported
    more = suites.load_suite("arith-train", limit=45, seed=0)
    assert len(more) == 45 and len({t.id for t in more}) == 45
    assert [(t.id, t.question) for t in more[: len(mixed)]] == [(t.id, t.question) for t in mixed]
    assert_disjoint(more, suites.load_suite("math", limit=200))
    assert train_arithmetic(45)[20].question == more[20].question


def test_heldout_mixture_keeps_each_suite_and_its_shares():
    tasks = suites.load_suite("mixture", limit=20, seed=0)
    assert Counter(t.suite for t in tasks) == part_sizes(20) == {
        "wiki": 6, "math": 5, "code": 3, "chat": 6,
    }  # fmt: skip
    assert len({t.id for t in tasks}) == 20


def test_part_sizes_and_interleave():
    assert sum(part_sizes(7).values()) == 7 and min(part_sizes(7).values()) >= 1
    parts = {"a": [T(f"a{i}", "x", "") for i in range(4)], "b": [T("b0", "x", "")]}
    assert [t.id for t in interleave(parts)] == ["a0", "a1", "b0", "a2", "a3"]


def test_chat_splits_are_disjoint_and_checked_short():
    held, train = chat_tasks("heldout"), chat_tasks("train")
    assert not {t.question for t in held} & {t.question for t in train}
    task = next(t for t in held if t.gold == "cold")
    assert chat_check(task, "Cold.", None).correct
    assert not chat_check(task, "coldness", None).correct  # a whole word, not a substring
    assert not chat_check(task, "cold " + "word " * 30, None).correct  # rambling
    assert not chat_check(task, "", None).correct


@pytest.mark.parametrize("index", range(4))
def test_generated_code_tasks_fail_a_wrong_function(index):
    from podium.training.eval.suites.code import program_for

    task = code_tasks(4, seed=1)[index]
    name = task.data["entry_point"]
    assert "check(candidate)" in task.data["test"] and name in task.question
    program = program_for(task, "```python\ndef " + name + "(*a):\n    return 12345\n```")
    namespace: dict = {}
    with pytest.raises(AssertionError):
        exec(program, namespace)  # a wrong function fails the generated tests
