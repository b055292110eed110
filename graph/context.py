"""The run-time context of a podium graph run: endpoint, tool pool, preference, budget."""

from __future__ import annotations

import math
import os
from dataclasses import InitVar, dataclass, field, fields
from typing import Any

from podium.tools.errors import UserError

ENV_PREFIX = "PODIUM_"
BAD_NUMBER = "{name} must be {rule}, got {value!r}: fix --{flag} or ${env}"
MAX_TEXT_CHARS = 100_000
"""Longest question or preference a run accepts, in characters; longer text is refused."""
TOO_LONG = "{name} is {size:,} characters, more than the {limit:,} podium accepts: {fix}"


class ContextError(UserError, ValueError):
    """An invalid context value; the message is one line naming the fix."""


def check_length(name: str, text: str, fix: str) -> None:
    """Refuse ``text`` longer than :data:`MAX_TEXT_CHARS` with a one-line :class:`ContextError`.

    A megabyte of text is far beyond a policy's context (8,192 tokens on the embedded
    server): sending it would only start the model server and fail there.
    """
    if len(text) > MAX_TEXT_CHARS:
        raise ContextError(
            TOO_LONG.format(name=name, size=len(text), limit=MAX_TEXT_CHARS, fix=fix)
        )


TRUE, FALSE = {"1", "true", "yes", "on"}, {"0", "false", "no", "off", ""}


def _env_value(raw: str, default: Any) -> Any:
    """``raw`` read as the type of ``default``; ValueError when it is not one, never a guess."""
    if isinstance(default, bool):
        word = raw.strip().lower()
        if word not in TRUE | FALSE:
            raise ValueError(raw)
        return word in TRUE
    if isinstance(default, int):
        return int(raw)
    if isinstance(default, float):
        value = float(raw)
        if math.isnan(value):
            raise ValueError(raw)
        return value
    return raw


def check_text(name: str, text: str, source: str) -> None:
    """Refuse text a model cannot be sent: longer than :data:`MAX_TEXT_CHARS`, or not UTF-8.

    Bytes that are not UTF-8 on the command line reach Python as lone surrogates, which no
    request body can encode; refused here, they never cost a policy call.
    """
    check_length(name, text, f"shorten {source}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ContextError(
            f"{name} is not valid UTF-8 (a bad byte at character {exc.start}): pass {source} "
            "as UTF-8 text"
        ) from None


@dataclass(kw_only=True)
class Context:
    """What a run is configured with; a field left at its default falls back to ``$PODIUM_<FIELD>``.

    ``explicit`` names the fields given on purpose (a command-line flag, a stored context):
    they keep their value even when it equals the default, and the environment never wins.
    """

    policy_base_url: str = field(
        default="",
        metadata={
            "description": "OpenAI-compatible endpoint of the policy; empty = config, "
            "then the embedded llama.cpp server."
        },
    )
    policy_model: str = field(
        default="", metadata={"description": "Model name at the endpoint; empty = config."}
    )
    profile: str = field(default="local", metadata={"description": "Tool-pool profile."})
    config: str = field(
        default="", metadata={"description": "Path of a user config file merged over defaults."}
    )
    preference: str = field(
        default="",
        metadata={"description": "The user's tool preference in words, e.g. 'save money'."},
    )
    preference_vector: dict[str, float] | None = field(
        default=None,
        metadata={
            "description": "Optional weights over tools (and 'cost', 'latency') used by "
            "training rewards and compliance reports."
        },
    )
    budget_usd: float = field(
        default=1.0, metadata={"description": "Hard cap on the dollars one run may spend."}
    )
    approve_above_usd: float = field(
        default=-1.0,
        metadata={
            "description": "Pause for a person's approval before any tool call whose predicted "
            "(worst-case) cost exceeds this many dollars; negative = never ask."
        },
    )
    max_turns: int = field(
        default=50, metadata={"description": "Policy turns before a final answer is forced."}
    )
    local_only: bool = field(
        default=False, metadata={"description": "Offer only tools that run on this machine."}
    )
    temperature: float = field(
        default=-1.0,
        metadata={"description": "Policy sampling temperature; negative = config (0 = greedy)."},
    )
    first_tool: str = field(
        default="",
        metadata={
            "description": "Exploration: the tool the policy's first call must name (it still "
            "writes the arguments and everything after); empty = the policy chooses."
        },
    )
    trajectory_db: str = field(
        default="",
        metadata={
            "description": "Trajectory store: SQLite file or postgresql:// URL; empty = cache dir."
        },
    )
    forecast: bool = field(
        default=False,
        metadata={
            "description": "Put a forecast of the run's cost, latency and tools (from similar "
            "past runs) in the state before the first turn; 'podium studio' turns it on."
        },
    )
    environment: str = field(
        default="",
        metadata={
            "description": "Tool environment (SQLite file made by 'podium synth env') this run "
            "acts on; its tools join the pool. Empty = none."
        },
    )

    explicit: InitVar[frozenset[str] | list[str] | tuple[str, ...]] = ()

    def __post_init__(self, explicit: frozenset[str] | list[str] | tuple[str, ...]) -> None:
        for f in fields(self):
            env = os.environ.get(f"{ENV_PREFIX}{f.name.upper()}")
            if (
                env is not None
                and f.name not in explicit
                and getattr(self, f.name) == f.default
                and f.name != "preference_vector"
            ):
                try:
                    setattr(self, f.name, _env_value(env, f.default))
                except ValueError:
                    var = f"${ENV_PREFIX}{f.name.upper()}"
                    raise ContextError(
                        f"{var}={env!r} is not a valid {f.name}: fix or unset {var}"
                    ) from None
        budget_ok = self.budget_usd >= 0 and math.isfinite(self.budget_usd)
        self._require("budget_usd", budget_ok, "a finite number >= 0")
        self._require("max_turns", self.max_turns >= 1, "an integer >= 1")
        self._require("approve_above_usd", not math.isnan(self.approve_above_usd), "a number")
        temperature_ok = math.isfinite(self.temperature)
        self._require("temperature", temperature_ok, "a finite number (negative = config)")
        check_text("the preference", self.preference, "--preference or $PODIUM_PREFERENCE")

    def _require(self, name: str, ok: bool, rule: str) -> None:
        if not ok:
            raise ContextError(
                BAD_NUMBER.format(
                    name=name,
                    rule=rule,
                    value=getattr(self, name),
                    flag=name.replace("_", "-"),
                    env=f"{ENV_PREFIX}{name.upper()}",
                )
            )


def context_of(runtime: Any) -> Context:
    """The :class:`Context` of a node's runtime (a dict from Studio becomes a Context)."""
    ctx = getattr(runtime, "context", None)
    return ctx if isinstance(ctx, Context) else Context(**(ctx or {}))
