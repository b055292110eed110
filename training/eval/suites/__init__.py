"""The suite registry: what podium is evaluated and trained on.

A suite is a loader (``limit``, ``seed`` → tasks), a checker (task, answer, trajectory record →
verdict), an optional ``prepare`` (task, workdir → Context overrides) and, for suites whose tasks
are conversations (tau2), a ``dialogue`` (task → :class:`Dialogue`). Each suite lives in its own
module of this package (``math``, ``code``, ``wiki``, ``fc``, ``tau2``, ``toolscale``), which
registers it with :func:`register_suite` the first time the suite is named; user JSONL files are
named ``jsonl:<path>`` (:mod:`.jsonl`), and a trajectory store's past runs ``store:<path>``
(:mod:`.stored`).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from podium.tools.errors import UserError


@dataclass(frozen=True)
class Task:
    """One question of a suite, with what its checker needs."""

    id: str
    suite: str
    question: str
    gold: str = ""
    data: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    """A checker's judgement of one answer."""

    correct: bool
    score: float
    detail: str = ""


class SuiteError(UserError, ValueError):
    """A user mistake naming a suite or its data (unknown suite, bad JSONL)."""


class SuiteSkipped(SuiteError):
    """A suite that cannot run in this setup (e.g. tau2 without a user simulator); not a failure."""


class CheckerError(RuntimeError):
    """A checker itself broke; the evaluation marks the task as an error."""


class Dialogue(Protocol):
    """A conversation task: the runner asks the graph each question on one thread."""

    tools: list[Any]  # offered instead of the pool

    def opening(self) -> str | None:
        """The first question (None when the conversation ended before any)."""
        ...

    def reply(self, answer: str) -> str | None:
        """The next question after the graph's ``answer``, or None when the conversation ended."""
        ...

    def end(self, reason: str) -> None:
        """End the conversation early (the graph's run failed)."""
        ...

    def record(self) -> dict[str, Any]:
        """What the checker scores in place of a trajectory record."""
        ...


Loader = Callable[..., list[Task]]
Checker = Callable[[Task, str, Mapping[str, Any] | None], Verdict]
Preparer = Callable[[Task, Path], dict[str, Any]]
ToolsHook = Callable[[Task], list[Any]]
DialogueHook = Callable[[Task], Dialogue]


@dataclass(frozen=True)
class _Suite:
    loader: Loader
    checker: Checker
    prepare: Preparer | None = None
    tools: ToolsHook | None = None
    dialogue: DialogueHook | None = None


_SUITES: dict[str, _Suite] = {}
# Suites registered by their own modules, imported the first time they are named.
_LAZY = {
    name: f"{__name__}.{name}"
    for name in ("math", "code", "wiki", "fc", "tau2", "toolscale", "chat", "mixture")
} | {
    "mixture-train": f"{__name__}.mixture",
    "arith-train": f"{__name__}.mixture",
    "toolscale-train": f"{__name__}.toolscale",
}
JSONL_PREFIX = "jsonl:"


def register_suite(
    name: str,
    loader: Loader,
    checker: Checker,
    prepare: Preparer | None = None,
    tools: ToolsHook | None = None,
    dialogue: DialogueHook | None = None,
) -> None:
    """Register (or replace) the suite ``name``.

    ``tools(task)``, when given, returns the tools a run of ``task`` offers instead of the
    profile's pool (BFCL tasks bring their own functions). ``dialogue(task)``, when given,
    makes each task a conversation (its tools replace the pool too).
    """
    _SUITES[name] = _Suite(loader, checker, prepare, tools, dialogue)


def suite_error(suite: str, package: str, fix: str) -> SuiteError:
    """The one-line error of a suite whose data package is missing."""
    return SuiteError(f"suite {suite!r} needs the package {package}: {fix}")


def suite_names() -> list[str]:
    """Names of the known suites (user JSONL files are named ``jsonl:<path>``)."""
    return sorted(set(_SUITES) | set(_LAZY))


def _suite(name: str) -> _Suite:
    if name.startswith(JSONL_PREFIX):
        from .jsonl import jsonl_check, jsonl_loader

        return _Suite(jsonl_loader(name), jsonl_check)
    if name.startswith("store:"):
        from .stored import stored_check, stored_loader

        return _Suite(stored_loader(name), stored_check)
    if name not in _SUITES and name in _LAZY:
        try:
            importlib.import_module(_LAZY[name])
        except ModuleNotFoundError as exc:
            if exc.name != _LAZY[name]:
                raise
            raise SuiteError(f"suite {name!r} is not available in this install") from None
    if name not in _SUITES:
        known = ", ".join(suite_names())
        raise SuiteError(f"unknown suite {name!r}: use one of {known}, or jsonl:<file>")
    return _SUITES[name]


def load_suite(name: str, *, limit: int | None = None, seed: int = 0) -> list[Task]:
    """The tasks of suite ``name``: at most ``limit``, stable for a given ``seed``."""
    if limit is not None and limit < 1:
        raise SuiteError(f"--limit must be at least 1, got {limit}")
    tasks = _suite(name).loader(limit=limit, seed=seed)
    return tasks[:limit] if limit is not None else tasks


def check(task: Task, answer: str, record: Mapping[str, Any] | None = None) -> Verdict:
    """Judge ``answer`` to ``task``; ``record`` is the run's trajectory record when known.

    Raises:
        CheckerError: the checker itself failed (not the answer).
    """
    checker = _suite(task.suite).checker
    try:
        return checker(task, answer or "", record)
    except CheckerError:
        raise
    except Exception as exc:
        raise CheckerError(f"checker of {task.suite} failed on {task.id}: {exc!r}") from exc


def prepare(task: Task, workdir: Path) -> dict[str, Any]:
    """Context overrides for the run of ``task`` (a suite may set up files in ``workdir``)."""
    hook = _suite(task.suite).prepare
    return dict(hook(task, workdir)) if hook else {}


def suite_tools(task: Task) -> list[Any] | None:
    """The tools a run of ``task`` offers instead of the pool, or None for the pool."""
    hook = _suite(task.suite).tools
    return list(hook(task)) if hook else None


def dialogue(task: Task) -> Dialogue | None:
    """A fresh conversation for ``task``, or None when the suite asks one question per task."""
    hook = _suite(task.suite).dialogue
    return hook(task) if hook else None


def converses(suite: str) -> bool:
    """Whether the tasks of ``suite`` are conversations."""
    return _suite(suite).dialogue is not None


def brings_tools(suite: str) -> bool:
    """Whether the runs of ``suite`` offer the tasks' own tools instead of the pool."""
    found = _suite(suite)
    return found.tools is not None or found.dialogue is not None
