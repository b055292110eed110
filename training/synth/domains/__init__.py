"""The ten procedural ToolScale domains: name → generator of (spec, rows) for a seed."""

from __future__ import annotations

from collections.abc import Callable

from podium.tools.envspec import DomainSpec

from .bank import bank
from .basketball import basketball
from .ecommerce import ecommerce
from .kit import Rows
from .medicine import medicine
from .movie import movie
from .railway import railway
from .restaurant import restaurant
from .school import school
from .travel import travel
from .weather import weather

DOMAINS: dict[str, Callable[[int], tuple[DomainSpec, Rows]]] = {
    "bank": bank,
    "basketball": basketball,
    "ecommerce": ecommerce,
    "medicine": medicine,
    "movie": movie,
    "railway": railway,
    "restaurant": restaurant,
    "school": school,
    "travel": travel,
    "weather": weather,
}
