"""The one seam to every model: an OpenAI-compatible endpoint behind ``ChatOpenAI``."""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import socket
import time
import urllib.request
import weakref
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlparse

import httpx
import openai
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatResult
from langchain_openai import ChatOpenAI

from podium.tools.cost import ToolCost, Usage, trusted_tokens, usage_costs
from podium.tools.localhost import is_loopback
from podium.tools.redact import redact

_OPENAI_HOST = "api.openai.com"
RETRIES = 2  # extra attempts after a failure the provider cannot have billed
_RETRY_STATUS = frozenset({408, 409, 429})  # and every 5xx: what the OpenAI client retries


def _not_sent_errors() -> tuple[type[BaseException], ...]:
    """Errors raised before a request left this host: no provider can have billed it.

    A refused connection, a failed name lookup, and the connect errors of the HTTP clients
    podium's tools use (httpx, and httpx2 for openai >= 3; urllib3 under requests; aiohttp).
    """
    found: list[type[BaseException]] = [socket.gaierror, ConnectionRefusedError]
    names = {
        "httpx": ("ConnectError", "ConnectTimeout"),
        "httpx2": ("ConnectError", "ConnectTimeout"),
        "urllib3.exceptions": ("NewConnectionError", "ConnectTimeoutError"),
        "aiohttp": ("ClientConnectorError",),
    }
    for module, classes in names.items():
        with contextlib.suppress(ImportError):
            found += [getattr(importlib.import_module(module), c) for c in classes]
    return tuple(found)


_NOT_SENT = _not_sent_errors()


def billable(exc: BaseException) -> bool:
    """Whether a failed request may still be billed by the provider (its reply was lost).

    An HTTP error status is the provider saying the completion did not happen, and a
    connection that was never made sent nothing: neither is billed. Anything else (a read
    timeout, a connection dropped mid-reply, a body that does not parse) reached a server that
    may have run and billed the completion, so the ledger bills its admitted worst case.
    """
    if isinstance(exc, openai.APIStatusError):
        return False
    cause: BaseException | None = exc
    while cause is not None:
        if isinstance(cause, _NOT_SENT):
            return False
        cause = cause.__cause__ or cause.__context__
    return True


def _retryable(exc: BaseException) -> bool:
    """An unbilled failure worth another attempt (overload, rate limit, refused connection)."""
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in _RETRY_STATUS or exc.status_code >= 500
    return not billable(exc)


def reported_usage(message: BaseMessage) -> Mapping[str, Any] | None:
    """The token counts an endpoint reported for ``message``, as it sent them.

    langchain-openai turns a missing ``prompt_tokens`` into 0 in ``usage_metadata``; the raw
    ``token_usage`` keeps the difference, so it is preferred. Validate the result with
    :func:`podium.tools.cost.trusted_tokens`.
    """
    raw = (getattr(message, "response_metadata", None) or {}).get("token_usage")
    if isinstance(raw, Mapping):
        return {
            "input_tokens": raw.get("prompt_tokens"),
            "output_tokens": raw.get("completion_tokens"),
        }
    return getattr(message, "usage_metadata", None)


def failed_call(exc: Exception) -> tuple[str, Usage]:
    """A tool call whose request failed, as its observation and usage (see :func:`billable`).

    A lost reply reports no tokens (the ledger bills the worst case); a failure no provider
    bills is marked ``unbilled``. Configured keys an endpoint echoed are redacted here,
    before the text reaches the state.
    """
    error = redact(f"{type(exc).__name__}: {exc}")[:500]
    return f"Error: {error}", Usage(error=error, unbilled=not billable(exc))


class BilledChatOpenAI(ChatOpenAI):
    """``ChatOpenAI`` that retries only failures no provider bills.

    The OpenAI client's own retries resend a request whose reply was lost (a read timeout):
    each may be billed and the ledger would see none. Here the client does not retry; a
    refused connection or an HTTP error status (429, 5xx) is retried with backoff, and a lost
    reply is raised for the caller to bill at its worst case (:func:`billable`).
    """

    unbilled_retries: int = RETRIES
    price: ToolCost | None = None
    """The model's token prices: each reply's ``usage_metadata`` then carries its dollars."""

    def _priced(self, result: ChatResult) -> ChatResult:
        """Add the cost fields to each reply's usage, so the model's traced run shows dollars.

        Only valid counts are priced (an invalid report is billed at its worst case by the
        ledger, which the graph node reports instead).
        """
        for generation in result.generations:
            usage = getattr(generation.message, "usage_metadata", None)
            tokens = trusted_tokens(reported_usage(generation.message))
            if self.price is not None and usage is not None and tokens is not None:
                usage.update(usage_costs(self.price, *tokens))
        return result

    def _generate(self, *args: Any, **kwargs: Any) -> ChatResult:
        for attempt in range(self.unbilled_retries + 1):
            try:
                return self._priced(super()._generate(*args, **kwargs))
            except Exception as exc:
                if attempt >= self.unbilled_retries or not _retryable(exc):
                    raise
                time.sleep(0.5 * 2**attempt)
        raise AssertionError("unreachable")

    async def _agenerate(self, *args: Any, **kwargs: Any) -> ChatResult:
        for attempt in range(self.unbilled_retries + 1):
            try:
                return self._priced(await super()._agenerate(*args, **kwargs))
            except Exception as exc:
                if attempt >= self.unbilled_retries or not _retryable(exc):
                    raise
                await asyncio.sleep(0.5 * 2**attempt)
        raise AssertionError("unreachable")


class PerLoopTransport(httpx.AsyncBaseTransport):
    """An async HTTP transport that keeps one connection pool per event loop (and proxy).

    langchain-openai shares one cached async client per base URL across the whole process,
    and pooled connections belong to the loop that opened them: a second ``asyncio.run`` of
    the graph then fails with "Event loop is closed". Apps that embed the graph run it from
    several loops (``asyncio.run`` per request, notebooks, worker threads), so each loop gets
    its own pools here; they go when their loop is garbage-collected.

    httpx ignores the proxy environment when it is given a transport, so the proxy is chosen
    here: ``HTTP(S)_PROXY``/``ALL_PROXY`` and ``NO_PROXY`` as urllib reads them, except that a
    loopback server (the embedded one, ``podium serve``) is always reached directly.
    """

    def __init__(self) -> None:
        self._pools: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, dict[str | None, httpx.AsyncHTTPTransport]
        ] = weakref.WeakKeyDictionary()

    @staticmethod
    def proxy_for(url: httpx.URL) -> str | None:
        """The proxy URL for a request to ``url``, or ``None`` to connect directly."""
        if url.host == "localhost" or is_loopback(url.host):
            return None
        proxies = urllib.request.getproxies_environment()
        # NO_PROXY as urllib reads it; typeshed omits this stable helper (on Linux it is
        # proxy_bypass, elsewhere that one also asks the OS).
        if urllib.request.proxy_bypass_environment(url.host, proxies):  # type: ignore[attr-defined]
            return None
        return proxies.get(url.scheme) or proxies.get("all")

    def _pool(self, url: httpx.URL) -> httpx.AsyncHTTPTransport:
        pools = self._pools.setdefault(asyncio.get_running_loop(), {})
        proxy = self.proxy_for(url)
        if proxy not in pools:
            pools[proxy] = httpx.AsyncHTTPTransport(proxy=proxy)
        return pools[proxy]

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through the running loop's pool for its proxy."""
        return await self._pool(request.url).handle_async_request(request)

    async def aclose(self) -> None:
        """Close the running loop's pools."""
        for pool in self._pools.pop(asyncio.get_running_loop(), {}).values():
            await pool.aclose()


def chat_model(
    *,
    base_url: str,
    model: str,
    api_key: str,
    max_tokens: int,
    temperature: float = 0.0,
    timeout: float = 300.0,
    retries: int = RETRIES,
    price: ToolCost | None = None,
) -> ChatOpenAI:
    """A chat model for any OpenAI-compatible server: llama.cpp, vLLM or a hosted API.

    langchain-openai sends ``max_completion_tokens``, which llama.cpp's server ignores (a
    runaway generation then blocks the server); other servers also get the classic
    ``max_tokens``, which OpenAI itself rejects for its reasoning models. ``retries`` are
    podium's, of unbilled failures only (:class:`BilledChatOpenAI`); with ``price``, replies
    carry their dollars in ``usage_metadata`` (LangSmith's cost fields).
    """
    extra = None if urlparse(base_url).hostname == _OPENAI_HOST else {"max_tokens": max_tokens}
    return BilledChatOpenAI(
        name="ChatOpenAI",
        base_url=base_url,
        model=model,
        api_key=api_key or "none",
        max_tokens=max_tokens,
        temperature=temperature,
        timeout=timeout,
        max_retries=0,
        unbilled_retries=retries,
        price=price,
        extra_body=extra,
        http_async_client=httpx.AsyncClient(transport=PerLoopTransport(), timeout=timeout),
    )
