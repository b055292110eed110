"""The OpenAI seam: one chat model per endpoint, usable from any number of event loops."""

from __future__ import annotations

import asyncio
import threading

from podium.graph import Context
from podium.graph.graph import graph
from podium.graph.testing import OK_REPLY, fake_openai
from podium.tools.endpoints import chat_model


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


def test_a_proxied_endpoint_gets_a_pool_per_loop_too(monkeypatch):
    """``HTTP_PROXY`` is honoured for remote endpoints, from one loop after another."""
    with fake_openai("ok") as proxy:
        monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.server_address[1]}")
        monkeypatch.delenv("NO_PROXY", raising=False)
        monkeypatch.delenv("no_proxy", raising=False)
        llm = chat_model(base_url="http://expert.invalid/v1", model="m", api_key="", max_tokens=8)
        replies = [asyncio.run(llm.ainvoke("hi")).text for _ in range(3)]
    assert replies == [OK_REPLY] * 3
    assert proxy.targets == ["http://expert.invalid/v1/chat/completions"] * 3


def test_loopback_servers_are_never_reached_through_a_proxy(monkeypatch):
    """The embedded and ``podium serve`` servers are local: a proxy in the env must not matter."""
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("ALL_PROXY", "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    with fake_openai("ok") as server:
        llm = chat_model(base_url=server.base_url, model="m", api_key="", max_tokens=8, retries=0)
        assert asyncio.run(llm.ainvoke("hi")).text == OK_REPLY
    assert server.targets == ["/v1/chat/completions"]
