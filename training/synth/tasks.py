"""Task synthesis for tool environments: sample intents, evolve them, verify them by execution.

A *base* intent is one state-changing or reporting tool of the domain with arguments sampled
from the database (the tool spec's ``intent`` phrase and ``sample`` rules). Intents evolve into
harder variants: a *constraint* replaces a record id by a description that only one record fits
(the policy must search first), a *chain* joins two intents (more steps). Every candidate is run
on a fresh copy of the pristine database; it is kept only when every gold action succeeds, a
state-changing task changes the database, a reporting task's information is in the tool output,
the answer is not already in the instruction, and it is not a duplicate. Drops are counted.
"""

from __future__ import annotations

import random
import re
import shutil
import sqlite3
import tempfile
from collections import Counter
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from podium.tools.environment import call_tool, db_hash, load_spec
from podium.tools.envspec import DomainSpec, ParamSpec, Row, SpecError, ToolSpec, evaluate
from podium.tools.errors import UserError

from .domains.kit import day, person

DIFFICULTY = {1: "easy", 2: "medium"}
MAX_ATTEMPTS_PER_TASK = 25


class SynthError(UserError, ValueError):
    """A synthesis input a user must fix (unknown domain, bad environment, bad task)."""


@dataclass
class Intent:
    """One tool call with its phrase in the instruction."""

    tool: str
    args: dict[str, Any]
    phrase: str
    searches: list[dict[str, Any]] = field(default_factory=list)  # calls needed before it


@dataclass
class Candidate:
    """A task before verification."""

    intents: list[Intent]
    evolution: str

    @property
    def actions(self) -> list[dict[str, Any]]:
        """The gold action sequence."""
        out: list[dict[str, Any]] = []
        for i in self.intents:
            out += [*i.searches, {"tool": i.tool, "args": i.args}]
        return out

    @property
    def instruction(self) -> str:
        """The user's instruction."""
        text = ", then ".join(i.phrase for i in self.intents)
        return f"Please {text}."


@dataclass
class Verified:
    """A candidate that passed execution, with what its checker needs."""

    instruction: str
    actions: list[dict[str, Any]]
    required: list[str]
    gold_hash: str
    touched: list[str]
    writes: bool
    evolution: str

    @property
    def difficulty(self) -> str:
        """Easy (1 action), medium (2) or hard (3 or more)."""
        return DIFFICULTY.get(len(self.actions), "hard")


_NUMBER = re.compile(r"-?\d[\d,]*(?:\.\d+)?")


def mentioned(required: str, text: str) -> bool:
    """Whether ``text`` mentions ``required``: a number equal to within a cent, else the words."""
    try:
        want = float(required)
    except ValueError:
        return required.strip().casefold() in text.casefold()
    return any(abs(float(n.replace(",", "")) - want) < 0.005 for n in _NUMBER.findall(text))


def table_rows(path: Path, spec: DomainSpec) -> dict[str, list[Row]]:
    """Every row of every domain table."""
    with closing(sqlite3.connect(path)) as db:
        db.row_factory = sqlite3.Row
        return {
            t.name: [Row(r) for r in db.execute(f"SELECT * FROM {t.name}")] for t in spec.tables
        }


def sample_value(
    p: ParamSpec, rng: random.Random, rows: dict[str, list[Row]], keys: dict[str, str]
) -> Any:
    """A value for ``p`` drawn by its ``sample`` rule (``keys``: table → key column)."""
    kind, _, rule = p.sample.partition(":")
    if kind == "key":
        name, _, where = rule.partition("?")
        keys_ = [r for r in rows[name] if not where or evaluate(where, {"r": r})]
        if not keys_:
            return None
        return rng.choice(keys_)[keys[name]]
    if kind == "col":
        name, column = rule.split(".")
        return rng.choice(sorted({r[column] for r in rows[name]}))
    if kind == "int":
        lo, hi = map(int, rule.split(":"))
        return rng.randint(lo, hi)
    if kind == "money":
        lo, hi = map(float, rule.split(":"))
        return float(rng.randrange(int(lo), int(hi) + 1, 5))
    if kind == "choice":
        return rng.choice(rule.split("|"))
    if kind == "email":
        return person(rng).lower().replace(" ", "_") + "@example.com"
    if kind == "name":
        return person(rng)
    if kind == "date":
        return day(rng, int(rule or 14))
    raise SpecError(f"parameter {p.name}: unknown sample rule {p.sample!r}")


class Synthesizer:
    """Samples, evolves and verifies tasks for one environment."""

    def __init__(self, env: Path, seed: int) -> None:
        self.env = env
        self.spec = load_spec(env)
        self.rng = random.Random(f"{self.spec.name}-tasks-{seed}")
        self.rows = table_rows(env, self.spec)
        self.keys = {t.name: t.key for t in self.spec.tables}
        self.intents = [t for t in self.spec.tools if t.intent]
        self.stats: Counter[str] = Counter()
        self._tmp = Path(tempfile.mkdtemp(prefix="podium-synth-"))

    def close(self) -> None:
        """Remove the scratch copies."""
        shutil.rmtree(self._tmp, ignore_errors=True)

    def _key_table(self, p: ParamSpec) -> str | None:
        return p.sample[4:].partition("?")[0] if p.sample.startswith("key:") else None

    def base(self) -> Intent | None:
        """One intent with sampled arguments."""
        tool = self.rng.choice(self.intents)
        args = {
            p.name: sample_value(p, self.rng, self.rows, self.keys) for p in tool.params if p.sample
        }
        if any(v is None for v in args.values()):
            return None
        slots = {}
        for p in tool.params:
            if p.name not in args:
                continue
            table = self._key_table(p)
            noun = self.spec.table(table).noun if table else ""
            slots[p.name] = f"{noun} {args[p.name]}" if table else p.fmt.format(args[p.name])
        return Intent(tool.name, args, tool.intent.format(**slots))

    def constrain(self, intent: Intent) -> Intent | None:
        """The intent with one record id replaced by a description only that record fits."""
        tool = self.spec.tool(intent.tool)
        for p in self.rng.sample(tool.params, len(tool.params)):
            table = self._key_table(p)
            if not table or f"{self.spec.table(table).noun} {intent.args[p.name]}" not in (
                intent.phrase
            ):
                continue
            found = self._describe(table, intent.args[p.name])
            if found:
                text, search = found
                label = f"{self.spec.table(table).noun} {intent.args[p.name]}"
                return Intent(
                    intent.tool,
                    intent.args,
                    intent.phrase.replace(label, text),
                    [*intent.searches, search],
                )
        return None

    def _describe(self, table: str, key: Any) -> tuple[str, dict[str, Any]] | None:
        t = self.spec.table(table)
        row = next(r for r in self.rows[table] if r[t.key] == key)
        searches = [
            s for s in self.spec.tools if s.steps[0].op == "search" and s.steps[0].table == table
        ]
        for search in self.rng.sample(searches, len(searches)):
            filters = [
                (c, prm)
                for c, op, prm in search.steps[0].where
                if op in ("=", "like") and t.column(c).phrase
            ]
            subsets = [[f] for f in filters] + [
                [a, b] for i, a in enumerate(filters) for b in filters[i + 1 :]
            ]
            for subset in subsets:
                matches = [r for r in self.rows[table] if all(r[c] == row[c] for c, _ in subset)]
                if len(matches) == 1:
                    text = " ".join(t.column(c).phrase.format(row[c]) for c, _ in subset)
                    args = {prm: row[c] for c, prm in subset}
                    return f"the {t.noun} {text}", {"tool": search.name, "args": args}
        return None

    def candidate(self) -> Candidate | str:
        """A base, constrained or chained candidate, or why none could be made."""
        first = self.base()
        if first is None:
            return "no valid arguments"
        roll = self.rng.random()
        if roll < 0.35:
            return Candidate([first], "base")
        if roll < 0.7:
            evolved = self.constrain(first)
            return Candidate([evolved], "constraint") if evolved else "no unique description"
        second = self.base()
        if second is None:
            return "no valid arguments"
        if self.rng.random() < 0.4:
            second = self.constrain(second) or second
        return Candidate([first, second], "chain")

    def verify(self, cand: Candidate) -> Verified | str:
        """Run the gold actions on a fresh copy; the verified task or the reason to drop it."""
        copy = self._tmp / "run.sqlite"
        shutil.copyfile(self.env, copy)
        before = db_hash(copy)
        required: list[str] = []
        observations = []
        read: set[str] = set()
        for action in cand.actions:
            result = call_tool(copy, action["tool"], action["args"])
            if not result.ok:
                return "gold action fails"
            observations.append(result.text)
            read |= set(result.read) | set(result.written)
            tool = self.spec.tool(action["tool"])
            if tool.intent and tool.name in {i.tool for i in cand.intents}:
                required += [_report(tool, r, result.scope) for r in tool.reports]
        after = db_hash(copy)
        writes = any(self.spec.tool(a["tool"]).writes for a in cand.actions)
        text = cand.instruction
        if writes and after == before:
            return "no effect on the database"
        if not writes and not required:
            return "nothing to verify"
        if any(not any(mentioned(r, o) for o in observations) for r in required):
            return "information unreachable"
        if any(mentioned(r, text) for r in required):
            return "answer in the instruction"
        return Verified(
            cand.instruction,
            cand.actions,
            list(dict.fromkeys(required)),
            after,
            sorted(read),
            writes,
            cand.evolution,
        )

    def run(self, n: int, accept: Callable[[Verified], bool] | None = None) -> list[Verified]:
        """Up to ``n`` verified, distinct tasks; ``self.stats`` counts kept and dropped."""
        kept: list[Verified] = []
        seen_text: set[str] = set()
        seen_actions: set[str] = set()
        for _ in range(n * MAX_ATTEMPTS_PER_TASK):
            if len(kept) >= n:
                break
            cand = self.candidate()
            if isinstance(cand, str):
                self.stats[cand] += 1
                continue
            result = self.verify(cand)
            if isinstance(result, str):
                self.stats[result] += 1
                continue
            signature = repr(result.actions)
            if result.instruction in seen_text or signature in seen_actions:
                self.stats["duplicate"] += 1
                continue
            if accept is not None and not accept(result):
                self.stats["rejected"] += 1
                continue
            seen_text.add(result.instruction)
            seen_actions.add(signature)
            kept.append(result)
        self.stats["kept"] = len(kept)
        return kept


def _report(tool: ToolSpec, expr: str, scope: dict[str, Any]) -> str:
    return tool.report_fmt.format(evaluate(expr, scope))
