"""The one seam to every model: an OpenAI-compatible endpoint behind ``ChatOpenAI``."""

from __future__ import annotations

from urllib.parse import urlparse

from langchain_openai import ChatOpenAI

_OPENAI_HOST = "api.openai.com"


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
    )
