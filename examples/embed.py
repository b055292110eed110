"""Embedding podium's compiled graph in a LangChain / LangGraph application.

Three ways, each a function you can copy:

1. ``as_runnable`` — the graph is a Runnable: ``invoke``/``batch``/``stream`` with a ``Context``.
2. ``as_tool`` — ``Runnable.as_tool`` makes it a tool of another agent (here a LangGraph agent
   that delegates questions to it through a ``ToolNode``).
3. ``as_subgraph`` — the compiled graph is a node of a larger graph; its updates stream out
   with ``subgraphs=True`` and the parent's context flows into it.

Run it on the embedded default (no keys, no GPU): ``.venv/bin/python examples/embed.py``.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass, field
from typing import Annotated, Any

from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AnyMessage, HumanMessage
from langchain_core.runnables import RunnableLambda
from langchain_core.tools import BaseTool
from langgraph.graph import END, START, StateGraph, add_messages
from langgraph.prebuilt import ToolNode
from pydantic import BaseModel, Field

from podium.graph import Context, graph

QUESTION = "What is 1234 * 5678? Use the python tool."


# --- 1. a Runnable ---------------------------------------------------------------------------


def as_runnable(ctx: Context, questions: list[str]) -> list[dict[str, Any]]:
    """Answer ``questions`` in one ``batch`` call; each result is the run's final state."""
    return graph.batch([{"question": q} for q in questions], context=ctx)


# --- 2. a tool of another agent ----------------------------------------------------------------


class Ask(BaseModel):
    """The tool's input."""

    question: str = Field(description="The question for the orchestrator.")


def podium_tool(ctx: Context) -> BaseTool:
    """The graph as a LangChain tool that returns the answer (and bills inside its budget).

    ``as_tool`` on a small wrapper rather than on the graph itself: the wrapper passes the
    run's ``Context`` (which a tool call cannot carry) and returns the answer, not the state.
    """

    def run(inputs: dict[str, Any]) -> str:
        return graph.invoke({"question": inputs["question"]}, context=ctx)["answer"]

    return RunnableLambda(run).as_tool(
        name="ask_podium",
        description="Ask the podium orchestrator; it uses priced tools and answers briefly.",
        args_schema=Ask,
    )


@dataclass
class AgentState:
    """The outer agent's conversation."""

    messages: Annotated[list[AnyMessage], add_messages] = field(default_factory=list)


def delegating_agent(model: BaseChatModel, tool: BaseTool) -> Any:
    """A LangGraph agent that hands the user's question to ``tool`` through a ToolNode.

    The model must call the tool (a named ``tool_choice``, which llama.cpp, vLLM and OpenAI
    enforce), so even a small local model delegates reliably.
    """
    llm = model.bind_tools([tool], tool_choice=tool.name)

    def delegate(state: AgentState) -> dict[str, Any]:
        return {"messages": [llm.invoke(state.messages)]}

    builder = StateGraph(AgentState)
    builder.add_node("delegate", delegate)
    builder.add_node("tools", ToolNode([tool]))
    builder.add_edge(START, "delegate")
    builder.add_edge("delegate", "tools")
    builder.add_edge("tools", END)
    return builder.compile(name="delegating-agent")


def as_tool(ctx: Context, model: BaseChatModel, question: str) -> str:
    """Ask ``question`` to an agent that uses podium as its tool; return the tool's answer."""
    agent = delegating_agent(model, podium_tool(ctx))
    out = agent.invoke({"messages": [HumanMessage(question)]})
    return str(out["messages"][-1].content)


# --- 3. a subgraph node ------------------------------------------------------------------------


@dataclass
class ReportState:
    """A larger application's state: questions in, a report out."""

    question: str = ""
    answer: str = ""
    cost_usd: float = 0.0
    log: Annotated[list[str], operator.add] = field(default_factory=list)


def report(state: ReportState) -> dict[str, Any]:
    """The parent's own step after the podium subgraph."""
    return {"log": [f"answered {state.question!r}: {state.answer} (${state.cost_usd:.6f})"]}


def application() -> Any:
    """A parent graph with podium as its ``answer`` node (shared keys: question, answer, cost)."""
    builder = StateGraph(ReportState, context_schema=Context)
    builder.add_node("podium", graph)
    builder.add_node("report", report)
    builder.add_edge(START, "podium")
    builder.add_edge("podium", "report")
    builder.add_edge("report", END)
    return builder.compile(name="report-app")


def as_subgraph(ctx: Context, question: str) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    """Run the parent graph, streaming podium's own updates; return (updates, final state)."""
    updates: list[tuple[str, str]] = []
    final: dict[str, Any] = {}
    for namespace, mode, chunk in application().stream(
        {"question": question},
        context=ctx,
        stream_mode=["updates", "values"],
        subgraphs=True,
    ):
        if mode == "values" and not namespace:
            final = chunk
        elif mode == "updates":
            where = namespace[0].split(":")[0] if namespace else "parent"
            updates.extend((where, node) for node in chunk)
    return updates, final


def main() -> None:
    """Run the three embeddings on the embedded default and print what each returns."""
    from podium.tools.endpoints import chat_model
    from podium.tools.llamacpp import embedded_base_url

    ctx = Context(budget_usd=0.05, max_turns=4, temperature=0.0)
    (state,) = as_runnable(ctx, [QUESTION])
    print(f"1. runnable: {state['answer']!r} for ${state['cost_usd']:.6f}")
    outer = chat_model(
        base_url=embedded_base_url(), model="policy", api_key="", temperature=0.0, max_tokens=128
    )
    print(f"2. as a tool of another agent: {as_tool(ctx, outer, QUESTION)!r}")
    updates, final = as_subgraph(ctx, QUESTION)
    print("3. subgraph updates: " + ", ".join(f"{w}/{n}" for w, n in updates))
    print(f"   parent log: {final['log']}")


if __name__ == "__main__":
    main()
