"""Robust tool-call parsing: native ``tool_calls``, ``<tool_call>`` tags, fenced or bare JSON.

Small policies served by llama.cpp or vLLM without a tool parser often write the call as
text. Every engine goes through this one function, so the graph does not care which engine
served the turn.
"""

from __future__ import annotations

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

NOT_JSON = (
    "tool call is not valid JSON ({error}): write one JSON object with 'name' and 'arguments'"
)
UNKNOWN_TOOL = "there is no tool named {name!r}; available tools: {names}"
NO_NAME = 'tool call has no tool name: write {{"name": ..., "arguments": {{...}}}}'
BAD_ARGS = "arguments of {name!r} must be a JSON object, got {args!r}"


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
    if not parsed.calls and not parsed.errors and _BROKEN_CALL.match(text):
        # Small policies drop or add a closing bracket; json-repair recovers the call they meant
        # (otherwise the broken JSON would be taken as the final answer).
        import json_repair

        if _collect(json_repair.loads(text), tools, parsed):
            remaining = ""
    parsed.text = _FENCE.sub(lambda m: m.group(0) if m.group(1).strip() else "", remaining).strip()
    return parsed
