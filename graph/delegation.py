"""``answer(model=X)``: the policy picks the model that writes the final answer.

As in ToolOrchestra, whose orchestrator ends a task by calling ``answer`` with a model: the
chosen LLM expert is handed the user's question and what the run's tools returned, and its
reply is the run's answer, word for word. A small policy need not copy an expert's reply
into an ``answer`` call itself — measured: a trained 0.5B answered code tasks with its own
request instead of the function the expert wrote (docs/learning.md, run 9).

The policy's call stays in the conversation as it wrote it (training learns the call); the
guard prices it, and ``execute`` runs it, as the call of the expert it names
(:func:`expert_call`). Its reply ends the run (:func:`delegated_answer`); a failed or blocked
one goes back to the policy, as any failed call does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import cache
from typing import Any, Literal

from langchain_core.messages import AIMessage, AnyMessage, ToolCall, ToolMessage
from langchain_core.tools import BaseTool, StructuredTool, tool
from pydantic import Field, create_model

from podium.tools import cost_of

ANSWER = "answer"
MODEL_ARG = "model"
FOUND_HEADER = "\n\nWhat the orchestrator's tools found:\n"
NOTE_HEADER = "\n\nThe orchestrator's note:\n"
FOUND_CHARS = 6000  # of tool results handed over: a few search passages, within an expert's context


@tool(ANSWER)
def answer_tool(text: str) -> str:
    """Give the final answer and finish, as soon as you know it. Keep it brief."""
    return text


def _answer(text: str = "", model: str | None = None) -> str:
    return text


def experts_of(pool: Mapping[str, BaseTool]) -> tuple[str, ...]:
    """The tools that can write the final answer: LLM experts (handed the question)."""
    return tuple(sorted(n for n, t in pool.items() if cost_of(t).sees_question))


@cache
def answer_tool_for(experts: tuple[str, ...]) -> BaseTool:
    """The ``answer`` tool of a turn whose pool holds ``experts``: answer, or name who does."""
    if not experts:
        return answer_tool
    # The Literal is built at run time from the pool, so its type is only known as Any.
    choice: Any = Literal[experts] | None
    args = create_model(
        "AnswerOrDelegateArgs",
        text=(str, Field(description="The final answer; empty when a model writes it.")),
        model=(
            choice,
            Field(
                None,
                description="A model to write the final answer instead of you: it is shown "
                "the question and what your tools found, and its reply is the answer.",
            ),
        ),
    )
    return StructuredTool.from_function(
        func=_answer, name=ANSWER, description=answer_tool.description, args_schema=args
    )


def delegate_of(call: Mapping[str, Any]) -> str:
    """The model an ``answer`` call hands the answer to, or ``""`` (the policy answers)."""
    if call.get("name") != ANSWER:
        return ""
    model = (call.get("args") or {}).get(MODEL_ARG)
    return model.strip() if isinstance(model, str) else ""


def _found(messages: Sequence[AnyMessage]) -> str:
    """What the run's tools returned (errors left out), the latest kept when too long."""
    results = [
        str(m.content).strip()
        for m in messages
        if isinstance(m, ToolMessage) and m.status != "error" and str(m.content).strip()
    ]
    text = "\n\n".join(results)
    return text[-FOUND_CHARS:]


def expert_call(call: ToolCall, question: str, messages: Sequence[AnyMessage]) -> ToolCall:
    """The expert call an ``answer(model=X)`` call runs as (same id, so its result pairs).

    The request starts with the user's question word for word, so the expert is sent it alone
    (``tools.experts.expert_request``): a router delegating at once asks exactly the question.
    """
    request = question.strip()
    found = _found(messages)
    if found:
        request += FOUND_HEADER + found
    note = str(call["args"].get("text") or "").strip()
    if note:
        request += NOTE_HEADER + note
    return ToolCall(
        name=delegate_of(call), args={"question": request}, id=call["id"], type="tool_call"
    )


def delegated_answer(messages: Sequence[AnyMessage], start: int) -> str | None:
    """The answer an expert wrote for the run's last turn, or None when it did not delegate.

    None too when the expert's call failed or was not run: the policy then sees why.
    """
    if not messages or not isinstance(messages[-1], ToolMessage):
        return None
    result = messages[-1]
    ai = next((m for m in reversed(messages[start:]) if isinstance(m, AIMessage)), None)
    if ai is None or len(ai.tool_calls) != 1 or not delegate_of(ai.tool_calls[0]):
        return None
    if result.tool_call_id != ai.tool_calls[0]["id"] or result.status == "error":
        return None
    return str(result.content).strip()
