"""What the policy sees: the conversation rendered as Hermes/Qwen-style chat, and the answer tool.

The state keeps native LangChain messages (``AIMessage.tool_calls``, ``ToolMessage``), which
Studio and ``ToolNode`` need. The policy instead receives the same conversation as plain chat
text: calls as ``<tool_call>`` blocks in its own turns, results as ``<tool_response>`` blocks in
user turns — what Qwen/Hermes templates produce and tool-calling policies are trained on. Sending
native messages would be equivalent, but chat templates render OpenAI's JSON-string arguments
twice (a JSON string inside JSON), which small policies copy and loop on. Rendering is
deterministic, so a trajectory's prompts are rebuilt from its messages and the tool schemas it
stored (:func:`tool_schemas`, per turn the names under :data:`OFFERED_KEY`) alone, for training.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

from .delegation import ANSWER, answer_tool, answer_tool_for, experts_of

__all__ = [
    "ANSWER",
    "OFFERED_KEY",
    "answer_tool",
    "offered_schemas",
    "policy_tools",
    "render",
    "tool_schemas",
]
OFFERED_KEY = "podium_tools"
"""Key of a policy turn's ``response_metadata`` naming the tools that turn was offered."""


def _call_text(msg: AIMessage) -> str:
    calls = [{"name": c["name"], "arguments": c["args"]} for c in msg.tool_calls]
    return "\n".join(f"<tool_call>\n{json.dumps(c)}\n</tool_call>" for c in calls)


def render(messages: list[AnyMessage]) -> list[AnyMessage]:
    """The policy's prompt for a conversation: calls as text, results merged into user turns."""
    out: list[AnyMessage] = []
    pending: list[str] = []  # user-side text (tool results, notes) waiting for one user turn

    def flush() -> None:
        if pending:
            out.append(HumanMessage("\n".join(pending)))
            pending.clear()

    for msg in messages:
        if isinstance(msg, ToolMessage):
            pending.append(f"<tool_response>\n{msg.content}\n</tool_response>")
        elif isinstance(msg, HumanMessage):
            pending.append(str(msg.content))
        elif isinstance(msg, AIMessage):
            flush()
            out.append(AIMessage(_call_text(msg) if msg.tool_calls else str(msg.content)))
        else:
            flush()
            out.append(msg)
    flush()
    return out


def policy_tools(pool: dict[str, BaseTool], forced: bool) -> dict[str, BaseTool]:
    """Tools offered in a turn: the pool and ``answer``, or only ``answer`` when forced.

    ``answer`` may name an LLM expert of the pool to write the answer (``delegation``); a
    forced turn (budget, last turn) answers itself.
    """
    if forced:
        return {ANSWER: answer_tool}
    return {ANSWER: answer_tool_for(experts_of(pool)), **pool}


def tool_schemas(tools: Iterable[BaseTool | Mapping[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI tool schemas: what the policy is bound with and what a trajectory record keeps."""
    return [convert_to_openai_tool(t) for t in tools]


def offered_schemas(
    schemas: Sequence[Mapping[str, Any]], names: Sequence[str]
) -> list[dict[str, Any]]:
    """The schemas of the tools ``names`` (a turn's offer), in that order, out of a record's."""
    by_name = {s["function"]["name"]: dict(s) for s in schemas}
    missing = [n for n in names if n not in by_name]
    if missing:
        raise KeyError(f"no stored schema for tool {missing[0]!r}")
    return [by_name[n] for n in names]
