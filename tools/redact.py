"""Redaction of secrets from text that podium stores: one function, applied at write time.

Endpoints echo what they were sent (a 401 quoting the ``Authorization`` header, a proxy error
naming ``user:password@host``), and that text becomes an observation, an error in the ledger,
a trajectory, a checkpoint and the policy's next prompt. Everything a tool or endpoint
returns passes through :func:`redact` before it reaches the graph's state.
"""

from __future__ import annotations

import os
import re

REDACTED = "[redacted]"
MIN_SECRET_CHARS = 8  # shorter values ("none", "embedded") are placeholders, not keys
_SECRET_NAME = re.compile(r"(_API_KEY|_TOKEN|_SECRET|_PASSWORD|_ACCESS_KEY)$|^API_KEY$", re.I)
_USERINFO = re.compile(r"(?<=://)[^/\s@:]+:[^/\s@]*@")
_BEARER = re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}")
_key_envs: set[str] = set()


def register_key_env(name: str) -> None:
    """Redact the value of ``$name`` from now on (a config's ``api_key_env`` of any name)."""
    if name:
        _key_envs.add(name)


def secrets() -> list[str]:
    """The values to hide: every configured key and every ``*_API_KEY``/``*_TOKEN``-like var.

    Read from the environment at each call, so a key set after start-up is covered too;
    longest first, so a key containing another is hidden whole.
    """
    names = {n for n in os.environ if _SECRET_NAME.search(n)} | _key_envs
    values = {os.environ.get(n, "") for n in names}
    return sorted((v for v in values if len(v) >= MIN_SECRET_CHARS), key=len, reverse=True)


def redact(text: str) -> str:
    """``text`` without configured keys, bearer tokens or ``user:password@`` in URLs."""
    for secret in secrets():
        if secret in text:
            text = text.replace(secret, REDACTED)
    text = _USERINFO.sub(f"{REDACTED}@", text)
    return _BEARER.sub(lambda m: f"{m.group(1)} {REDACTED}", text)
