"""The podium state graph: [forecast →] policy → tools (the guard) → execute → policy … → finish."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from langchain_core.runnables import RunnableLambda
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph
from langgraph.runtime import Runtime, get_runtime

from podium.graph.context import Context
from podium.graph.forecast import forecast_node, route_start
from podium.graph.policy import apolicy, policy, route_policy
from podium.graph.state import InputState, State
from podium.graph.tool_calls import aexecute, aguard, execute, guard, route_execute, route_guard
from podium.graph.trajectory import finish

Node = Callable[[State, Runtime[Context]], dict[str, Any]]
AsyncNode = Callable[[State, Runtime[Context]], Awaitable[dict[str, Any]]]


def twin_node(name: str, sync: Node, async_: AsyncNode) -> RunnableLambda[State, dict[str, Any]]:
    """One node with a sync and an async body, each handed the run's :class:`Runtime`.

    LangGraph runs a plain sync function under ``ainvoke`` in a worker thread and cannot run
    a plain async one under ``invoke``; a ``RunnableLambda`` with both bodies does each
    natively. The runtime (context, store) comes from ``get_runtime``, which reads the run's
    config that LangGraph sets for the node.
    """

    def run(state: State) -> dict[str, Any]:
        return sync(state, get_runtime(Context))

    async def arun(state: State) -> dict[str, Any]:
        return await async_(state, get_runtime(Context))

    return RunnableLambda(run, afunc=arun, name=name)


def build_graph() -> StateGraph[State, Context, InputState, Any]:
    """The uncompiled graph, for callers that add a checkpointer or embed it."""
    builder = StateGraph(State, input_schema=InputState, context_schema=Context)
    builder.add_node("policy", twin_node("policy", policy, apolicy))
    # "tools" is the budget guard; "execute" runs what it admitted, after its checkpoint.
    builder.add_node("tools", twin_node("tools", guard, aguard))
    builder.add_node("execute", twin_node("execute", execute, aexecute))
    builder.add_node("finish", finish)
    builder.add_node("forecast", forecast_node)  # only when Context.forecast (Studio)
    builder.add_conditional_edges(START, route_start)
    builder.add_edge("forecast", "policy")
    builder.add_conditional_edges("policy", route_policy)
    builder.add_conditional_edges("tools", route_guard)
    builder.add_conditional_edges("execute", route_execute)
    builder.add_edge("finish", END)
    return builder


graph: CompiledStateGraph[State, Context, InputState, Any] = build_graph().compile(name="podium")
