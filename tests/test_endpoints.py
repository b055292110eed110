"""The OpenAI seam: one chat model per endpoint, usable from any number of event loops."""

from __future__ import annotations

import asyncio
import threading

from podium.graph import Context
from podium.graph.graph import graph
from podium.tools.endpoints import chat_model

from .fake_openai import fake_openai


def test_the_graph_runs_from_one_asyncio_run_after_another(tmp_path):
    """langchain-openai caches one async client per URL; its pool must not outlive a loop."""
    with fake_openai("ok") as server:
        ctx = Context(policy_base_url=server.base_url, trajectory_db=str(tmp_path / "t.sqlite"))
        states = [asyncio.run(graph.ainvoke({"question": "hi"}, context=ctx)) for _ in range(3)]
    assert [s["stopped_by"] for s in states] == ["answer"] * 3


def test_one_model_serves_loops_in_several_threads_at_once():
    with fake_openai("ok") as server:
        llm = chat_model(base_url=server.base_url, model="m", api_key="", max_tokens=8)
        replies: list[str] = []

        def worker() -> None:
            replies.append(asyncio.run(llm.ainvoke("hi")).text)

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert len(replies) == 4 and server.requests == 4
