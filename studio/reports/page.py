"""What every podium HTML page shares: escaping, secret redaction and the base style sheet.

Pages are self-contained files a person mails or opens offline, so each is redacted as a
whole before it is written: no API key or token read from the environment can end up in one.
"""

from __future__ import annotations

import html
import os
from typing import Any

STYLE = """
body{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:1100px}
table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 8px;
text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.ok{color:#17803d}.bad{color:#b42318}.err{color:#9a6700}img{max-width:100%}
.muted{color:#666;font-size:90%}#tasks td{text-align:left}
.dialogue div{margin:2px 0}.dialogue .tool{color:#666;font-family:monospace;font-size:85%}
"""


def redact(text: str) -> str:
    """``text`` with the value of every ``*_API_KEY`` / ``*_TOKEN`` variable replaced."""
    for name, value in os.environ.items():
        if (name.endswith(("_API_KEY", "_TOKEN")) or "SECRET" in name) and len(value) >= 8:
            text = text.replace(value, f"[{name}]")
    return text


def esc(value: Any) -> str:
    """HTML-escaped text of ``value``."""
    return html.escape(str(value), quote=True)
