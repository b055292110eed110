"""Other LLMs as tools: "ask model X", behind any OpenAI-compatible endpoint."""

from __future__ import annotations

import importlib.util
import os
from typing import Annotated, Any, Literal
from urllib.parse import urlparse

from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool, StructuredTool
from langgraph.prebuilt import InjectedState
from pydantic import BaseModel, Field

from .config import ExpertConfig
from .cost import ToolCost, Usage, token_bound, trusted_tokens, with_cost
from .endpoints import chat_model, failed_call, reported_usage
from .model_files import PACKAGED_MODELS
from .pricing import Prices
from .redact import redact, register_key_env

EMBEDDED = "embedded"
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}
EXPERT_SYSTEM = (
    "You are an expert assistant consulted by an orchestrator. Answer the question directly "
    "and concisely; show short reasoning only when it helps, and end with the answer."
)


TASK_HEADER = "The user's question:\n"
REQUEST_HEADER = "\n\nWhat the orchestrator asks of you:\n"


class ExpertArgs(BaseModel):
    """Arguments of every expert tool: the policy writes ``question``; the graph adds ``task``."""

    question: str = Field(
        description="What to ask the expert. It is shown the user's question too, so say what "
        "it should do with it (or repeat the question), with any facts found so far."
    )
    # Filled by LangGraph's ToolNode from the graph state; a model cannot set it.
    task: Annotated[str, InjectedState("question")] = Field(
        "", description="The user's question, handed over by the graph (not the policy's)."
    )


def holds_question(text: str, task: str) -> bool:
    """Whether ``text`` needs no ``task`` beside it: none was given, or it holds it already."""
    task = task.strip()
    return not task or task in text


def expert_request(question: str, task: str) -> str:
    """What the expert is asked: the user's question, then the orchestrator's request.

    As in ToolOrchestra, where the orchestrator picks the model and the model is given the
    problem: a small policy's rewrite loses it (measured: a trained 0.5B sent the last
    sentence of a word problem, or a code task cut at its first fence). A request that
    already holds the question is sent alone, so a router that forwards the question verbatim
    asks exactly what it asked before.
    """
    if holds_question(question, task):
        return question
    return f"{TASK_HEADER}{task.strip()}{REQUEST_HEADER}{question}"


def locality(cfg: ExpertConfig) -> Literal["local", "remote"]:
    """'local' for the embedded server or a loopback endpoint, else 'remote' (unless set)."""
    if cfg.locality != "":
        return cfg.locality
    if cfg.base_url == EMBEDDED or urlparse(cfg.base_url).hostname in _LOOPBACK:
        return "local"
    return "remote"


def unavailable_reason(cfg: ExpertConfig) -> str | None:
    """Why this expert cannot be offered now (missing key or model), or None."""
    if cfg.api_key_env and not os.environ.get(cfg.api_key_env):
        return f"{cfg.api_key_env} is not set"
    if cfg.base_url == EMBEDDED and importlib.util.find_spec("llama_cpp") is None:
        from .llamacpp import NOT_INSTALLED

        return NOT_INSTALLED
    if cfg.requires_model:
        model = PACKAGED_MODELS.get(cfg.requires_model)
        if model is None:
            return f"unknown packaged model {cfg.requires_model!r}"
        if not model.installed():
            return f"model {model.title} is not installed (make install-strong)"
    return None


def _base_url(cfg: ExpertConfig, adapter: str = "") -> str:
    """The expert's endpoint; the embedded server's is started (or restarted) as needed.

    ``adapter`` is the policy's (``[policy] adapter``): the experts then ask the server that
    serves the adapted policy, so one server holds every local model.
    """
    if cfg.base_url == EMBEDDED:
        from .llamacpp import embedded_base_url

        return embedded_base_url(adapter)
    return cfg.base_url


def _chat_model(cfg: ExpertConfig, base_url: str) -> BaseChatModel:
    if cfg.base_url == EMBEDDED:
        api_key = "embedded"
    else:
        api_key = os.environ.get(cfg.api_key_env, "") if cfg.api_key_env else ""
    return chat_model(
        base_url=base_url,
        model=cfg.model,
        api_key=api_key,
        max_tokens=cfg.max_tokens,
        timeout=cfg.timeout_s,
    )


def usage_of(reply: Any) -> Usage:
    """The reply's token counts; none (so the call's worst case) when missing or invalid."""
    tokens = trusted_tokens(reported_usage(reply))
    return Usage(input_tokens=tokens[0], output_tokens=tokens[1]) if tokens else Usage()


def expert_tool(name: str, cfg: ExpertConfig, prices: Prices, adapter: str = "") -> BaseTool:
    """Build the tool ``name`` that forwards a question to the expert model of ``cfg``."""
    price = prices.model(cfg.price)
    register_key_env(cfg.api_key_env)
    state: dict[str, Any] = {}

    def llm() -> BaseChatModel:
        # Resolved at first use (listing a pool starts nothing) and on every call after: an
        # embedded server that died is restarted on another port, and the client follows it.
        url = _base_url(cfg, adapter)
        if state.get("url") != url:
            state["llm"], state["url"] = _chat_model(cfg, url), url
        return state["llm"]

    def ask(question: str, task: str = "") -> tuple[str, Usage]:
        request = expert_request(question, task)
        try:
            reply = llm().invoke([("system", EXPERT_SYSTEM), ("human", request)])
        except Exception as exc:
            return failed_call(exc)
        return redact(str(reply.content)), usage_of(reply)

    async def aask(question: str, task: str = "") -> tuple[str, Usage]:
        request = expert_request(question, task)
        try:
            reply = await llm().ainvoke([("system", EXPERT_SYSTEM), ("human", request)])
        except Exception as exc:
            return failed_call(exc)
        return redact(str(reply.content)), usage_of(reply)

    tool = StructuredTool.from_function(
        func=ask,
        coroutine=aask,
        name=name,
        description=f"Ask {cfg.model}. {cfg.capability}",
        args_schema=ExpertArgs,
        response_format="content_and_artifact",
    )
    cost = ToolCost(
        input_usd_per_mtok=price.input,
        output_usd_per_mtok=price.output,
        max_output_tokens=cfg.max_tokens,
        prompt_tokens=token_bound(EXPERT_SYSTEM + TASK_HEADER + REQUEST_HEADER),
        expected_latency_s=cfg.expected_latency_s,
        locality=locality(cfg),
        sees_question=True,
        capability=cfg.capability,
        price_source=price.source,
    )
    return with_cost(tool, cost)
