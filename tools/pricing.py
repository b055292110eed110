"""Prices: genai-prices for hosted models, podium's own table for the rest.

The table is ``data/prices.toml``, overridden by the file named in ``$PODIUM_PRICES`` and by
the ``[prices]`` table of the user's config, and by a price shock in force (``price_shock.py``),
in that order.
"""

from __future__ import annotations

import math
import os
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from .config import ConfigError, PodiumConfig, _merge, read_toml
from .price_shock import current_shock

PRICES_ENV = "PODIUM_PRICES"
_PER_MTOK_PROBE = 1000  # tokens priced through genai-prices; below any long-context tier


@dataclass(frozen=True)
class TokenPrice:
    """Dollars per million input and output tokens of one model, and where they came from."""

    input: float
    output: float
    source: str


class Prices:
    """The merged price table."""

    def __init__(self, config: PodiumConfig) -> None:
        table = tomllib.loads(resources.files(__package__).joinpath("data/prices.toml").read_text())
        if env := os.environ.get(PRICES_ENV):
            table = _merge(table, read_toml(Path(env).expanduser()))
        table = _merge(table, config.prices)
        shock = current_shock()  # an evaluation under another price table (price_shock.py)
        self.table: dict[str, Any] = _merge(table, shock.table) if shock else table

    def model(self, ref: str) -> TokenPrice:
        """Token prices of ``ref``: a table key, or ``provider:model`` for genai-prices.

        Raises:
            ConfigError: the model is in neither source, or its table entry is no price.
        """
        entry = self.table.get("models", {}).get(ref)
        if entry is not None:
            try:
                price = TokenPrice(float(entry["input"]), float(entry["output"]), f"table:{ref}")
            except (KeyError, TypeError, ValueError):
                price = None
            if price is None or not (_dollars(price.input) and _dollars(price.output)):
                raise ConfigError(
                    f"price entry {ref!r} needs 'input' and 'output' in dollars per million "
                    f'tokens, finite and >= 0, got {entry!r}: fix [prices.models."{ref}"]'
                )
            return price
        if ":" in ref:
            return _genai_price(ref)
        raise ConfigError(
            f'no price for model {ref!r}: add [prices.models."{ref}"] input/output to your '
            "config, or use 'provider:model' for a hosted model"
        )

    def number(self, section: str, key: str) -> float:
        """A scalar price such as ``compute.per_second``."""
        try:
            value = float(self.table[section][key])
        except (KeyError, TypeError, ValueError):
            raise ConfigError(f"price table lacks a number at {section}.{key}") from None
        if not _dollars(value):
            raise ConfigError(f"price {section}.{key} must be finite and >= 0, got {value}")
        return value


def _dollars(value: float) -> bool:
    """A usable price: finite and not negative (a negative one would refill the budget)."""
    return math.isfinite(value) and value >= 0


def _genai_price(ref: str) -> TokenPrice:
    from genai_prices import Usage, calc_price

    provider, model = ref.split(":", 1)
    try:
        calc = calc_price(
            Usage(input_tokens=_PER_MTOK_PROBE, output_tokens=_PER_MTOK_PROBE),
            model,
            provider_id=provider,
        )
    except LookupError:
        raise ConfigError(
            f"genai-prices does not know {ref!r}: check the provider:model name, or give its "
            "price in your config's [prices.models]"
        ) from None
    scale = 1e6 / _PER_MTOK_PROBE
    return TokenPrice(
        float(calc.input_price) * scale, float(calc.output_price) * scale, f"genai-prices:{ref}"
    )
