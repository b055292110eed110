"""Robust tool-call parsing: native calls, ``<tool_call>`` tags, JSON, calls written as code.

Small policies served by llama.cpp or vLLM without a tool parser often write the call as
text. Every engine goes through this one function, so the graph does not care which engine
served the turn.
"""

from __future__ import annotations

import ast
import contextlib
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import AIMessage, ToolCall
from langchain_core.tools import BaseTool

_TAG = re.compile(r"<tool_call>\s*(.*?)\s*(?:</tool_call>|$)", re.DOTALL)
_FENCE = re.compile(r"```(?:json|tool_call|python)?\s*\n?(.*?)```", re.DOTALL)
_THINK = re.compile(r"<think>.*?(?:</think>|$)", re.DOTALL)
_NAME_KEYS = ("name", "tool", "tool_name", "function")
_ARG_KEYS = ("arguments", "parameters", "args", "input")
# A completion that is nothing but a (broken) JSON call: `{"name": "python", "arguments": {...}`
_BROKEN_CALL = re.compile(r'^[\[{]\s*"(?:name|tool|tool_name|function)"\s*:', re.DOTALL)
# A completion that is nothing but a call written as code: `answer({text: "42"})`, `f(x=1)`
_CALL_SYNTAX = re.compile(r"^([A-Za-z_]\w*)\s*\((.*)\)\s*;?$", re.DOTALL)
_STRING = re.compile(r"(\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*')", re.DOTALL)
_BARE_KEY = re.compile(r"([{,]\s*)([A-Za-z_]\w*)(\s*:)")

NOT_JSON = (
    "tool call is not valid JSON ({error}): write one JSON object with 'name' and 'arguments'"
)
UNKNOWN_TOOL = "there is no tool named {name!r}; available tools: {names}"
NO_NAME = 'tool call has no tool name: write {"name": <tool name>, "arguments": <JSON object>}'
BAD_ARGS = "arguments of {name!r} must be a JSON object, got {args!r}"
BARE_NAME = (
    '{name!r} alone is not a tool call: write {{"name": {name!r}, "arguments": <JSON object>}}'
)


@dataclass
class Parsed:
    """What one policy completion asks for."""

    calls: list[ToolCall] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    text: str = ""  # the completion with reasoning and call markup removed


def _call_id() -> str:
    return f"call_{uuid.uuid4().hex[:12]}"


def _single_field(tool: BaseTool) -> str | None:
    props = tool.tool_call_schema.model_json_schema().get("properties", {})  # type: ignore[union-attr]
    return next(iter(props)) if len(props) == 1 else None


def _flat_args(obj: dict[str, Any], tool: BaseTool) -> dict[str, Any]:
    """Arguments written beside the name, ``{"name": "answer", "text": "42"}``.

    Small policies often drop the ``arguments`` wrapper; one stray string under another key
    goes to a one-field tool's field (``{"name": "answer", "description": "42"}``).
    """
    rest = {k: v for k, v in obj.items() if k not in _NAME_KEYS and k != "type"}
    field_name = _single_field(tool)
    if field_name and field_name not in rest and len(rest) == 1:
        (value,) = rest.values()
        if isinstance(value, str):
            return {field_name: value}
    return rest


def _to_call(obj: Any, tools: Mapping[str, BaseTool]) -> ToolCall | str | None:
    """A call, an error message, or None when ``obj`` does not look like a call at all."""
    if not isinstance(obj, dict):
        return None
    if isinstance(
        obj.get("function"), dict
    ):  # OpenAI-style {"type": "function", "function": {...}}
        obj = obj["function"]
    name = next((obj[k] for k in _NAME_KEYS if isinstance(obj.get(k), str)), None)
    arg_key = next((k for k in _ARG_KEYS if k in obj), None)
    if name is None:
        return NO_NAME if arg_key else None
    if name not in tools:
        if arg_key is None and len(obj) > 1:
            return None  # some other JSON the model wrote, e.g. data in an answer
        return UNKNOWN_TOOL.format(name=name, names=", ".join(tools))
    args: Any = obj.get(arg_key, {}) if arg_key else _flat_args(obj, tools[name])
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except json.JSONDecodeError:
            field_name = _single_field(tools[name])
            if field_name is None:
                return BAD_ARGS.format(name=name, args=args)
            args = {field_name: args}  # {"name": "python", "arguments": "print(1)"}
    if not isinstance(args, dict):
        return BAD_ARGS.format(name=name, args=args)
    return ToolCall(name=name, args=args, id=_call_id(), type="tool_call")


def _object_literal(text: str, *, repair: bool = False) -> Any:
    """A JSON, Python or JavaScript object literal (``{text: "42"}``), or None.

    Strict unless ``repair``: a value that is not a literal (``{x: 2+2}``) gives None rather
    than a guess, so a call is never run with arguments the policy did not write. With
    ``repair``, JSON broken by a dropped or stray bracket gets json-repair's reading.
    """
    parts = _STRING.split(text)  # quote bare keys outside string literals only
    quoted = "".join(p if i % 2 else _BARE_KEY.sub(r'\1"\2"\3', p) for i, p in enumerate(parts))
    for source in (text, quoted):
        for read in (json.loads, ast.literal_eval):  # Python: triple quotes, True, 'single'
            try:
                return read(source)
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                continue
    if repair:
        import json_repair

        return json_repair.loads(text)
    return None


def _code_call(text: str, tools: Mapping[str, BaseTool]) -> ToolCall | str | None:
    """A call written as code, ``name({...})``, ``name(key=value)`` or ``name("v")``.

    Only for a known tool's name; arguments that are not literals are an error, not a guess.
    """
    match = _CALL_SYNTAX.match(text)
    if match is None or match.group(1) not in tools:
        return None
    name, inner = match.group(1), match.group(2).strip()
    args: Any = None
    if inner.startswith("{"):
        args = _object_literal(inner)
    else:
        try:
            call = ast.parse(f"f({inner})", mode="eval").body
        except (SyntaxError, ValueError, MemoryError, RecursionError):
            return None  # prose in brackets, "python (the language)": an answer
        field_name = _single_field(tools[name])
        with contextlib.suppress(ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            if not isinstance(call, ast.Call):
                pass
            elif call.keywords and not call.args and all(k.arg for k in call.keywords):
                args = {k.arg: ast.literal_eval(k.value) for k in call.keywords}
            elif len(call.args) == 1 and not call.keywords and field_name is not None:
                args = {field_name: ast.literal_eval(call.args[0])}
    if not isinstance(args, dict):
        return NOT_JSON.format(error=f"{name}(...) does not hold literal arguments")
    return _to_call({"name": name, "arguments": args}, tools)


def _json_objects(text: str) -> list[tuple[int, int, Any]]:
    """Every top-level JSON value starting with '{' or '[' in ``text`` (start, end, value)."""
    decoder = json.JSONDecoder()
    found, pos = [], 0
    while (start := _next_bracket(text, pos)) != -1:
        try:
            value, end = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            pos = start + 1
            continue
        found.append((start, end, value))
        pos = end
    return found


def _next_bracket(text: str, pos: int) -> int:
    hits = [i for i in (text.find("{", pos), text.find("[", pos)) if i != -1]
    return min(hits) if hits else -1


def _collect(value: Any, tools: Mapping[str, BaseTool], parsed: Parsed) -> bool:
    """Add the call(s) in ``value`` to ``parsed``; False when it holds no call-like object."""
    items = value if isinstance(value, list) else [value]
    hit = False
    for item in items:
        result = _to_call(item, tools)
        if result is None:
            continue
        hit = True
        if isinstance(result, str):
            parsed.errors.append(result)
        else:
            parsed.calls.append(result)
    return hit


def parse_tool_calls(message: AIMessage, tools: Mapping[str, BaseTool]) -> Parsed:
    """Find the tool calls in a policy completion, in whatever form the engine returned them.

    Args:
        message: the policy's reply.
        tools: the tools offered in that turn, by name.

    Returns:
        The calls (with fresh ids where the text had none), one error line per call that
        was meant but cannot run, and the remaining text (the answer when there is no call).
    """
    content = message.content if isinstance(message.content, str) else str(message.content)
    text = _THINK.sub("", content).strip()
    parsed = Parsed()
    for call in message.tool_calls:
        if call["name"] in tools:
            parsed.calls.append(
                ToolCall(
                    name=call["name"],
                    args=call["args"],
                    id=call.get("id") or _call_id(),
                    type="tool_call",
                )
            )
        else:
            parsed.errors.append(UNKNOWN_TOOL.format(name=call["name"], names=", ".join(tools)))
    for bad in message.invalid_tool_calls:
        parsed.errors.append(NOT_JSON.format(error=bad.get("error") or bad.get("args")))
    if parsed.calls or parsed.errors:
        parsed.text = text
        return parsed

    tagged = _TAG.findall(text)
    if tagged:
        for body in tagged:
            objs = _json_objects(body)
            if not objs:
                parsed.errors.append(NOT_JSON.format(error=body[:80]))
            for _, _, value in objs:
                if not _collect(value, tools, parsed):
                    parsed.errors.append(NO_NAME)
        parsed.text = _TAG.sub("", text).strip()
        return parsed

    remaining = text
    for body in _FENCE.findall(text):
        for _, _, value in _json_objects(body):
            if _collect(value, tools, parsed):
                remaining = remaining.replace(body, "")
    if not parsed.calls and not parsed.errors:
        for start, end, value in _json_objects(text):
            if _collect(value, tools, parsed):
                remaining = remaining.replace(text[start:end], "")
    if not parsed.calls and not parsed.errors:
        # Small policies drop or add a closing bracket, or write Python's triple quotes in a
        # call, bare or fenced; read it as they meant it (else it would be taken as the answer).
        for body in [*_FENCE.findall(text), text]:
            meant = _BROKEN_CALL.match(body.strip()) and _object_literal(body.strip(), repair=True)
            if meant and _collect(meant, tools, parsed):
                remaining = "" if body is text else remaining.replace(body, "")
                break
    if not parsed.calls and not parsed.errors and (code := _code_call(text, tools)) is not None:
        if isinstance(code, str):
            parsed.errors.append(code)
        else:
            parsed.calls.append(code)
        remaining = ""
    parsed.text = _FENCE.sub(lambda m: m.group(0) if m.group(1).strip() else "", remaining).strip()
    bare = parsed.text.strip(" .:`'\"")
    if not parsed.calls and not parsed.errors and bare in tools:
        # A reply that is only a tool's name ("answer") meant a call; as an answer it is noise.
        parsed.errors.append(BARE_NAME.format(name=bare))
        parsed.text = ""
    return parsed
