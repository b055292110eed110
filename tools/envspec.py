"""The declarative spec of a tool environment, and the small safe language its rules are written in.

A domain (bank, railway, …) is a SQLite database plus a :class:`DomainSpec`: its tables and its
tools. A tool is a list of steps — fetch a record by key, search a table, check a business rule,
compute a value, update or insert a row — whose expressions are Python-like (``src.balance >=
amount``) but evaluated by :func:`evaluate`, which allows only names, fields, arithmetic,
comparisons and a few pure functions. Specs are data, so an LLM can propose one and podium can
validate it before keeping it.
"""

from __future__ import annotations

import ast
import operator
import string
from collections.abc import Callable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from podium.tools.errors import UserError

IDENT = r"^[a-z][a-z0-9_]{0,47}$"
RESERVED_TOOLS = {"answer", "python", "local_search", "web_search"}


class SpecError(UserError, ValueError):
    """A spec or an expression that is not valid; the message is one line."""


class _Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ColumnSpec(_Spec):
    """A column of a table."""

    name: str = Field(pattern=IDENT)
    type: Literal["text", "integer", "real"] = "text"
    ref: str = Field("", description="Foreign key 'table.column' every value must exist in.")
    choices: list[str] = Field(default_factory=list, description="Allowed values, if closed.")
    phrase: str = Field(
        "", description="How a record is described by this column, e.g. 'of customer {}'."
    )


class TableSpec(_Spec):
    """A table; ``key`` is its primary key column."""

    name: str = Field(pattern=IDENT)
    noun: str = Field(description="What one row is, e.g. 'account'.")
    key: str
    description: str = ""
    columns: list[ColumnSpec]

    @model_validator(mode="after")
    def _key_is_a_column(self) -> TableSpec:
        if self.key not in {c.name for c in self.columns}:
            raise ValueError(f"table {self.name}: key {self.key!r} is not one of its columns")
        return self

    def column(self, name: str) -> ColumnSpec:
        """The column called ``name``."""
        for c in self.columns:
            if c.name == name:
                return c
        raise SpecError(f"table {self.name} has no column {name!r}")


class ParamSpec(_Spec):
    """An argument of a tool."""

    name: str = Field(pattern=IDENT)
    type: Literal["string", "integer", "number"] = "string"
    description: str
    required: bool = True
    sample: str = Field(
        "",
        description="How task synthesis picks a value: 'key:TABLE' (a key of TABLE, optionally "
        "'key:TABLE?EXPR' filtered on the row r), 'col:TABLE.COLUMN', 'int:LO:HI', "
        "'money:LO:HI', 'choice:A|B'.",
    )
    fmt: str = Field("{}", description="How the value reads in an instruction, e.g. '${:.2f}'.")


class StepSpec(_Spec):
    """One step of a tool; see the module docstring."""

    op: Literal["get", "search", "check", "let", "update", "insert"]
    table: str = ""
    key: str = Field("", description="get/update: expression of the key.")
    name: str = Field("", description="Variable the step binds (get, search, let, insert).")
    expr: str = Field("", description="check: the rule; let: the value.")
    error: str = Field("", description="check/get: the message when it fails (a template).")
    where: list[tuple[str, Literal["=", "like", ">=", "<="], str]] = Field(
        default_factory=list,
        description="search: (column, operator, parameter); an empty parameter is no filter.",
    )
    set: dict[str, str] = Field(default_factory=dict, description="update/insert: column → expr.")
    order: str = ""
    limit: int = Field(10, ge=1, le=50)


class ToolSpec(_Spec):
    """A tool over the database."""

    name: str = Field(pattern=IDENT)
    description: str
    params: list[ParamSpec] = Field(default_factory=list)
    steps: list[StepSpec]
    returns: str = Field("", description="Observation template; empty = the last bound value.")
    intent: str = Field("", description="Imperative phrase for task synthesis, with {param}s.")
    reports: list[str] = Field(
        default_factory=list, description="Expressions an answer to this intent must mention."
    )
    report_fmt: str = Field("{}", description="How the reported values are written.")

    @property
    def writes(self) -> bool:
        """Whether the tool changes the database."""
        return any(s.op in ("update", "insert") for s in self.steps)


class DomainSpec(_Spec):
    """A whole environment: tables and tools."""

    name: str = Field(pattern=IDENT)
    description: str
    tables: list[TableSpec]
    tools: list[ToolSpec]

    @model_validator(mode="after")
    def _consistent(self) -> DomainSpec:
        tables = {t.name: t for t in self.tables}
        if len(tables) != len(self.tables):
            raise ValueError("table names must be unique")
        names = [t.name for t in self.tools]
        if len(set(names)) != len(names):
            raise ValueError("tool names must be unique")
        if clash := RESERVED_TOOLS & set(names):
            raise ValueError(f"tool names {sorted(clash)} are reserved by podium")
        for tool in self.tools:
            for step in tool.steps:
                if step.table and step.table not in tables:
                    raise ValueError(f"tool {tool.name}: unknown table {step.table!r}")
                for col in [w[0] for w in step.where] + list(step.set):
                    tables[step.table].column(col)
            for expr in _expressions(tool):
                parse(expr)
        return self

    def table(self, name: str) -> TableSpec:
        """The table called ``name``."""
        for t in self.tables:
            if t.name == name:
                return t
        raise SpecError(f"domain {self.name} has no table {name!r}")

    def tool(self, name: str) -> ToolSpec:
        """The tool called ``name``."""
        for t in self.tools:
            if t.name == name:
                return t
        raise SpecError(f"domain {self.name} has no tool {name!r}")


def _expressions(tool: ToolSpec) -> list[str]:
    exprs = [*tool.reports]
    for s in tool.steps:
        exprs += [e for e in (s.key, s.expr) if e] + list(s.set.values())
    return exprs


class Row(dict):
    """A database row whose fields read as attributes in expressions and templates."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise SpecError(f"record has no field {name!r}") from None


_BINOPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_CMPOPS: dict[type, Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}
FUNCTIONS: dict[str, Callable[..., Any]] = {
    "round": round,
    "abs": abs,
    "min": min,
    "max": max,
    "len": len,
    "str": str,
    "int": int,
    "float": float,
    "lower": lambda s: str(s).lower(),
    "upper": lambda s: str(s).upper(),
    "total": lambda rows, name: sum(r[name] or 0 for r in rows),
}


def parse(expr: str) -> ast.expr:
    """Parse ``expr`` and refuse anything outside the rule language."""
    try:
        tree = ast.parse(expr, mode="eval").body
    except SyntaxError as exc:
        raise SpecError(f"bad expression {expr!r}: {exc.msg}") from None
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr.startswith("_"):
            raise SpecError(f"bad expression {expr!r}: private field {node.attr!r}")
        allowed = (
            ast.BoolOp,
            ast.BinOp,
            ast.UnaryOp,
            ast.Compare,
            ast.Name,
            ast.Attribute,
            ast.Constant,
            ast.Call,
            ast.IfExp,
            ast.List,
            ast.Tuple,
            ast.Load,
            ast.And,
            ast.Or,
            ast.Not,
            ast.USub,
            ast.cmpop,
            ast.operator,
        )
        if not isinstance(node, allowed):
            raise SpecError(f"bad expression {expr!r}: {type(node).__name__} is not allowed")
        if isinstance(node, ast.Call) and not isinstance(node.func, ast.Name):
            raise SpecError(f"bad expression {expr!r}: only named functions can be called")
    return tree


def evaluate(expr: str, scope: Mapping[str, Any], functions: Mapping[str, Callable] = FUNCTIONS):
    """The value of ``expr`` in ``scope`` (names → values; rows expose fields as attributes)."""
    return _eval(parse(expr), scope, functions, expr)


def _eval(node: ast.expr, scope: Mapping[str, Any], fns: Mapping[str, Callable], src: str) -> Any:
    def ev(n: ast.expr) -> Any:
        return _eval(n, scope, fns, src)

    match node:
        case ast.Constant(value=v):
            return v
        case ast.Name(id=name):
            if name not in scope:
                raise SpecError(f"expression {src!r}: unknown name {name!r}")
            return scope[name]
        case ast.Attribute(value=v, attr=attr):
            obj = ev(v)
            if not isinstance(obj, Row):
                raise SpecError(f"expression {src!r}: {attr!r} of a value that is not a record")
            return getattr(obj, attr)
        case ast.BinOp(left=a, op=op, right=b):
            return _BINOPS[type(op)](ev(a), ev(b))
        case ast.UnaryOp(op=ast.Not(), operand=a):
            return not ev(a)
        case ast.UnaryOp(op=ast.USub(), operand=a):
            return -ev(a)
        case ast.BoolOp(op=ast.And(), values=vals):
            return all(ev(v) for v in vals)
        case ast.BoolOp(op=ast.Or(), values=vals):
            return any(ev(v) for v in vals)
        case ast.Compare(left=a, ops=ops, comparators=rest):
            left = ev(a)
            for cmp, c in zip(ops, rest, strict=True):
                right = ev(c)
                if not _CMPOPS[type(cmp)](left, right):
                    return False
                left = right
            return True
        case ast.IfExp(test=t, body=b, orelse=o):
            return ev(b) if ev(t) else ev(o)
        case ast.List(elts=elts) | ast.Tuple(elts=elts):
            return [ev(e) for e in elts]
        case ast.Call(func=ast.Name(id=fn), args=args):
            if fn not in fns:
                raise SpecError(f"expression {src!r}: unknown function {fn!r}")
            return fns[fn](*[ev(a) for a in args])
    raise SpecError(f"expression {src!r}: unsupported syntax")


def render(template: str, scope: Mapping[str, Any], functions: Mapping[str, Callable] = FUNCTIONS):
    """Fill ``{expr}`` / ``{expr:spec}`` fields of ``template`` with values of expressions."""
    out = []
    for literal, field, spec, _conv in string.Formatter().parse(template):
        out.append(literal)
        if field is not None:
            value = evaluate(field, scope, functions)
            out.append(format(value, spec or ""))
    return "".join(out)
