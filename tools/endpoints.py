"""The one seam to every model: an OpenAI-compatible endpoint behind ``ChatOpenAI``."""

from __future__ import annotations

import asyncio
import weakref
from urllib.parse import urlparse

import httpx
from langchain_openai import ChatOpenAI

_OPENAI_HOST = "api.openai.com"


class PerLoopTransport(httpx.AsyncBaseTransport):
    """An async HTTP transport that keeps one connection pool per event loop.

    langchain-openai shares one cached async client per base URL across the whole process,
    and pooled connections belong to the loop that opened them: a second ``asyncio.run`` of
    the graph then fails with "Event loop is closed". Apps that embed the graph run it from
    several loops (``asyncio.run`` per request, notebooks, worker threads), so each loop gets
    its own pool here; a pool goes when its loop is garbage-collected.
    """

    def __init__(self) -> None:
        self._pools: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, httpx.AsyncHTTPTransport
        ] = weakref.WeakKeyDictionary()

    def _pool(self) -> httpx.AsyncHTTPTransport:
        loop = asyncio.get_running_loop()
        pool = self._pools.get(loop)
        if pool is None:
            pool = self._pools[loop] = httpx.AsyncHTTPTransport()
        return pool

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send ``request`` through the running loop's pool."""
        return await self._pool().handle_async_request(request)

    async def aclose(self) -> None:
        """Close the running loop's pool."""
        pool = self._pools.pop(asyncio.get_running_loop(), None)
        if pool is not None:
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
