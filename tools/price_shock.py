"""Price shocks: runs under another price table, and random prices per training task.

A price file is the shape of ``data/prices.toml`` (``[models]``, ``[compute]``, ``[search]``,
merged over the table) plus ``[tools.NAME] scale = X``, which multiplies every price of one
tool of the pool (an LLM expert 10x dearer, a calculator at double its price). Within
:func:`price_shock` the pool is rebuilt with those prices, and each repriced tool's description
states its new price, which is what the policy reads. ``jitter`` draws a factor per tool and
task in ``[1/(1+j), 1+j]`` (log-uniform): training with it makes the policy read the prices
instead of memorising them.
"""

from __future__ import annotations

import json
import math
import random
import tomllib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from langchain_core.tools import BaseTool

from .cost import COST_KEY, cost_of
from .errors import UserError

PRICED = ("per_call_usd", "input_usd_per_mtok", "output_usd_per_mtok", "per_second_usd")
TABLES = ("models", "compute", "search", "tools")


class PriceFileError(UserError, ValueError):
    """A price file that does not parse or holds no usable price."""


@dataclass(frozen=True)
class PriceShock:
    """Price-table overrides, per-tool factors and a per-task jitter."""

    table: dict[str, Any] = field(default_factory=dict)
    scale: dict[str, float] = field(default_factory=dict)
    jitter: float = 0.0
    seed: str = ""
    source: str = ""

    def factor(self, tool: str) -> float:
        """The factor ``tool``'s prices are multiplied by."""
        factor = self.scale.get(tool, 1.0)
        if self.jitter > 0:
            spread = math.log1p(self.jitter)
            factor *= math.exp(random.Random(f"{self.seed}:{tool}").uniform(-spread, spread))
        return factor

    def stamp(self) -> str:
        """What the pool cache keys on: the table overrides (factors apply after the cache)."""
        return json.dumps(self.table, sort_keys=True)


def _bad(path: Path, problem: str) -> PriceFileError:
    return PriceFileError(f"price file {path}: {problem}: fix it (see docs/forecast-replay.md)")


def _number(path: Path, where: str, value: Any, positive: bool = False) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (positive and value == 0):
        rule = "> 0" if positive else ">= 0"
        raise _bad(path, f"{where} must be a finite number {rule}, got {value!r}")
    return float(value)


def load_shock(path: str | Path) -> PriceShock:
    """The price shock of the TOML file ``path``, checked whole before any run uses it.

    Raises:
        PriceFileError: the file is missing, not TOML, or holds an unknown table or a bad price.
    """
    path = Path(path).expanduser()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _bad(path, "no such file") from None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise _bad(path, f"not TOML ({exc})") from None
    unknown = sorted(set(data) - set(TABLES))
    if unknown:
        raise _bad(path, f"unknown table [{unknown[0]}] (known: {', '.join(TABLES)})")
    for name, entry in data.get("models", {}).items():
        if not isinstance(entry, dict) or not {"input", "output"} <= set(entry):
            raise _bad(path, f'[models."{name}"] needs input and output')
        for key in ("input", "output"):
            _number(path, f'models."{name}".{key}', entry[key])
    for section in ("compute", "search"):
        for key, value in data.get(section, {}).items():
            _number(path, f"{section}.{key}", value)
    scale = {}
    for name, entry in data.get("tools", {}).items():
        if not isinstance(entry, dict) or set(entry) != {"scale"}:
            raise _bad(path, f'[tools."{name}"] needs exactly one key, scale')
        scale[name] = _number(path, f'tools."{name}".scale', entry["scale"], positive=True)
    table = {k: v for k, v in data.items() if k != "tools"}
    if not (table or scale):
        raise _bad(path, "no prices in it")
    return PriceShock(table=table, scale=scale, source=str(path))


def jittered(jitter: float, seed: str) -> PriceShock:
    """A shock that only jitters: each tool's prices times a factor drawn from ``seed``."""
    return PriceShock(jitter=jitter, seed=seed, source=f"jitter {jitter:g}")


_SHOCK: ContextVar[PriceShock | None] = ContextVar("podium_price_shock", default=None)


@contextmanager
def price_shock(shock: PriceShock | None) -> Iterator[None]:
    """Within the block, prices are those of ``shock`` (None: the normal table)."""
    token = _SHOCK.set(shock)
    try:
        yield
    finally:
        _SHOCK.reset(token)


def current_shock() -> PriceShock | None:
    """The shock in force in this context, if any."""
    return _SHOCK.get()


def repriced(tool: BaseTool, factor: float) -> BaseTool:
    """A copy of ``tool`` whose prices are ``factor`` times its own, its description restated."""
    cost = cost_of(tool)
    if factor == 1.0:
        return tool
    new = cost.model_copy(update={k: getattr(cost, k) * factor for k in PRICED})
    description = tool.description.removesuffix(f" [{cost.summary()}]")
    return tool.model_copy(
        update={
            "metadata": {**(tool.metadata or {}), COST_KEY: new},
            "description": f"{description} [{new.summary()}]",
        }
    )


def apply_shock(tools: Iterable[BaseTool], shock: PriceShock | None) -> tuple[BaseTool, ...]:
    """``tools`` with the shock's per-tool factors applied."""
    if shock is None:
        return tuple(tools)
    return tuple(repriced(t, shock.factor(t.name)) for t in tools)
