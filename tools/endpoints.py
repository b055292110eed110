"""The one seam to every model: an OpenAI-compatible endpoint behind ``ChatOpenAI``."""

from __future__ import annotations

import asyncio
import urllib.request
import weakref
from urllib.parse import urlparse

import httpx
from langchain_openai import ChatOpenAI

from podium.tools.localhost import is_loopback

_OPENAI_HOST = "api.openai.com"


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
    max_retries: int = 2,
) -> ChatOpenAI:
    """A chat model for any OpenAI-compatible server: llama.cpp, vLLM or a hosted API.

    langchain-openai sends ``max_completion_tokens``, which llama.cpp's server ignores (a
    runaway generation then blocks the server); other servers also get the classic
    ``max_tokens``, which OpenAI itself rejects for its reasoning models. Retries with
    exponential backoff are the OpenAI client's own.
    """
    extra = None if urlparse(base_url).hostname == _OPENAI_HOST else {"max_tokens": max_tokens}
    return ChatOpenAI(
        base_url=base_url,
        model=model,
        api_key=api_key or "none",
        max_tokens=max_tokens,
        temperature=temperature,
        timeout=timeout,
        max_retries=max_retries,
        extra_body=extra,
        http_async_client=httpx.AsyncClient(transport=PerLoopTransport(), timeout=timeout),
    )
