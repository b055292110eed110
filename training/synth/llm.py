"""The LLM path of environment synthesis (ToolScale's pipeline), behind the one model seam.

When an OpenAI-compatible endpoint is configured, the LLM proposes a whole environment — the
schema, the rows and the tools, in podium's declarative spec — and every proposal is validated
before it is kept: the JSON parses into a :class:`DomainSpec`, the rows load into the schema
(types, unique keys, references, allowed values), every tool runs on sampled arguments without
breaking, and at least one task verifies by execution. A rejected proposal's error goes back to
the LLM for the next attempt.
"""

from __future__ import annotations

import json
import random
import re
import shutil
import sqlite3
import tempfile
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from pydantic import ValidationError

from podium.tools.environment import EnvError, call_tool, create_environment
from podium.tools.envspec import DomainSpec, SpecError
from podium.tools.paths import atomic_path

from .domains import DOMAINS
from .tasks import SynthError, Synthesizer, sample_value, table_rows

MIN_TOOLS = 8
ATTEMPTS = 3
_FENCE = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)
SYSTEM = (
    "You design tool environments for training tool-using agents. Reply with ONE JSON object "
    '{{"spec": <DomainSpec>, "rows": {{"<table>": [<row objects>]}}}} and nothing else.\n'
    "DomainSpec JSON schema:\n{schema}\n"
    "Rules: at least {min_tools} tools; get_<noun> lookups, searches, and state-changing tools "
    "whose 'check' steps enforce the business rules; every parameter has a 'sample' rule; "
    "state-changing and reporting tools have an 'intent' phrase; 10-60 rows per table; keys "
    "like 'A0001'; inserts use new_id('<table>', '<prefix>').\nA complete example:\n{example}"
)
ASK = 'Design the "{domain}" environment (spec name "{domain}").'
RETRY = "That proposal was rejected: {error}. Reply with a corrected JSON object."


def _example() -> str:
    spec, rows = DOMAINS["bank"](0)
    small = {t: r[:3] for t, r in rows.items()}
    return json.dumps({"spec": spec.model_dump(exclude_defaults=True), "rows": small})


def _json_of(text: str) -> Any:
    match = _FENCE.search(text)
    body = match.group(1) if match else text[text.find("{") : text.rfind("}") + 1]
    return json.loads(body)


def validate(text: str, domain: str, seed: int = 0) -> tuple[DomainSpec, dict[str, list[dict]]]:
    """The proposal in ``text`` if it passes every check.

    Raises:
        SynthError: what is wrong with the proposal, in one line.
    """
    try:
        obj = _json_of(text)
        spec = DomainSpec.model_validate(obj["spec"])
        rows = obj["rows"]
    except (json.JSONDecodeError, KeyError, TypeError, ValidationError, SpecError) as exc:
        raise SynthError(f"not a valid spec: {' '.join(str(exc).split())[:300]}") from None
    if spec.name != domain:
        raise SynthError(f"the spec is named {spec.name!r}, expected {domain!r}")
    if len(spec.tools) < MIN_TOOLS:
        raise SynthError(f"{len(spec.tools)} tools, at least {MIN_TOOLS} are needed")
    scratch = Path(tempfile.mkdtemp(prefix="podium-llm-env-"))
    try:
        env = scratch / "env.sqlite"
        try:
            create_environment(env, spec, rows)
        except (EnvError, sqlite3.Error, ValueError, TypeError, AttributeError) as exc:
            raise SynthError(f"rows do not load: {exc}") from None
        _run_every_tool(env, spec, seed)
        synth = Synthesizer(env, seed)
        try:
            if not synth.run(3):
                raise SynthError(f"no task verifies by execution ({dict(synth.stats)})")
        finally:
            synth.close()
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return spec, rows


def _run_every_tool(env: Path, spec: DomainSpec, seed: int) -> None:
    rng = random.Random(seed)
    data = table_rows(env, spec)
    keys = {t.name: t.key for t in spec.tables}
    for tool in spec.tools:
        try:
            args = {p.name: sample_value(p, rng, data, keys) for p in tool.params if p.sample}
        except (SpecError, ValueError, KeyError, IndexError) as exc:
            raise SynthError(f"tool {tool.name}: bad sample rule ({exc})") from None
        result = call_tool(env, tool.name, args)
        if result.broken:
            raise SynthError(f"tool {tool.name} breaks when run: {result.text}")


def build_llm_env(
    llm: BaseChatModel, domain: str, out: Path, seed: int = 0, attempts: int = ATTEMPTS
) -> Path:
    """Ask ``llm`` for the environment of ``domain`` and write the first valid proposal to ``out``.

    Raises:
        SynthError: no proposal passed validation in ``attempts`` tries.
    """
    system = SYSTEM.format(
        schema=json.dumps(DomainSpec.model_json_schema()), min_tools=MIN_TOOLS, example=_example()
    )
    messages: list[BaseMessage] = [SystemMessage(system), HumanMessage(ASK.format(domain=domain))]
    error = ""
    for _ in range(attempts):
        reply = llm.invoke(messages)
        text = str(reply.content)
        try:
            spec, rows = validate(text, domain, seed)
        except SynthError as exc:
            error = str(exc)
            messages += [AIMessage(text), HumanMessage(RETRY.format(error=error))]
            continue
        with atomic_path(out) as tmp:
            tmp.unlink()
            create_environment(tmp, spec, rows)
        return out
    raise SynthError(
        f"the LLM's {attempts} proposals for {domain!r} all failed validation (last: {error}); "
        "try a stronger model or a built-in domain"
    )
