"""What a run needs beyond its state, resolved from the :class:`Context` and cached."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool

from podium.tools import PodiumConfig, load_config, pool_entries
from podium.tools.adapters import active_adapter
from podium.tools.cost import ToolCost
from podium.tools.endpoints import chat_model
from podium.tools.environment import environment_tools
from podium.tools.price_shock import apply_shock, current_shock
from podium.tools.pricing import Prices, TokenPrice
from podium.tools.redact import register_key_env

from .context import Context

_POLICY_OVERRIDE: ContextVar[BaseChatModel | None] = ContextVar("podium_policy", default=None)
_TOOLS_OVERRIDE: ContextVar[tuple[BaseTool, ...] | None] = ContextVar("podium_tools", default=None)


@contextmanager
def _overriding(var: ContextVar[Any], value: Any) -> Iterator[None]:
    token = var.set(value)
    try:
        yield
    finally:
        # Left in another context than it was entered in (a pytest fixture around an async
        # test, whose task ran in a copy): that copy, and the value in it, are gone already.
        with suppress(ValueError):
            var.reset(token)


def policy_override(model: BaseChatModel) -> AbstractContextManager[None]:
    """Within the block, the policy node asks ``model`` instead of the configured endpoint.

    The one way to inject a policy: the model being trained (online GRPO), the fixed routers
    of an evaluation, :class:`podium.graph.testing.FakePolicy` in tests. The embedded
    llama.cpp server is not started for an overridden policy. Context variables follow
    LangGraph into its worker threads and tasks, so runs started inside the block see the
    override and concurrent runs outside do not; a thread pool of your own must copy the
    context (``contextvars.copy_context().run``) to carry it along.
    """
    return _overriding(_POLICY_OVERRIDE, model)


def tools_override(tools: Iterable[BaseTool]) -> AbstractContextManager[None]:
    """Within the block, runs offer ``tools`` (with cost metadata) instead of the profile's pool.

    The one way to inject tools: suites whose tasks bring their own functions (BFCL, whose
    calls are what is scored), a benchmark's priced tools, fakes in tests. Scoped like
    :func:`policy_override`; a context's ``environment`` tools still join them.
    """
    return _overriding(_TOOLS_OVERRIDE, tuple(tools))


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
    policy_adapter: dict[str, str] | None = None  # path + sha256 of the embedded policy's LoRA

    def active_adapter(self) -> dict[str, str] | None:
        """The adapter the policy answers with: none when an in-process policy overrides it."""
        return None if _POLICY_OVERRIDE.get() is not None else self.policy_adapter

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


def _policy_url(ctx: Context, config: PodiumConfig, overridden: bool) -> str:
    url = ctx.policy_base_url or config.policy.base_url
    if url or overridden:  # an overridden policy is never asked through its endpoint
        return url
    from podium.tools.llamacpp import embedded_base_url

    return embedded_base_url(config.policy.adapter)


@lru_cache(maxsize=32)
def _pool(profile: str, config_path: str, local_only: bool, _stamp: Any) -> tuple[BaseTool, ...]:
    entries = pool_entries(profile, config=config_path or None, local_only=local_only)
    return tuple(e.tool for e in entries if e.tool is not None)


def resolve_tools(ctx: Context) -> dict[str, BaseTool]:
    """The tool pool of ``ctx``, by name, without resolving (or starting) the policy's server."""
    config = load_config(ctx.config or None)
    # The pool depends on environment keys too (a tool appears when its key is set).
    keys = tuple(sorted(k for k in os.environ if k.endswith("_API_KEY")))
    tools = _TOOLS_OVERRIDE.get()
    shock = current_shock()
    if tools is None:
        stamp = (id(config), keys, shock.stamp() if shock else "")
        tools = _pool(ctx.profile, ctx.config, ctx.local_only, stamp)
    tools = apply_shock(tools, shock)  # per-tool price factors: an eval's shock, training jitter
    if ctx.environment:  # a ToolScale-style environment: its database tools join the pool
        rate = Prices(config).number("compute", "per_second")
        tools = (*tools, *environment_tools(ctx.environment, rate))
    return {t.name: t for t in tools}


def resolve(ctx: Context) -> Resources:
    """The resources of ``ctx``."""
    config = load_config(ctx.config or None)
    policy = config.policy
    return Resources(
        tools=resolve_tools(ctx),
        policy_price=Prices(config).model(policy.price),  # a bad price fails before a server starts
        policy_base_url=_policy_url(ctx, config, overridden=_POLICY_OVERRIDE.get() is not None),
        policy_model=ctx.policy_model or policy.model,
        policy_api_key_env=policy.api_key_env,
        max_tokens=policy.max_tokens,
        temperature=ctx.temperature if ctx.temperature >= 0 else policy.temperature,
        policy_adapter=active_adapter(config, ctx.policy_base_url),
    )
