"""What every podium HTML page shares: escaping and the base style sheet.

Pages are redacted as a whole before they are written (``podium.tools.redact``).
"""

from __future__ import annotations

import html
from typing import Any

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;
text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.ok{color:#17803d}.bad{color:#b42318}.err{color:#9a6700}img{max-width:100%}
.muted{color:#666;font-size:90%}#tasks td{text-align:left}
.dialogue div{margin:2px 0}.dialogue .tool{color:#666;font-family:monospace;font-size:85%}
"""


def esc(value: Any) -> str:
    """HTML-escaped text of ``value``."""
    return html.escape(str(value), quote=True)
