"""The training side of the ``mixture``: synthesized tasks on which different tools win.

Nothing here is human-written evaluation data. Wikipedia facts are single-hop questions
about a named article made from the packaged intros (:mod:`.wiki_facts`: the answer is
written in the intro, so ``local_search`` finds it); arithmetic, counting and word problems
come from reasoning-gym's generators under other seeds; code tasks are small functions with
tests generated here (:mod:`.code_tasks`); rephrasing and small talk are the ``chat``
lists' training half. A training task that shares an evidence article or a question with a
held-out task is dropped, and :func:`assert_disjoint` checks it.
"""

from __future__ import annotations

from collections.abc import Iterable

from podium.training.eval.suites import Task, load_suite
from podium.training.eval.suites.chat import chat_tasks
from podium.training.eval.suites.math import reasoning_gym_tasks
from podium.training.eval.suites.mixture import interleave, part_sizes

from .code_tasks import code_tasks
from .wiki_facts import wiki_facts

TRAIN_SEED = 10_000
"""Added to the run's seed for every generator, so training never draws an evaluation seed."""
ARITHMETIC = ("basic_arithmetic", "chain_sum", "letter_counting", "gsm_symbolic")


class OverlapError(AssertionError):
    """A training task shares an article or a question with a held-out task."""


def evidence_titles(tasks: Iterable[Task]) -> set[str]:
    """The Wikipedia articles tasks rest on."""
    return {t.data["title"] for t in tasks if t.data.get("title")}


def arithmetic(n: int, seed: int) -> list[Task]:
    """``n`` reasoning-gym tasks cycling over :data:`ARITHMETIC`, scored as ``math`` is."""
    return reasoning_gym_tasks(ARITHMETIC, n, seed, "arith")


def assert_disjoint(train: Iterable[Task], heldout: Iterable[Task]) -> None:
    """Refuse a training set that shares an evidence article or a question with held-out tasks.

    Raises:
        OverlapError: naming the first shared article or question.
    """
    train, heldout = list(train), list(heldout)
    shared = evidence_titles(train) & evidence_titles(heldout)
    if shared:
        raise OverlapError(f"training and held-out tasks share the article {min(shared)!r}")
    questions = {t.question for t in heldout}
    repeated = [t.id for t in train if t.question in questions]
    if repeated:
        raise OverlapError(f"training task {repeated[0]} is a held-out question")


def drop_overlap(train: list[Task], heldout: list[Task]) -> list[Task]:
    """``train`` without the tasks sharing an evidence article or a question with ``heldout``."""
    titles = evidence_titles(heldout)
    questions = {t.question for t in heldout}
    return [t for t in train if t.data.get("title") not in titles and t.question not in questions]


def train_arithmetic(size: int, seed: int = 0) -> list[Task]:
    """``size`` tasks of the training mixture's arithmetic part, disjoint from held-out math.

    The generators are prefix-stable, so the first tasks are the mixture's own, under the
    same ids: runs of both land on the same task in a store. The learning loop adds these
    so that ``python`` runs are not outnumbered by the habit of naming an expert (run 11).
    """
    heldout = load_suite("math", limit=200)
    train = drop_overlap(arithmetic(size, seed + TRAIN_SEED), heldout)
    assert_disjoint(train, heldout)
    return train


def train_mixture(size: int, seed: int = 0) -> list[Task]:
    """``size`` training tasks in the held-out mixture's shares, disjoint from every held-out task.

    Every ``wiki`` task's article is excluded (not only a sample's), so no choice of held-out
    tasks can share one with training.
    """
    sizes = part_sizes(size)
    heldout = load_suite("wiki") + load_suite("math", limit=200) + load_suite("chat")
    s = seed + TRAIN_SEED
    parts = {
        "wiki": wiki_facts(sizes["wiki"], s, evidence_titles(heldout)),
        "math": arithmetic(sizes["math"], s),
        "code": code_tasks(sizes["code"], s),
        "chat": chat_tasks("train", s)[: sizes["chat"]],
    }
    parts = {k: drop_overlap(v, heldout) for k, v in parts.items()}
    train = interleave(parts)
    assert_disjoint(train, heldout)
    return train
