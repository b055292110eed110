"""Tool environments: a SQLite database that carries its :class:`DomainSpec`, and its tools.

An environment file holds the domain's tables, the spec (table ``_podium_spec``) and a log of
every tool call made on it (``_podium_log``: which records each call read, saw in a search or
wrote). :func:`db_hash` is the canonical hash of the domain tables only, so two runs that leave
the same data hash equal whatever they looked at. Tool errors (a broken business rule, an
unknown id) are observations the policy reads, never exceptions out of the tool.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import Field, ValidationError, create_model

from podium.tools.errors import UserError

from .cost import ToolCost, Usage, with_cost
from .envspec import FUNCTIONS, DomainSpec, Row, SpecError, StepSpec, ToolSpec, evaluate, render

SPEC_TABLE = "_podium_spec"
LOG_TABLE = "_podium_log"
_SQL_TYPES = {"text": "TEXT", "integer": "INTEGER", "real": "REAL"}
_PY_TYPES = {"string": str, "integer": int, "number": float}
NOT_AN_ENV = "{path} is not a podium environment ({why}): rebuild it with podium synth env"


class EnvError(UserError, ValueError):
    """An environment file that is missing, corrupt or inconsistent; one line naming the fix."""


class ToolFailed(Exception):
    """A business rule refused the call; the message is the observation."""


@dataclass
class CallResult:
    """What one tool call did."""

    text: str
    ok: bool
    broken: bool = False  # failed inside the spec (bad expression, SQL), not by a business rule
    read: list[str] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)
    written: list[str] = field(default_factory=list)
    scope: dict[str, Any] = field(default_factory=dict)


def record_id(table: str, key: Any) -> str:
    """The id of a record in touched-sets: ``table/key``."""
    return f"{table}/{key}"


@contextmanager
def _connect(path: str | Path) -> Iterator[sqlite3.Connection]:
    with closing(sqlite3.connect(path, timeout=30)) as db:
        db.row_factory = sqlite3.Row
        yield db


def create_environment(path: Path, spec: DomainSpec, rows: Mapping[str, list[dict]]) -> None:
    """Write a new environment at ``path``: the schema, the rows and the spec.

    Raises:
        EnvError: rows that break the schema (unknown column, duplicate key, dangling
            reference, value outside ``choices``).
    """
    with _connect(path) as db:
        for t in spec.tables:
            cols = ", ".join(f"{c.name} {_SQL_TYPES[c.type]}" for c in t.columns)
            db.execute(f"CREATE TABLE {t.name} ({cols}, PRIMARY KEY ({t.key}))")
        db.execute(f"CREATE TABLE {SPEC_TABLE} (spec TEXT NOT NULL)")
        db.execute(
            f"CREATE TABLE {LOG_TABLE} (seq INTEGER PRIMARY KEY, tool TEXT, args TEXT, "
            "ok INTEGER, read TEXT, seen TEXT, written TEXT)"
        )
        db.execute(f"INSERT INTO {SPEC_TABLE} VALUES (?)", (spec.model_dump_json(),))
        for t in spec.tables:
            names = [c.name for c in t.columns]
            for row in rows.get(t.name, []):
                if unknown := set(row) - set(names):
                    raise EnvError(f"table {t.name}: unknown columns {sorted(unknown)}")
                for c in t.columns:
                    if c.choices and row.get(c.name) not in c.choices:
                        raise EnvError(f"table {t.name}: {c.name}={row.get(c.name)!r} not allowed")
                try:
                    db.execute(
                        f"INSERT INTO {t.name} ({', '.join(names)}) VALUES "
                        f"({', '.join('?' * len(names))})",
                        [row.get(n) for n in names],
                    )
                except sqlite3.IntegrityError as exc:
                    raise EnvError(f"table {t.name}: {exc}") from None
        for t in spec.tables:
            for c in t.columns:
                if c.ref:
                    ref_table, ref_col = c.ref.split(".")
                    bad = db.execute(
                        f"SELECT {c.name} FROM {t.name} WHERE {c.name} IS NOT NULL AND "
                        f"{c.name} NOT IN (SELECT {ref_col} FROM {ref_table}) LIMIT 1"
                    ).fetchone()
                    if bad:
                        raise EnvError(f"table {t.name}: {c.name}={bad[0]!r} not in {c.ref}")
        db.commit()


def load_spec(path: str | Path) -> DomainSpec:
    """The spec stored in the environment at ``path``.

    Raises:
        EnvError: a missing file, a file that is not SQLite, or one without a valid spec.
    """
    if not Path(path).is_file():
        raise EnvError(NOT_AN_ENV.format(path=path, why="no such file"))
    try:
        with _connect(path) as db:
            raw = db.execute(f"SELECT spec FROM {SPEC_TABLE}").fetchone()
        return _spec_of(raw[0])
    except (sqlite3.DatabaseError, TypeError, ValidationError, ValueError) as exc:
        why = " ".join(str(exc).split())[:160]
        raise EnvError(NOT_AN_ENV.format(path=path, why=why)) from None


@lru_cache(maxsize=64)
def _spec_of(raw: str) -> DomainSpec:
    return DomainSpec.model_validate_json(raw)


def db_hash(path: str | Path) -> str:
    """Canonical sha256 of the domain tables (rows sorted, values typed; logs excluded)."""
    spec = load_spec(path)
    digest = hashlib.sha256()
    with _connect(path) as db:
        for t in sorted(spec.tables, key=lambda t: t.name):
            cols = [c.name for c in t.columns]
            rows = db.execute(f"SELECT {', '.join(cols)} FROM {t.name} ORDER BY {t.key}")
            digest.update(json.dumps([t.name, cols]).encode())
            for row in rows:
                digest.update(json.dumps(list(row)).encode())
    return digest.hexdigest()


def call_log(path: str | Path) -> list[dict[str, Any]]:
    """Every tool call logged in the environment, in order."""
    with _connect(path) as db:
        rows = db.execute(f"SELECT * FROM {LOG_TABLE} ORDER BY seq").fetchall()
    return [
        {**dict(r), **{k: json.loads(r[k]) for k in ("args", "read", "seen", "written")}}
        for r in rows
    ]


def touched(path: str | Path) -> set[str]:
    """Records any logged call read by key, saw in a search, or wrote."""
    return {rid for c in call_log(path) for k in ("read", "seen", "written") for rid in c[k]}


class _Call:
    """The interpreter of one tool call inside one transaction."""

    def __init__(self, db: sqlite3.Connection, spec: DomainSpec, args: dict[str, Any]) -> None:
        self.db, self.spec = db, spec
        self.scope: dict[str, Any] = dict(args)
        self.result = CallResult("", ok=True)
        self.fns = {**FUNCTIONS, "new_id": self.new_id}

    def new_id(self, table: str, prefix: str) -> str:
        """The next key of ``table``: ``prefix`` + one more than its row count, zero-padded."""
        (n,) = self.db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()
        return f"{prefix}{n + 1:04d}"

    def ev(self, expr: str) -> Any:
        return evaluate(expr, self.scope, self.fns)

    def fail(self, step: StepSpec, default: str) -> None:
        raise ToolFailed(render(step.error, self.scope, self.fns) if step.error else default)

    def run(self, step: StepSpec) -> None:
        if step.op == "check":
            if not self.ev(step.expr):
                self.fail(step, f"not allowed: {step.expr}")
        elif step.op == "let":
            self.scope[step.name] = self.ev(step.expr)
        elif step.op == "get":
            t = self.spec.table(step.table)
            key = self.ev(step.key)
            row = self.db.execute(f"SELECT * FROM {t.name} WHERE {t.key} = ?", (key,)).fetchone()
            if row is None:
                self.fail(step, f"no {t.noun} with {t.key} {key!r}")
            self.scope[step.name or t.noun] = Row(row)
            self.result.read.append(record_id(t.name, key))
        elif step.op == "search":
            self.search(step)
        elif step.op == "update":
            t = self.spec.table(step.table)
            key = self.ev(step.key)
            values = {c: self.ev(e) for c, e in step.set.items()}
            sets = ", ".join(f"{c} = ?" for c in values)
            cur = self.db.execute(
                f"UPDATE {t.name} SET {sets} WHERE {t.key} = ?", [*values.values(), key]
            )
            if cur.rowcount != 1:
                self.fail(step, f"no {t.noun} with {t.key} {key!r}")
            self.result.written.append(record_id(t.name, key))
        elif step.op == "insert":
            t = self.spec.table(step.table)
            values = {c: self.ev(e) for c, e in step.set.items()}
            self.db.execute(
                f"INSERT INTO {t.name} ({', '.join(values)}) "
                f"VALUES ({', '.join('?' * len(values))})",
                list(values.values()),
            )
            self.scope[step.name or t.noun] = Row(values)
            self.result.written.append(record_id(t.name, values[t.key]))

    def search(self, step: StepSpec) -> None:
        t = self.spec.table(step.table)
        clauses, values = [], []
        for col, op, param in step.where:
            value = self.scope.get(param)
            if value in (None, ""):
                continue
            if op == "like":
                clauses.append(f"lower({col}) LIKE ?")
                values.append(f"%{str(value).lower()}%")
            else:
                clauses.append(f"{col} {op} ?")
                values.append(value)
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        order = f"ORDER BY {step.order}" if step.order else f"ORDER BY {t.key}"
        rows = self.db.execute(
            f"SELECT * FROM {t.name} {where} {order} LIMIT {step.limit}", values
        ).fetchall()
        self.scope[step.name or "results"] = [Row(r) for r in rows]
        self.result.seen += [record_id(t.name, r[t.key]) for r in rows]


def _observation(tool: ToolSpec, call: _Call, last: str) -> str:
    if tool.returns:
        return render(tool.returns, call.scope, call.fns)
    value = call.scope.get(last)
    if isinstance(value, list):
        if not value:
            return "No matching records."
        lines = [json.dumps(dict(r)) for r in value]
        return f"{len(value)} result(s):\n" + "\n".join(lines)
    return json.dumps(dict(value)) if isinstance(value, Row) else str(value)


def call_tool(path: str | Path, name: str, args: Mapping[str, Any]) -> CallResult:
    """Run tool ``name`` with ``args`` on the environment at ``path`` and log the call.

    A broken rule rolls the call's writes back and comes back as ``ok=False`` with the
    message as its text.

    Raises:
        EnvError: the environment is not valid or has no tool ``name``.
    """
    spec = load_spec(path)
    try:
        tool = spec.tool(name)
    except SpecError as exc:
        raise EnvError(f"{exc}: see its tools with podium synth env --domain {spec.name}") from None
    args = dict(args)
    bad = []
    for p in tool.params:
        value = args.setdefault(p.name, None if p.required else "")
        if value not in (None, ""):
            try:
                args[p.name] = _PY_TYPES[p.type](value)
            except (TypeError, ValueError):
                bad.append(f"{p.name} must be {'an' if p.type == 'integer' else 'a'} {p.type}")
    with _connect(path) as db:
        call = _Call(db, spec, args)
        last = next((s.name or s.op for s in reversed(tool.steps) if s.op != "check"), "")
        try:
            missing = [p.name for p in tool.params if p.required and args[p.name] in (None, "")]
            if bad:
                raise ToolFailed("; ".join(bad))
            if missing:
                raise ToolFailed(f"missing argument(s): {', '.join(missing)}")
            for step in tool.steps:
                call.run(step)
            text = _observation(tool, call, last)
            db.commit()
        except (ToolFailed, SpecError, sqlite3.Error, TypeError, ZeroDivisionError) as exc:
            db.rollback()
            call.result.ok = False
            call.result.broken = not isinstance(exc, ToolFailed)
            call.result.written = []
            text = f"Error: {exc}"
        result = call.result
        result.text, result.scope = text, call.scope
        db.execute(
            f"INSERT INTO {LOG_TABLE} (tool, args, ok, read, seen, written) VALUES (?,?,?,?,?,?)",
            (
                name,
                json.dumps(args, default=str),
                int(result.ok),
                *map(json.dumps, (result.read, result.seen, result.written)),
            ),
        )
        db.commit()
    return result


def _as_tool(path: str, tool: ToolSpec, per_second_usd: float) -> BaseTool:
    fields: dict[str, Any] = {}
    for p in tool.params:
        kind = _PY_TYPES[p.type]
        default = ... if p.required else None
        fields[p.name] = (
            kind if p.required else kind | None,
            Field(default, description=p.description),
        )
    schema = create_model(f"{tool.name}_args", **fields)

    def run(**kwargs: Any) -> tuple[str, Usage]:
        start = time.perf_counter()
        result = call_tool(path, tool.name, {k: v for k, v in kwargs.items() if v is not None})
        usage = Usage(compute_seconds=time.perf_counter() - start)
        if not result.ok:
            usage["error"] = result.text[:500]
        return result.text, usage

    async def arun(**kwargs: Any) -> tuple[str, Usage]:
        return await asyncio.to_thread(run, **kwargs)

    built = StructuredTool.from_function(
        func=run,
        coroutine=arun,
        name=tool.name,
        description=tool.description,
        args_schema=schema,
        response_format="content_and_artifact",
    )
    cost = ToolCost(
        per_second_usd=per_second_usd,
        expected_latency_s=0.01,
        max_seconds=30.0,
        locality="local",
        capability=f"{'changes' if tool.writes else 'reads'} the environment database",
        price_source="table:compute.per_second",
    )
    return with_cost(built, cost)


@lru_cache(maxsize=32)
def _tools(path: str, raw_spec: str, per_second_usd: float) -> tuple[BaseTool, ...]:
    spec = _spec_of(raw_spec)
    return tuple(_as_tool(path, t, per_second_usd) for t in spec.tools)


def environment_tools(path: str | Path, per_second_usd: float = 0.0) -> list[BaseTool]:
    """LangChain tools (with cost metadata) acting on the environment at ``path``.

    Raises:
        EnvError: the file is missing or not a podium environment.
    """
    spec = load_spec(path)
    return list(_tools(str(Path(path).resolve()), spec.model_dump_json(), per_second_usd))
