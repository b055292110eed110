"""A fake tool-calling chat model and priced fake tools for fast unit tests (no network)."""

from __future__ import annotations

from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import BaseTool, StructuredTool
from pydantic import Field

from podium.tools.cost import ToolCost, Usage, with_cost


class FakePolicy(BaseChatModel):
    """Replies from a script; records every prompt and the tools bound to it."""

    script: list[Any] = Field(default_factory=list)
    prompts: list[list[BaseMessage]] = Field(default_factory=list)
    bound: list[list[str]] = Field(default_factory=list)
    schemas: list[list[dict]] = Field(default_factory=list)  # the tool schemas of each call
    choices: list[object] = Field(default_factory=list)
    usage: tuple[int, int] = (100, 20)

    @property
    def _llm_type(self) -> str:
        return "fake-policy"

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        self.prompts.append(list(messages))
        self.bound.append([t["function"]["name"] for t in kwargs.get("tools", [])])
        self.schemas.append(list(kwargs.get("tools", [])))
        self.choices.append(kwargs.get("tool_choice"))
        item = self.script.pop(0)
        if isinstance(item, Exception):
            raise item
        msg = AIMessage(content=item) if isinstance(item, str) else item.model_copy(deep=True)
        msg.usage_metadata = {
            "input_tokens": self.usage[0],
            "output_tokens": self.usage[1],
            "total_tokens": sum(self.usage),
        }
        return ChatResult(generations=[ChatGeneration(message=msg)])

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        from langchain_core.utils.function_calling import convert_to_openai_tool

        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)


def calc_tool(per_call: float = 0.001) -> BaseTool:
    """A priced calculator: evaluates an arithmetic expression."""

    def calc(expression: str) -> tuple[str, Usage]:
        """Evaluate an arithmetic expression."""
        return str(eval(expression, {"__builtins__": {}})), Usage()

    tool = StructuredTool.from_function(calc, response_format="content_and_artifact")
    return with_cost(
        tool, ToolCost(per_call_usd=per_call, locality="local", capability="arithmetic")
    )


def expert_tool(
    in_price: float = 1.25,
    out_price: float = 10.0,
    max_out: int = 1000,
    used: tuple[int, int] = (300, 50),
) -> BaseTool:
    """A priced fake LLM expert reporting token usage."""

    def oracle(question: str) -> tuple[str, Usage]:
        """Ask the oracle."""
        return "the oracle says 42", Usage(input_tokens=used[0], output_tokens=used[1])

    tool = StructuredTool.from_function(oracle, response_format="content_and_artifact")
    return with_cost(
        tool,
        ToolCost(
            input_usd_per_mtok=in_price,
            output_usd_per_mtok=out_price,
            max_output_tokens=max_out,
            locality="remote",
            capability="knows everything",
        ),
    )


def broken_tool() -> BaseTool:
    """A tool that always raises."""

    def boom(x: str) -> str:
        """Always fails."""
        raise RuntimeError("kaboom")

    return with_cost(StructuredTool.from_function(boom), ToolCost(per_call_usd=0.0005))
