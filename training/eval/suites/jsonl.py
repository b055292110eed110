"""User suites from JSONL files (``jsonl:<path>``), scored by a named string checker."""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from . import JSONL_PREFIX, Loader, SuiteError, Task, Verdict
from .answers import answer_candidates, too_long


def _exact(answer: str, gold: str) -> bool:
    return answer.strip().casefold() == gold.strip().casefold()


def _contains(answer: str, gold: str) -> bool:
    return gold.strip().casefold() in answer.casefold()


def _numeric(answer: str, gold: str) -> bool:
    for form in answer_candidates(answer):
        try:
            if abs(float(form.replace(",", "")) - float(gold)) <= 1e-6 * max(1.0, abs(float(gold))):
                return True
        except ValueError:
            continue
    return False


def _regex(answer: str, gold: str) -> bool:
    return re.search(gold, answer) is not None


CHECKERS: dict[str, Callable[[str, str], bool]] = {
    "exact": _exact,
    "contains": _contains,
    "numeric": _numeric,
    "regex": _regex,
}


def jsonl_loader(name: str) -> Loader:
    """The loader of the suite ``jsonl:<path>``: one task per line, checked as it loads."""
    path = Path(name[len(JSONL_PREFIX) :]).expanduser()

    def load(limit: int | None = None, seed: int = 0) -> list[Task]:
        if not path.is_file():
            raise SuiteError(f"{path}: no such file; give jsonl:<path of a JSONL file>")
        tasks = []
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SuiteError(f"{path}:{n}: not JSON ({exc.msg})") from None
            if not isinstance(row, dict) or not isinstance(row.get("question"), str):
                raise SuiteError(f'{path}:{n}: each line needs a "question" string')
            checker = row.get("checker", "exact")
            if checker not in CHECKERS:
                names = ", ".join(CHECKERS)
                raise SuiteError(f"{path}:{n}: unknown checker {checker!r}; use one of {names}")
            gold = str(row.get("answer", row.get("gold", "")))
            if not gold:
                raise SuiteError(f'{path}:{n}: each line needs an "answer"')
            task_id = str(row.get("id", f"jsonl-{len(tasks):04d}"))
            tasks.append(Task(task_id, name, row["question"], gold, {"checker": checker}))
        if len({t.id for t in tasks}) != len(tasks):
            raise SuiteError(f"{path}: task ids are not unique")
        if seed:
            random.Random(seed).shuffle(tasks)
        return tasks

    return load


def jsonl_check(task: Task, answer: str, record: Mapping[str, Any] | None) -> Verdict:
    """Score ``answer`` with the checker the task's line named (``exact`` by default).

    Under ``contains`` an answer longer than ``MAX_ANSWER_WORDS`` words is wrong: a passage is
    not an answer (``answers.py``).
    """
    checker = task.data.get("checker", "exact")
    if checker == "contains" and (long := too_long(answer)):
        return Verdict(False, 0.0, long)
    ok = CHECKERS[checker](answer, task.gold)
    return Verdict(ok, float(ok), f"{checker} vs {task.gold!r}")
