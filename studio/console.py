"""The one rich console every podium command prints its tables, statuses and progress to.

Machine-readable output (``--json``, paths) goes to plain ``print`` instead, so it is never
wrapped or coloured.
"""

from __future__ import annotations

import math

from rich.console import Console

console = Console()


def usd(dollars: float) -> str:
    """Dollars readable at every size: ``$0``, ``$1.25``, ``$0.012``, ``$0.0000058``.

    Runs on local models cost millionths of a dollar; a fixed ``.6f`` shows them as
    ``0.000000``. Below a dollar two significant digits are kept, in plain decimals.
    """
    if dollars == 0 or not math.isfinite(dollars):
        return "$0" if dollars == 0 else f"${dollars}"
    if abs(dollars) >= 1:
        return f"${dollars:,.2f}"
    places = max(2, 1 - math.floor(math.log10(abs(dollars))))
    return f"${dollars:.{places}f}"
