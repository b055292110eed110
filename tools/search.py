"""Search tools: ``local_search`` over the packaged Wikipedia corpus, ``web_search`` via Tavily."""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import threading
import time
from typing import Any, Literal

from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field

from .config import SearchConfig
from .cost import ToolCost, Usage, with_cost
from .endpoints import failed_call
from .pricing import Prices
from .redact import redact

TAVILY_KEY_ENV = "TAVILY_API_KEY"
LOCAL_BILLING_CAP_S = 30.0  # a first call builds the index (minutes); bill at most this
_indexes: dict[int | None, object] = {}
_index_lock = threading.Lock()


class SearchArgs(BaseModel):
    """Arguments of the search tools."""

    query: str = Field(description="What to look up, as a short natural-language query.")


def _wiki_index(limit: int | None):
    from .retrieval import WikiIndex

    with _index_lock:
        if limit not in _indexes:
            _indexes[limit] = WikiIndex.load_or_build(limit=limit)
        return _indexes[limit]


SEARCH_EXTRA = "local_search needs {module}: run `make install` (or pip install 'podium[search]')"


def local_search_unavailable() -> str | None:
    """Why ``local_search`` cannot be offered here (its engine is an extra), or None."""
    for module in ("faiss", "sentence_transformers"):
        if importlib.util.find_spec(module) is None:
            return SEARCH_EXTRA.format(module=module)
    return None


def local_search_tool(cfg: SearchConfig, prices: Prices) -> BaseTool:
    """Build ``local_search``: dense retrieval over 10k Wikipedia intros, on this machine."""
    limit = cfg.max_articles or None

    def run(query: str) -> tuple[str, Usage]:
        start = time.perf_counter()
        passages = _wiki_index(limit).search(query, k=cfg.k)
        text = "\n\n".join(f"[{i}] {p.title}: {p.text}" for i, p in enumerate(passages, 1))
        return text or "No passage found.", Usage(compute_seconds=time.perf_counter() - start)

    async def arun(query: str) -> tuple[str, Usage]:
        return await asyncio.to_thread(run, query)

    tool = StructuredTool.from_function(
        func=run,
        coroutine=arun,
        name="local_search",
        description=(
            "Search a local copy of Wikipedia (introductions of 10,000 major articles) and "
            "return the most relevant passages with their titles. Good for facts about people, "
            "places, history and science."
        ),
        args_schema=SearchArgs,
        response_format="content_and_artifact",
    )
    cost = ToolCost(
        per_second_usd=prices.number("compute", "per_second"),
        expected_latency_s=0.1,
        max_seconds=LOCAL_BILLING_CAP_S,
        locality="local",
        capability="encyclopedic facts from a local Wikipedia",
        price_source="table:compute.per_second",
    )
    return with_cost(tool, cost)


def web_search_unavailable() -> str | None:
    """Why ``web_search`` cannot be offered now, or None."""
    return None if os.environ.get(TAVILY_KEY_ENV) else f"{TAVILY_KEY_ENV} is not set"


def _observed(result: Any) -> tuple[str, Usage]:
    """Tavily's reply as an observation; the error it returns (not raises) as a failed call.

    ``TavilySearch`` turns every exception into ``{"error": exc}``, which would be recorded
    as a result and billed: a search that never left this host (no network) is unbilled.
    """
    if isinstance(result, dict) and isinstance(result.get("error"), BaseException):
        return failed_call(result["error"])
    text = result if isinstance(result, str) else json.dumps(result, default=str)
    return redact(text), Usage()


def _web_search_class() -> type[BaseTool]:
    """``TavilySearch`` with its errors reported as failed calls (imported on first use)."""
    from langchain_tavily import TavilySearch

    class WebSearch(TavilySearch):
        response_format: Literal["content", "content_and_artifact"] = "content_and_artifact"

        # Same arguments as Tavily's, passed through; only the result is re-read.
        def _run(self, *args: Any, **kwargs: Any) -> tuple[str, Usage]:  # type: ignore[override]
            return _observed(super()._run(*args, **kwargs))

        async def _arun(  # type: ignore[override]
            self, *args: Any, **kwargs: Any
        ) -> tuple[str, Usage]:
            return _observed(await super()._arun(*args, **kwargs))

    return WebSearch


def web_search_tool(prices: Prices) -> BaseTool:
    """Build ``web_search`` on Tavily (needs ``TAVILY_API_KEY``)."""
    tool = _web_search_class()(max_results=3, name="web_search")
    tool.description = (
        "Search the live web with Tavily and return the top results with their content. "
        "Use for recent events or facts missing from Wikipedia."
    )
    cost = ToolCost(
        per_call_usd=prices.number("search", "tavily_per_call"),
        expected_latency_s=2.0,
        locality="remote",
        capability="current information from the web",
        price_source="table:search.tavily_per_call",
    )
    return with_cost(tool, cost)
