"""What a run needs beyond its state, resolved from the :class:`Context` and cached."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool

from podium.tools import PodiumConfig, load_config, pool_entries
from podium.tools.cost import ToolCost
from podium.tools.endpoints import chat_model
from podium.tools.environment import environment_tools
from podium.tools.pricing import Prices, TokenPrice
from podium.tools.redact import register_key_env

from .context import Context

_POLICY_OVERRIDE: ContextVar[BaseChatModel | None] = ContextVar("podium_policy", default=None)


@contextmanager
def policy_override(model: BaseChatModel) -> Iterator[None]:
    """Within the block, the policy node asks ``model`` instead of the configured endpoint.

    For in-process policies that have no OpenAI-compatible endpoint: the model being trained
    (online GRPO), the fixed routers of an evaluation, fakes in tests. Context variables follow
    LangGraph into its worker threads and tasks, so runs started inside the block see it and
    concurrent runs outside do not.
    """
    token = _POLICY_OVERRIDE.set(model)
    try:
        yield
    finally:
        _POLICY_OVERRIDE.reset(token)


_TOOLS_OVERRIDE: ContextVar[tuple[BaseTool, ...] | None] = ContextVar("podium_tools", default=None)


@contextmanager
def tools_override(tools: list[BaseTool]) -> Iterator[None]:
    """Within the block, runs offer ``tools`` (with cost metadata) instead of the profile's pool.

    For suites whose tasks bring their own functions (BFCL): the policy's calls to them are
    what is scored.
    """
    token = _TOOLS_OVERRIDE.set(tuple(tools))
    try:
        yield
    finally:
        _TOOLS_OVERRIDE.reset(token)


@dataclass(frozen=True)
class Resources:
    """The tool pool, the policy endpoint and the policy's price, for one context."""

    tools: dict[str, BaseTool]
    policy_base_url: str
    policy_model: str
    policy_api_key_env: str
    policy_price: TokenPrice
    max_tokens: int
    temperature: float

    def chat_model(self) -> BaseChatModel:
        """The policy behind its OpenAI-compatible endpoint (one seam for every engine)."""
        override = _POLICY_OVERRIDE.get()
        if override is not None:
            return override
        return _chat_model(
            self.policy_base_url,
            self.policy_model,
            self.policy_api_key_env,
            self.temperature,
            self.max_tokens,
            self.policy_price.input,
            self.policy_price.output,
        )


@lru_cache(maxsize=16)
def _chat_model(
    base_url: str,
    model: str,
    api_key_env: str,
    temperature: float,
    max_tokens: int,
    input_usd_per_mtok: float = 0.0,
    output_usd_per_mtok: float = 0.0,
) -> BaseChatModel:
    register_key_env(api_key_env)
    api_key = os.environ.get(api_key_env, "")
    return chat_model(
        base_url=base_url,
        model=model,
        api_key=api_key,
        temperature=temperature,
        max_tokens=max_tokens,
        price=ToolCost(
            input_usd_per_mtok=input_usd_per_mtok, output_usd_per_mtok=output_usd_per_mtok
        ),
    )


def _policy_url(ctx: Context, config: PodiumConfig) -> str:
    url = ctx.policy_base_url or config.policy.base_url
    if url:
        return url
    from podium.tools.llamacpp import embedded_base_url

    return embedded_base_url()


@lru_cache(maxsize=32)
def _pool(profile: str, config_path: str, local_only: bool, _stamp: Any) -> tuple[BaseTool, ...]:
    entries = pool_entries(profile, config=config_path or None, local_only=local_only)
    return tuple(e.tool for e in entries if e.tool is not None)


def resolve(ctx: Context) -> Resources:
    """The resources of ``ctx``."""
    config = load_config(ctx.config or None)
    # The pool depends on environment keys too (a tool appears when its key is set).
    keys = tuple(sorted(k for k in os.environ if k.endswith("_API_KEY")))
    tools = _TOOLS_OVERRIDE.get()
    if tools is None:
        tools = _pool(ctx.profile, ctx.config, ctx.local_only, (id(config), keys))
    if ctx.environment:  # a ToolScale-style environment: its database tools join the pool
        rate = Prices(config).number("compute", "per_second")
        tools = (*tools, *environment_tools(ctx.environment, rate))
    policy = config.policy
    return Resources(
        tools={t.name: t for t in tools},
        policy_price=Prices(config).model(policy.price),  # a bad price fails before a server starts
        policy_base_url=_policy_url(ctx, config),
        policy_model=ctx.policy_model or policy.model,
        policy_api_key_env=policy.api_key_env,
        max_tokens=policy.max_tokens,
        temperature=ctx.temperature if ctx.temperature >= 0 else policy.temperature,
    )
