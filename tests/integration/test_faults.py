"""Faults at the edges of a run: a misbehaving expert endpoint, a policy writing only garbage
calls, a dead policy endpoint. Each run must end cleanly, quickly and with an honest ledger.

The expert is a real podium expert tool (``[experts.*]`` in a user config, ``ChatOpenAI``
underneath) pointed at :func:`podium.graph.testing.fake_openai`; the policy is the scripted
:class:`podium.graph.testing.FakePolicy`, except for the dead-endpoint test.
"""

from __future__ import annotations

import asyncio
import json
import math
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage, ToolMessage

from podium.graph import Context, TrajectoryStore, graph
from podium.graph.ledger import policy_cost
from podium.graph.resources import resolve
from podium.graph.state import spent
from podium.graph.testing import OK_REPLY, OK_USAGE, calc_tool, fake_openai
from podium.tools import cost_of, load_pool
from podium.tools.cost import token_bound

pytestmark = [
    pytest.mark.integration,
    pytest.mark.timeout(30),
    pytest.mark.usefixtures("no_podium_env"),
]

EXPERT = "ask_flaky"
EXPERT_TIMEOUT_S = 0.5  # timeout_s of the expert in the config below
CLIENT_ATTEMPTS = 3  # 1 + RETRIES of unbilled failures (tools/endpoints.py)
QUESTION = "What is 6 * 7?"


@pytest.fixture
def expert_config(tmp_path: Path, write_config) -> Callable[[str], Path]:
    """``make(base_url)``: a user config adding the expert ``ask_flaky`` at ``base_url`` and a
    profile ``faults`` of it."""

    def make(base_url: str) -> Path:
        expert = {"model": "flaky", "base_url": base_url, "price": "qwen3-8b", "max_tokens": 64,
                  "timeout_s": EXPERT_TIMEOUT_S,
                  "capability": "An expert behind a flaky endpoint."}  # fmt: skip
        config = {"profiles": {"faults": {"tools": [EXPERT]}}, "experts": {EXPERT: expert}}
        return write_config(tmp_path / "config.toml", config)

    return make


def call(name: str, **args: Any) -> AIMessage:
    """A native tool call of the policy."""
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": f"c_{name}"}])


def run(ctx: Context, use_async: bool = False) -> dict[str, Any]:
    """One run of the graph on the question, sync or async."""
    question = {"question": QUESTION}
    if use_async:
        return asyncio.run(graph.ainvoke(question, context=ctx))
    return graph.invoke(question, context=ctx)


# --- a faulty expert endpoint -------------------------------------------------------------

# mode, requests the endpoint gets, what the observation must name, billed at worst case.
# A lost reply (timeout, dropped connection, unparsable body) may be billed by the provider:
# it is billed its worst case and never resent; an HTTP error status is retried, unbilled.
FAULTS = [
    ("hang", 1, "timed out", True),
    ("http500", CLIENT_ATTEMPTS, "500", False),
    ("malformed", 1, "JSONDecodeError", True),
    ("drop", 1, "Connection error", True),
]


def worst_case(tools: list[Any], question: str = QUESTION) -> float:
    """What the guard admits one call of the expert at."""
    return cost_of(tools[0]).worst_case(token_bound(json.dumps({"question": question})))


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
@pytest.mark.parametrize(
    ("mode", "requests", "problem", "lost"), FAULTS, ids=[f[0] for f in FAULTS]
)
def test_a_faulty_expert_becomes_an_error_observation_and_the_run_answers(
    fake_graph, expert_config, mode: str, requests: int, problem: str, lost: bool, use_async: bool
) -> None:
    with fake_openai(mode) as server:
        config = expert_config(server.base_url)
        tools = load_pool("faults", config=config)
        script = [call(EXPERT, question=QUESTION), call("answer", text="42")]
        policy, base = fake_graph(script, tools)
        ctx = Context(**base, config=str(config), profile="faults")
        start = time.monotonic()
        out = run(ctx, use_async)
        elapsed = time.monotonic() - start
        assert server.requests == requests  # bounded: unbilled retries, then it gives up

    # Worst case: every attempt times out, plus the backoff (0.5 s, then 1 s).
    assert elapsed < CLIENT_ATTEMPTS * EXPERT_TIMEOUT_S + 5  # + margin for a loaded machine
    (msg,) = [m for m in out["messages"] if isinstance(m, ToolMessage)]
    assert msg.status == "error" and problem in msg.content
    (entry,) = [e for e in out["ledger"] if e["kind"] == "tool"]
    assert entry["name"] == EXPERT and entry["ok"] is False and problem in entry["error"]
    assert entry["cost_usd"] == (worst_case(tools) if lost else 0)
    assert problem in str(policy.prompts[1][-1].content)  # the policy read what went wrong
    assert out["stopped_by"] == "answer" and out["answer"] == "42" and out["turns"] == 2


def test_a_healthy_expert_is_called_once_and_billed_its_usage(fake_graph, expert_config) -> None:
    with fake_openai("ok") as server:
        config = expert_config(server.base_url)
        tools = load_pool("faults", config=config)
        script = [call(EXPERT, question=QUESTION), call("answer", text="42")]
        _, base = fake_graph(script, tools)
        out = run(Context(**base, config=str(config), profile="faults"))
        assert server.requests == 1

    (msg,) = [m for m in out["messages"] if isinstance(m, ToolMessage)]
    assert msg.status != "error" and msg.content == OK_REPLY
    (entry,) = [e for e in out["ledger"] if e["kind"] == "tool"]
    assert entry["ok"] is True and (entry["input_tokens"], entry["output_tokens"]) == OK_USAGE
    assert entry["cost_usd"] == cost_of(tools[0]).price(*OK_USAGE) > 0
    assert out["stopped_by"] == "answer" and out["answer"] == "42"


# --- a policy that writes only garbage ----------------------------------------------------

GARBAGE = [
    '{"name": "ask_nobody", "arguments": {"question": "q"}}',  # no such tool
    '<tool_call>{"name": "ask_flaky", "argu',  # cut-off JSON
    AIMessage(  # the engine's own parser gave up
        content="",
        invalid_tool_calls=[
            {
                "name": EXPERT,
                "args": '{"question": ',
                "id": "bad",
                "error": "bad JSON",
                "type": "invalid_tool_call",
            }
        ],
    ),
    '{"arguments": {"question": "q"}}',  # no tool name
]


def test_a_policy_of_only_garbage_calls_ends_by_max_turns(fake_graph, expert_config) -> None:
    max_turns = len(GARBAGE)
    with fake_openai("ok") as server:
        config = expert_config(server.base_url)
        policy, base = fake_graph(GARBAGE, load_pool("faults", config=config))
        ctx = Context(**base, config=str(config), profile="faults", max_turns=max_turns)
        out = run(ctx)
        assert server.requests == 0  # no garbage reached the expert

    assert out["stopped_by"] == "max_turns" and out["turns"] == max_turns
    assert out["malformed_calls"] == max_turns - 1  # the forced last turn ends, uncounted
    assert [e["kind"] for e in out["ledger"]] == ["policy"] * max_turns
    assert policy.bound[-1] == ["answer"] and policy.choices[-1] == "answer"
    record = TrajectoryStore(base["trajectory_db"]).get(out["trajectory_id"])
    assert record is not None and record["malformed_calls"] == max_turns - 1


# --- a dead policy endpoint ---------------------------------------------------------------


def closed_port() -> int:
    """A 127.0.0.1 port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_dead_policy_endpoint_ends_the_run_with_one_error_line(
    fake_graph, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, base = fake_graph(None, [calc_tool()])  # the real ChatOpenAI
    url = f"http://127.0.0.1:{closed_port()}/v1"
    start = time.monotonic()
    out = run(Context(**{**base, "policy_base_url": url}))
    elapsed = time.monotonic() - start

    assert elapsed < 10  # refused at once; the client's two retries back off ~1.5 s
    assert out["stopped_by"] == "error" and out["answer"] == ""
    (entry,) = out["ledger"]
    assert entry["kind"] == "policy" and entry["ok"] is False and entry["cost_usd"] == 0
    assert "Connection error" in entry["error"] and "\n" not in entry["error"]
    assert url not in entry["error"]  # no endpoint in the record
    record = TrajectoryStore(base["trajectory_db"]).get(out["trajectory_id"])
    assert record is not None and record["stopped_by"] == "error"


# --- lying usage --------------------------------------------------------------------------

NAN = float("nan")
LIES = {  # usage blocks an endpoint may send; none of them can be billed as reported
    "negative": {"prompt_tokens": -20_000_000, "completion_tokens": 5, "total_tokens": 0},
    "nan": {"prompt_tokens": NAN, "completion_tokens": 5, "total_tokens": NAN},
    "infinite": {"prompt_tokens": 10, "completion_tokens": float("inf")},
    "fractional": {"prompt_tokens": 10.5, "completion_tokens": 5},
    "string": {"prompt_tokens": "10", "completion_tokens": 5},
    "missing field": {"completion_tokens": 5},
    "missing block": None,
    "huge": {"prompt_tokens": 10**15, "completion_tokens": 10**15},
}


@pytest.mark.parametrize("lie", LIES, ids=list(LIES))
def test_an_expert_reporting_invalid_usage_is_billed_its_worst_case(
    fake_graph, expert_config, lie: str
) -> None:
    with fake_openai("ok") as server:
        server.usage = LIES[lie]
        config = expert_config(server.base_url)
        tools = load_pool("faults", config=config)
        script = [call(EXPERT, question=QUESTION), call("answer", text="42")]
        _, base = fake_graph(script, tools)
        budget = 0.01
        out = run(Context(**base, config=str(config), profile="faults", budget_usd=budget))
        assert server.requests == 1

    (entry,) = [e for e in out["ledger"] if e["kind"] == "tool"]
    # (a count langchain-openai cannot add up fails the reply: lost, so billed the same)
    assert entry["cost_usd"] == worst_case(tools) > 0
    assert all(
        isinstance(entry[k], int) and entry[k] >= 0 for k in ("input_tokens", "output_tokens")
    )
    assert 0 < spent(out["ledger"]) <= budget and math.isfinite(out["cost_usd"])
    assert out["stopped_by"] == "answer"


@pytest.mark.parametrize("lie", LIES, ids=list(LIES))
def test_a_policy_endpoint_reporting_invalid_usage_is_billed_its_worst_case(
    fake_graph, lie: str
) -> None:
    _, base = fake_graph(None, [calc_tool()])  # the real ChatOpenAI client of the endpoint
    with fake_openai("ok") as server:
        server.usage = LIES[lie]
        ctx = Context(**{**base, "policy_base_url": server.base_url}, budget_usd=0.5)
        out = run(ctx)
        assert server.requests == 1

    (entry,) = out["ledger"]
    max_tokens, price = resolve(ctx).max_tokens, policy_cost(resolve(ctx)).price
    if lie == "huge":  # valid counts, over the cap: the entry keeps them, the bill is capped
        assert entry["output_tokens"] == 10**15 and entry["cost_usd"] < price(10**5, max_tokens)
    else:  # billed the worst case, and the entry shows the bounds it was priced at
        assert entry["output_tokens"] == max_tokens
        assert entry["cost_usd"] == price(entry["input_tokens"], max_tokens)
    assert entry["kind"] == "policy"
    assert entry["cost_usd"] > 0 and out["cost_usd"] == entry["cost_usd"] <= 0.5
    if lie == "string":  # langchain-openai cannot add it up: a lost reply, billed the same
        assert out["stopped_by"] == "error" and "TypeError" in entry["error"]
    else:
        assert out["stopped_by"] == "answer" and out["answer"] == OK_REPLY
