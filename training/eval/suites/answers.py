"""Readings of a free-text answer, shared by the math and JSONL checkers."""

from __future__ import annotations

import re

_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?(?:/\d+)?")
_BOXED = re.compile(r"\\boxed\{([^{}]*)\}")
_WHOLE = re.compile(r"(-?\d+)\.0+")  # 42.0: what Python prints for a whole-number division
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
