"""The podium state graph: [forecast →] policy → tools (the guard) → execute → policy … → finish."""

from __future__ import annotations

# RunnableCallable is what LangGraph itself wraps node functions in; it is the one way to give a
# node sync and async twins *and* have the runtime (context) injected into both.
from langgraph._internal._runnable import RunnableCallable
from langgraph.graph import END, START, StateGraph
from langgraph.graph.state import CompiledStateGraph

from podium.graph.context import Context
from podium.graph.forecast import forecast_node, route_start
from podium.graph.policy import apolicy, policy, route_policy
from podium.graph.state import InputState, State
from podium.graph.tool_calls import aexecute, aguard, execute, guard, route_execute, route_guard
from podium.graph.trajectory import finish


def build_graph() -> StateGraph:
    """The uncompiled graph, for callers that add a checkpointer or embed it."""
    builder = StateGraph(State, input_schema=InputState, context_schema=Context)
    # Sync and async twins, so the graph works under invoke/stream and ainvoke/astream alike.
    builder.add_node("policy", RunnableCallable(policy, apolicy, name="policy"))
    # "tools" is the budget guard; "execute" runs what it admitted, after its checkpoint.
    builder.add_node("tools", RunnableCallable(guard, aguard, name="tools"))
    builder.add_node("execute", RunnableCallable(execute, aexecute, name="execute"))
    builder.add_node("finish", finish)
    builder.add_node("forecast", forecast_node)  # only when Context.forecast (Studio)
    builder.add_conditional_edges(START, route_start)
    builder.add_edge("forecast", "policy")
    builder.add_conditional_edges("policy", route_policy)
    builder.add_conditional_edges("tools", route_guard)
    builder.add_conditional_edges("execute", route_execute)
    builder.add_edge("finish", END)
    return builder


graph: CompiledStateGraph = build_graph().compile(name="podium")
