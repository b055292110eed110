"""Single-hop fact questions about named articles, made from the packaged Wikipedia intros.

The held-out ``wiki`` suite asks FanOutQA's single-hop sub-questions ("What is the headquarter
of Microsoft?", "What was the founding year of …?"). Training on questions of that shape —
not on a quoted sentence with a blank, which a small policy answers by searching for the
number beside the blank — teaches the behaviour that transfers: name the article in a short
``local_search`` query, read the passage, answer in a few words.

Each :data:`RELATIONS` entry is a pattern over an intro's first sentences and the question
it answers; the gold is the matched text, so every answer is written in its intro (a search
for the title finds it). Relations are drawn in turn, so no easy one (nationality, which a
model often knows by heart) dominates.
"""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass

from podium.training.eval.suites import Task

_NAME = r"[A-Z][\w'’.-]*(?:\s+(?:de\s+|of\s+|the\s+)?[A-Z][\w'’.-]*)*"
_YEAR_AFTER = r"(?:in|on) (?:\d{1,2} )?(?:[A-Z][a-z]+ )?(?:\d{1,2}, )?(\d{4})\b"
_NATIONS = (
    "American|British|English|French|German|Italian|Spanish|Russian|Chinese|Japanese|Indian|"
    "Canadian|Australian|Dutch|Swedish|Polish|Austrian|Greek|Scottish|Irish|Brazilian|Mexican|"
    "Argentine|Norwegian|Danish|Belgian|Swiss|Portuguese|Hungarian|Czech|Korean|Egyptian"
)
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class Relation:
    """A fact an intro states and the question asking for it.

    ``question`` is formatted with the article's ``title`` and the pattern's groups before the
    answer group (``verb``); the last group is the gold answer.
    """

    name: str
    pattern: re.Pattern[str]
    question: str
    subject_first: bool = True  # the sentence must be about the article (starts with its title)


RELATIONS = (
    Relation(
        "founded",
        re.compile(r"\b(founded|established) " + _YEAR_AFTER),
        "In what year was {title} {verb}?",
    ),
    Relation(
        "made",
        re.compile(
            r"\b(written|composed|painted|built|released|published|completed|discovered|opened)"
            r" (?:by [^,.]{1,40} )?in (\d{4})\b"
        ),
        "In what year was {title} {verb}?",
    ),
    Relation(
        "headquarters",
        re.compile(r"\bheadquartered in (" + _NAME + ")"),
        "Where is {title} headquartered?",
    ),
    Relation(
        "capital_of",
        re.compile(r"\bis the capital(?: and (?:the )?largest city)? of (?:the )?(" + _NAME + ")"),
        "{title} is the capital of which country or region?",
    ),
    Relation(
        "capital",
        re.compile(r"\b[Ii]ts capital(?: and largest city)? is (" + _NAME + ")"),
        "What is the capital of {title}?",
        subject_first=False,
    ),
    Relation(
        "located",
        re.compile(r"\b(?:located|situated) (?:in|on) (?:the )?(" + _NAME + ")"),
        "Where is {title} located?",
    ),
    Relation(
        "nationality",
        re.compile(r"^[^.]{0,60}? (is|was) an? (" + _NATIONS + r") [a-z]+"),
        "What nationality {verb} {title}?",
    ),
)  # fmt: skip


def _fact(title: str, intro: str, relation: Relation) -> tuple[str, str] | None:
    """The question and gold answer ``relation`` makes of ``intro``, if it states one."""
    name = title.split(" (")[0]  # "Nirvana (band)" is asked about as "Nirvana"
    for sentence in _SENTENCE.split(intro)[:3]:
        if relation.subject_first and not sentence.startswith(name.split(",")[0]):
            continue
        if match := relation.pattern.search(sentence):
            *rest, gold = match.groups()
            gold = gold.strip().rstrip(".")
            given = name.split(",")[0].casefold()
            if not gold or given in gold.casefold() or gold.casefold() in given:
                return None  # "Toyota City" for Toyota: the question gives it away
            question = relation.question.format(title=name, verb=rest[0] if rest else "")
            return question, gold
    return None


def wiki_facts(n: int, seed: int, exclude: set[str]) -> list[Task]:
    """``n`` fact questions about intros whose title is not in ``exclude``, relations in turn."""
    from podium.tools.retrieval import corpus_file

    corpus = json.loads(corpus_file().read_text(encoding="utf-8"))
    titles = sorted(t for t in corpus if t not in exclude)
    random.Random(seed).shuffle(titles)
    found: dict[str, list[Task]] = {r.name: [] for r in RELATIONS}
    for title in titles:
        intro = corpus[title].get("extract", "")
        for relation in RELATIONS:
            fact = _fact(title, intro, relation)
            if fact is not None:
                question, gold = fact
                data = {"title": title, "relation": relation.name}
                found[relation.name].append(Task("", "wiki", question, gold, data))
                break  # one question per article
    drawn: list[Task] = []
    queues = [list(tasks) for tasks in found.values()]
    while len(drawn) < n and any(queues):
        for queue in queues:
            if queue and len(drawn) < n:
                drawn.append(queue.pop(0))
    return [Task(f"fact-{i:04d}", t.suite, t.question, t.gold, t.data) for i, t in enumerate(drawn)]
