"""Readings of a free-text answer, shared by the checkers: its candidate forms, its length."""

from __future__ import annotations

import re

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:/\d+)?")
_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")
_WHOLE = re.compile(r"(-?\d+)\.0+")  # 42.0: what Python prints for a whole-number division
MAX_ANSWER_WORDS = 30
"""Longest answer, in words, a containment checker scores; a longer one is wrong.

Containment asks whether the gold string occurs in the answer: in a passage it nearly always
does (a raw 500-word ``local_search`` result made every wiki task "solved"). A final answer is
short; a passage handed on as the answer is not one.
"""
_SAID = re.compile(r"(?:final answer|answer is|answer:)\s*[:=]?\s*\**\s*([^\n*]+)", re.IGNORECASE)


def answer_candidates(answer: str) -> list[str]:
    """Readings of a free-text answer: as written, boxed, after "answer is", the last number.

    A whole number written with a zero fraction (``42.0``) is also read as the integer.
    """
    text = answer.strip()
    found = [text]
    found += [m.strip() for m in _BOXED.findall(text)]
    found += [m.strip().rstrip(".") for m in _SAID.findall(text)]
    if numbers := _NUMBER.findall(text):
        found.append(numbers[-1].replace(",", ""))
    found += [m.group(1) for c in found if (m := _WHOLE.fullmatch(c))]
    return list(dict.fromkeys(c for c in found if c))


def too_long(answer: str) -> str | None:
    """Why ``answer`` is too long to be scored by containment, or None when it is short enough."""
    words = len(answer.split())
    if words <= MAX_ANSWER_WORDS:
        return None
    return (
        f"the answer has {words} words, more than the {MAX_ANSWER_WORDS} a final answer may have "
        "when scored by containment"
    )
