"""Fixed routers for baselines: in-process chat models that stand in for the policy.

Each one calls a single tool with the question and passes the tool's answer through, so it runs
through the same graph, tool pool, ledger and trajectory store as the policy: an LLM expert
is named in ``answer(model=X)`` (it is handed the question and its reply is the answer), any
other tool is called and its result answered with. They are used
inside :func:`podium.graph.resources.policy_override`. ``strongest`` and ``cheapest`` pick the
most and least expensive LLM expert by its :class:`~podium.tools.ToolCost`; ``random`` any tool;
``oracle`` (``runner.run_oracle``) is no fixed router: the policy runs once with each tool forced
as its first call (and once answering at once), and the cheapest correct run is kept.
``direct`` is the policy model itself asked the bare question, no tools and no orchestration
prompt: what orchestration adds to (or costs) the same model on the same server.
"""

from __future__ import annotations

import random
import re
import uuid
from collections.abc import Sequence
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import BaseTool

from podium.graph.delegation import MODEL_ARG, experts_of
from podium.graph.render import ANSWER
from podium.tools import cost_of
from podium.tools.errors import UserError

ROUTERS = ("policy", "direct", "strongest", "cheapest", "random", "oracle")
RESPONSE = re.compile(r"<tool_response>\n?(.*?)\n?</tool_response>", re.DOTALL)


class RouterError(UserError, ValueError):
    """A router cannot be used with this pool (unknown name, no LLM expert)."""


class _Router(BaseChatModel):
    """An in-process stand-in for the policy: its choice is its own, not the offered tools'."""

    @property
    def _llm_type(self) -> str:
        return f"podium-{type(self).__name__.lower()}"

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        """Accept the turn's tools (the router ignores them)."""
        return self


class FixedRouter(_Router):
    """Calls ``tool`` once with the question, then answers with the tool's observation.

    ``delegate``: ``tool`` is an LLM expert, named in the answer call instead (one turn).
    ``before``: a tool called with the question first (``search+strongest``: retrieval, then
    the expert answers from what it found, handed to it by ``answer(model=X)``).
    """

    tool: str
    arg: str = "question"
    delegate: bool = False
    before: str = ""
    before_arg: str = "question"

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        turn = sum(isinstance(m, AIMessage) for m in messages) - bool(self.before)
        question = question_of(messages)
        if turn < 0:
            name, args = self.before, {self.before_arg: question}
        elif turn == 0 and self.delegate:
            name, args = ANSWER, {"text": "", MODEL_ARG: self.tool}
        elif turn == 0:
            name, args = self.tool, {self.arg: question}
        else:  # the tool's observation (or why the expert failed) is the answer
            seen = [
                r
                for m in messages
                if isinstance(m, HumanMessage)
                for r in RESPONSE.findall(str(m.content))
            ]
            name, args = ANSWER, {"text": seen[-1].strip() if seen else ""}
        return _one_call(name, args, {"input_tokens": 0, "output_tokens": 0, "total_tokens": 0})


def _one_call(
    name: str, args: dict[str, Any], usage: Any, response_metadata: dict[str, Any] | None = None
) -> ChatResult:
    """A router's turn: one call of ``name``, billed as ``usage``."""
    msg = AIMessage(
        content="",
        tool_calls=[{"name": name, "args": args, "id": f"call_{uuid.uuid4().hex[:12]}"}],
        usage_metadata=usage,
        response_metadata=response_metadata or {},
    )
    return ChatResult(generations=[ChatGeneration(message=msg)])


class DirectRouter(_Router):
    """Asks ``model`` (the policy's own endpoint) the bare question and answers with its reply.

    The reply's token usage rides on the answer call, so the graph bills the policy's tokens
    as it bills any policy turn.
    """

    model: BaseChatModel

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        reply = self.model.invoke([HumanMessage(question_of(messages))])
        usage = getattr(reply, "usage_metadata", None)
        return _one_call(ANSWER, {"text": str(reply.content)}, usage, reply.response_metadata)


def question_of(messages: Sequence[BaseMessage]) -> str:
    """The user's question: the first human message after the system prompt."""
    for m in messages:
        if isinstance(m, HumanMessage):
            return str(m.content)
        if not isinstance(m, SystemMessage):
            break
    return ""


def argument_of(tool: BaseTool) -> str:
    """The name of the one text argument a fixed router fills with the question."""
    props = tool.tool_call_schema.model_json_schema().get("properties", {})  # type: ignore[union-attr]
    strings = [k for k, v in props.items() if v.get("type") == "string"]
    if not strings:
        raise RouterError(
            f"tool {tool.name!r} takes no text argument; a fixed router cannot call it"
        )
    return strings[0]


def llm_experts(tools: dict[str, BaseTool]) -> list[BaseTool]:
    """Token-priced tools (LLM experts), cheapest first by input + output price per M tokens."""
    priced = []
    for tool in tools.values():
        cost = cost_of(tool)
        if cost.input_usd_per_mtok or cost.output_usd_per_mtok:
            priced.append((cost.input_usd_per_mtok + cost.output_usd_per_mtok, tool.name, tool))
    return [t for *_, t in sorted(priced, key=lambda p: (p[0], p[1]))]


def fixed_router(tool: BaseTool) -> FixedRouter:
    """A router that always calls ``tool`` (names it in ``answer`` if it is an LLM expert)."""
    delegate = bool(experts_of({tool.name: tool}))
    return FixedRouter(tool=tool.name, arg=argument_of(tool), delegate=delegate)


CHAINED = ("strongest", "cheapest")
"""Routers a tool can be chained before: ``TOOL+strongest`` calls TOOL, then the expert answers."""


def router_for(name: str, tools: dict[str, BaseTool], *, seed: int = 0) -> FixedRouter:
    """The fixed router ``name`` (``strongest``, ``cheapest``, ``random``) over ``tools``.

    ``random`` draws its tool from ``seed`` (the runner passes a per-task seed).
    ``TOOL+strongest`` (or ``+cheapest``) calls the pool's TOOL with the question first.
    """
    first, plus, rest = name.rpartition("+")
    if plus:
        if rest not in CHAINED or first not in tools:
            raise RouterError(
                f"router {name!r}: write TOOL+strongest or TOOL+cheapest with a tool of the "
                f"pool ({', '.join(sorted(tools))})"
            )
        chained = router_for(rest, tools, seed=seed)
        return chained.model_copy(update={"before": first, "before_arg": argument_of(tools[first])})
    if name in CHAINED:
        experts = llm_experts(tools)
        if not experts:
            raise RouterError(f"router {name!r} needs an LLM expert in the tool pool; none is")
        return fixed_router(experts[-1] if name == "strongest" else experts[0])
    if name == "random":
        if not tools:
            raise RouterError("router 'random' needs at least one tool in the pool")
        names = sorted(tools)
        return fixed_router(tools[random.Random(seed).choice(names)])
    raise RouterError(f"unknown router {name!r}: use one of {', '.join(ROUTERS)}")
