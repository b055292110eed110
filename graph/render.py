"""What the policy sees: the conversation rendered as Hermes/Qwen-style chat, and the answer tool.

The state keeps native LangChain messages (``AIMessage.tool_calls``, ``ToolMessage``), which
Studio and ``ToolNode`` need. The policy instead receives the same conversation as plain chat
text: calls as ``<tool_call>`` blocks in its own turns, results as ``<tool_response>`` blocks in
user turns — what Qwen/Hermes templates produce and tool-calling policies are trained on. Sending
native messages would be equivalent, but chat templates render OpenAI's JSON-string arguments
twice (a JSON string inside JSON), which small policies copy and loop on. Rendering is
deterministic, so a trajectory's prompts are rebuilt from its messages alone (for training).
"""

from __future__ import annotations

import json

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage, ToolMessage
from langchain_core.tools import BaseTool, tool

ANSWER = "answer"


@tool(ANSWER)
def answer_tool(text: str) -> str:
    """Give the final answer to the user and finish. Call it as soon as you know the answer."""
    return text


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
    """Tools offered in a turn: the pool and ``answer``, or only ``answer`` when forced."""
    return {ANSWER: answer_tool} if forced else {ANSWER: answer_tool, **pool}
