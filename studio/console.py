"""The one rich console every podium command prints to, and the one way model text reaches it.

Machine-readable output (``--json``, paths) goes to plain ``print`` instead, so it is never
wrapped or coloured. Text a model wrote (answers, tool arguments, generated tool names) is
untrusted: rich would read ``[/x]`` in it as markup (and raise ``MarkupError`` after the run
was paid for), and a terminal would obey its escape sequences. :func:`model_text` is the one
helper every command prints such text through.
"""

from __future__ import annotations

import math
import re

from rich.console import Console
from rich.text import Text

console = Console()

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200e\u200f\u202a-\u202e\u2066-\u2069]")
"""C0 controls but tab and newline, DEL, C1 controls (ESC/CSI/OSC start here) and bidi overrides."""


def plain(text: str) -> str:
    r"""``text`` with every control character shown as a visible ``\xNN``/``\uNNNN`` escape.

    ESC (``\x1b``) and the C1 introducers cannot start an escape sequence any more, so a
    model cannot move the cursor, retitle the window or plant an OSC 8 link.
    """
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


def model_text(text: str, style: str = "") -> Text:
    """Model-written ``text`` as a rich :class:`~rich.text.Text`: printed as is, never as markup."""
    return Text(plain(text), style=style)


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
