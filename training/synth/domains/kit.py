"""Building blocks of the procedural domains: seeded people, places and dates, and tool shapes."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from podium.tools.envspec import ColumnSpec, ParamSpec, StepSpec, TableSpec, ToolSpec

Rows = dict[str, list[dict]]
"""Generated rows of a domain, by table name."""

FIRST = [
    "Maria",
    "James",
    "Aisha",
    "Wei",
    "Olivia",
    "Noah",
    "Sofia",
    "Liam",
    "Fatima",
    "Lucas",
    "Emma",
    "Mateo",
    "Priya",
    "Ethan",
    "Chloe",
    "Omar",
    "Hana",
    "Diego",
    "Grace",
    "Yusuf",
    "Elena",
    "Kenji",
    "Zara",
    "Samuel",
    "Leila",
    "Arjun",
    "Nora",
    "Felix",
    "Amara",
    "Jonas",
    "Ines",
    "Tomas",
    "Mei",
    "Hugo",
    "Alice",
    "Rafael",
    "Ava",
    "Kofi",
    "Lena",
    "Ivan",
]
LAST = [
    "Lopez",
    "Smith",
    "Khan",
    "Chen",
    "Brown",
    "Garcia",
    "Patel",
    "Kim",
    "Nguyen",
    "Muller",
    "Rossi",
    "Silva",
    "Okafor",
    "Novak",
    "Tanaka",
    "Cohen",
    "Haddad",
    "Larsen",
    "Dubois",
    "Moreau",
    "Ivanova",
    "Costa",
    "Mensah",
    "Sato",
    "Berg",
    "Fischer",
    "Alvarez",
    "Ward",
    "Price",
    "Bianchi",
]
CITIES = [
    "Boston",
    "Chicago",
    "Denver",
    "Seattle",
    "Austin",
    "Portland",
    "Atlanta",
    "Phoenix",
    "Miami",
    "Dallas",
    "Madrid",
    "Lyon",
    "Porto",
    "Vienna",
    "Prague",
    "Oslo",
]
START = dt.date(2025, 3, 1)


def person(rng: random.Random) -> str:
    """A random full name."""
    return f"{rng.choice(FIRST)} {rng.choice(LAST)}"


def people(rng: random.Random, n: int) -> list[str]:
    """``n`` distinct full names."""
    names: list[str] = []
    while len(names) < n:
        name = person(rng)
        if name not in names:
            names.append(name)
    return names


def day(rng: random.Random, span: int = 14) -> str:
    """An ISO date within ``span`` days of 2025-03-01."""
    return (START + dt.timedelta(days=rng.randrange(span))).isoformat()


def clock(rng: random.Random, first: int = 7, last: int = 21) -> str:
    """A time of day on the quarter hour, e.g. ``08:45``."""
    return f"{rng.randrange(first, last):02d}:{rng.choice((0, 15, 30, 45)):02d}"


def ids(prefix: str, n: int) -> list[str]:
    """Keys ``PREFIX0001`` … in order."""
    return [f"{prefix}{i:04d}" for i in range(1, n + 1)]


def col(name: str, type: str = "text", **kw: Any) -> ColumnSpec:
    """A column."""
    return ColumnSpec(name=name, type=type, **kw)


def table(name: str, noun: str, key: str, columns: list[ColumnSpec], desc: str = "") -> TableSpec:
    """A table keyed by ``key``."""
    return TableSpec(name=name, noun=noun, key=key, columns=columns, description=desc)


def param(name: str, description: str, type: str = "string", **kw: Any) -> ParamSpec:
    """A tool argument."""
    return ParamSpec(name=name, description=description, type=type, **kw)


def key_param(name: str, noun: str, example: str, table: str, where: str = "") -> ParamSpec:
    """An argument that names a record by its id (sampled from ``table``)."""
    sample = f"key:{table}" + (f"?{where}" if where else "")
    return param(name, f"The {noun}'s id, like '{example}'.", sample=sample)


def step(op: str, **kw: Any) -> StepSpec:
    """A tool step."""
    return StepSpec(op=op, **kw)


def get_tool(
    t: TableSpec, example: str, *, intent: str = "", reports: tuple[str, ...] = (), fmt: str = "{}"
) -> ToolSpec:
    """``get_<noun>``: one record by id, all its fields."""
    noun = t.noun.replace(" ", "_")
    return ToolSpec(
        name=f"get_{noun}",
        description=f"Look up one {t.noun} by its id ({t.key}) and return all its fields.",
        params=[key_param(t.key, t.noun, example, t.name)],
        steps=[step("get", table=t.name, key=t.key, name="record")],
        intent=intent,
        reports=list(reports),
        report_fmt=fmt,
    )


def search_tool(
    name: str, t: TableSpec, filters: list[tuple[str, str, str, str]], desc: str, order: str = ""
) -> ToolSpec:
    """A search over ``t``: ``filters`` are (column, '='|'like'|'>='|'<=', param, description).

    Every filter is optional; the tool returns at most 10 matching records.
    """
    types = {"text": "string", "integer": "integer", "real": "number"}
    params = [param(p, d, type=types[t.column(c).type], required=False) for c, _, p, d in filters]
    return ToolSpec(
        name=name,
        description=f"{desc} Every argument is optional; returns at most 10 matching "
        f"{t.noun} records with all their fields.",
        params=params,
        steps=[
            step(
                "search",
                table=t.name,
                where=[(c, o, p) for c, o, p, _ in filters],
                order=order,
                name="results",
            )
        ],
    )


def money(rng: random.Random, lo: float, hi: float) -> float:
    """A price rounded to cents."""
    return round(rng.uniform(lo, hi), 2)
