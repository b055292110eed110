"""The ``chat`` suite: rephrasing and small talk a policy should answer itself, no tool needed.

Each task is a one-word transformation (an antonym, a plural, a corrected spelling) or a
greeting that must name someone; its checker wants an accepted word in a short answer. The word
lists are split in two by position: even entries are held out for evaluation (this suite),
odd ones are what ``training/synth/mixture.py`` trains on, so no word is in both.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from . import Task, Verdict, register_suite
from .answers import MAX_ANSWER_WORDS
from .wiki import normalise

ANTONYMS = (
    ("hot", "cold"), ("tall", "short"), ("early", "late"), ("happy", "sad"), ("empty", "full"),
    ("fast", "slow"), ("open", "closed"), ("heavy", "light"), ("rich", "poor"), ("wet", "dry"),
    ("loud", "quiet"), ("young", "old"), ("dark", "light"), ("hard", "soft"), ("thick", "thin"),
    ("clean", "dirty"), ("strong", "weak"), ("cheap", "expensive"), ("above", "below"),
    ("win", "lose"), ("push", "pull"), ("true", "false"), ("begin", "end"), ("buy", "sell"),
)  # fmt: skip
PLURALS = (
    ("child", "children"), ("mouse", "mice"), ("box", "boxes"), ("city", "cities"),
    ("knife", "knives"), ("tooth", "teeth"), ("woman", "women"), ("leaf", "leaves"),
    ("goose", "geese"), ("baby", "babies"), ("foot", "feet"), ("wolf", "wolves"),
    ("potato", "potatoes"), ("person", "people"), ("bus", "buses"), ("party", "parties"),
)  # fmt: skip
SPELLINGS = (
    ("recieve", "receive"), ("occured", "occurred"), ("seperate", "separate"),
    ("definately", "definitely"), ("adress", "address"), ("beleive", "believe"),
    ("calender", "calendar"), ("goverment", "government"), ("wierd", "weird"),
    ("tommorow", "tomorrow"), ("untill", "until"), ("begining", "beginning"),
    ("freind", "friend"), ("neccessary", "necessary"), ("truely", "truly"),
    ("arguement", "argument"),
)  # fmt: skip
NAMES = (
    "Maria", "Kenji", "Amara", "Lars", "Priya", "Tomasz", "Aisha", "Diego", "Ingrid", "Kwame",
    "Yuki", "Fatima", "Oskar", "Leila", "Mateo", "Sanna",
)  # fmt: skip

TEMPLATES = {
    "antonym": ("What is the opposite of the word '{0}'? Reply with one word.", ANTONYMS),
    "plural": ("What is the plural of '{0}'? Reply with one word.", PLURALS),
    "spelling": ("Correct the spelling of '{0}'. Reply with the corrected word only.", SPELLINGS),
    "greeting": ("Say good morning to {0} in one short, friendly sentence.", NAMES),
}


def chat_tasks(split: str, seed: int = 0) -> list[Task]:
    """The chat tasks of ``split`` (``heldout``: even list entries, ``train``: odd ones)."""
    offset = 0 if split == "heldout" else 1
    tasks = []
    for kind, (template, entries) in TEMPLATES.items():
        for i, entry in list(enumerate(entries))[offset::2]:
            word, gold = (entry, entry) if isinstance(entry, str) else entry
            tasks.append(
                Task(
                    id=f"chat-{kind}-{i:02d}",
                    suite="chat",
                    question=template.format(word),
                    gold=gold,
                    data={"kind": kind, "word": word},
                )
            )
    random.Random(seed).shuffle(tasks)
    return tasks


def chat_check(task: Task, answer: str, record: Mapping[str, Any] | None) -> Verdict:
    """Correct when the short answer holds the accepted word (case and punctuation ignored)."""
    words = len(answer.split())
    if words > MAX_ANSWER_WORDS:  # a rambling reply that happens to hold the word
        return Verdict(False, 0.0, f"{words} words: longer than {MAX_ANSWER_WORDS}")
    ok = bool(answer.strip()) and f" {normalise(task.gold)} " in f" {normalise(answer)} "
    return Verdict(ok, float(ok), f"expects {task.gold!r} in the answer")


def _load(limit: int | None = None, seed: int = 0) -> list[Task]:
    tasks = chat_tasks("heldout", seed)
    return tasks[:limit] if limit else tasks


register_suite("chat", _load, chat_check)
