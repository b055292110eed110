"""The one rich console every podium command prints its tables, statuses and progress to.

Machine-readable output (``--json``, paths) goes to plain ``print`` instead, so it is never
wrapped or coloured.
"""

from __future__ import annotations

from rich.console import Console

console = Console()
