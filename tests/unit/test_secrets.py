"""API keys never leak: not into traces, logs, trajectories, CLI output or the sandbox.

Every key is set to a unique value and really used: the experts (built by ``expert_tool``
from the packaged config) and, in one variant, the policy's own OpenAI client talk to a fake
OpenAI-compatible server on 127.0.0.1, which checks that each key arrived as its bearer token.
"""

from __future__ import annotations

import itertools
import json
import logging
import os
import subprocess
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import AIMessage

from podium.graph import Context, graph
from podium.graph.testing import FakeOpenAI, calc_tool, fake_openai
from podium.tools import load_config
from podium.tools.config import PythonConfig
from podium.tools.experts import expert_tool
from podium.tools.pricing import Prices
from podium.tools.python_tool import python_tool
from podium.tools.sandbox import run_python
from podium.tools.search import web_search_tool

KEYS = {
    "OPENAI_API_KEY": "sk-leakcheck-openai-5b1f0c2e9d",
    "ANTHROPIC_API_KEY": "sk-ant-leakcheck-anthropic-7e44a1",
    "TAVILY_API_KEY": "tvly-leakcheck-tavily-93c8d2",
    "PODIUM_POLICY_API_KEY": "pk-leakcheck-policy-2a6f51",
}
ENV_CODE = "import os\nprint(sorted(os.environ.items()))"
QUESTION = "leakcheck: what is 6*7?"


def leaks(text: str | bytes) -> list[str]:
    """The names of the keys whose values occur in ``text``."""
    if isinstance(text, bytes):
        return [k for k, v in KEYS.items() if v.encode() in text]
    return [k for k, v in KEYS.items() if v in text]


def call(name: str, args: dict, call_id: str) -> dict:
    """One tool call, as a policy writes it."""
    return {"name": name, "args": args, "id": call_id, "type": "tool_call"}


# The run: turn 1 computes and prints the environment in the sandbox, turn 2 asks both hosted
# experts, turn 3 answers.
TURNS = [
    [call("calc", {"expression": "6*7"}, "c1"), call("python", {"code": ENV_CODE}, "c2")],
    [
        call("ask_gpt5", {"question": "6*7?"}, "c3"),
        call("ask_claude", {"question": "6*7?"}, "c4"),
    ],
    [call("answer", {"text": "42"}, "c5")],
]


@pytest.fixture
def keys(monkeypatch):
    """Every API key set to its unique value; loopback traffic bypasses any proxy."""
    for name, value in KEYS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    return KEYS


def policy_replies() -> Callable[[dict[str, Any]], dict[str, Any]]:
    """Replies of a fake server where the policy replays ``TURNS`` and experts answer '42'."""
    policy_turns = itertools.count()  # each run replays TURNS; runs come one after another

    def reply(body: dict[str, Any]) -> dict[str, Any]:
        if body["model"] != "policy":
            return {"role": "assistant", "content": "the expert says 42"}
        turn = TURNS[next(policy_turns) % len(TURNS)]
        calls = [
            {"id": c["id"], "type": "function",
             "function": {"name": c["name"], "arguments": json.dumps(c["args"])}}
            for c in turn
        ]  # fmt: skip
        return {"role": "assistant", "content": None, "tool_calls": calls}

    return reply


@pytest.fixture
def openai_server() -> Iterator[FakeOpenAI]:
    """The fake OpenAI-compatible server on 127.0.0.1, answering with :func:`policy_replies`."""
    with fake_openai(reply=policy_replies(), lifetime_s=600) as server:
        yield server


@pytest.fixture
def all_logs(caplog):
    """Capture every logger at DEBUG, including those that do not propagate to the root."""
    touched = []
    for logger in [logging.getLogger(n) for n in list(logging.root.manager.loggerDict)]:
        if isinstance(logger, logging.Logger):
            touched.append((logger, logger.level, logger.propagate))
            logger.setLevel(logging.DEBUG)
            if not logger.propagate:
                logger.addHandler(caplog.handler)
    caplog.set_level(logging.DEBUG)
    yield caplog
    for logger, level, propagate in touched:
        logger.setLevel(level)
        if not propagate:
            logger.removeHandler(caplog.handler)


def hosted_tools(base_url: str) -> list:
    """calc, the real sandboxed python tool, web_search and the packaged hosted experts.

    The experts are the config's ``ask_gpt5`` and ``ask_claude`` (real keys, real
    ``expert_tool``), with only their endpoint moved to the fake server.
    """
    config = load_config()
    prices = Prices(config)
    experts = [
        expert_tool(name, config.experts[name].model_copy(update={"base_url": base_url}), prices)
        for name in ("ask_gpt5", "ask_claude")
    ]
    return [calc_tool(), python_tool(PythonConfig(), prices), web_search_tool(prices), *experts]


@pytest.mark.parametrize("policy", ["fake", "openai-client"])
def test_keys_stay_out_of_traces_logs_and_the_trajectory(
    policy, keys, openai_server, all_logs, fake_graph, langsmith_offline, tmp_path, capfd
):
    server = openai_server
    script = [AIMessage(content="", tool_calls=t) for t in TURNS[:2]] + ["42"]
    if policy == "openai-client":  # the real ChatOpenAI, keyed by $PODIUM_POLICY_API_KEY
        _, ctx = fake_graph(None, hosted_tools(server.base_url))
        ctx["policy_base_url"] = server.base_url
    else:
        _, ctx = fake_graph(script, hosted_tools(server.base_url))
    client, tracer = langsmith_offline

    out = graph.invoke(
        {"question": QUESTION}, context=Context(**ctx), config={"callbacks": [tracer]}
    )
    tracer.wait_for_futures()

    # The run really used every key it could, and the sandbox really printed its environment.
    assert out["answer"] == "42" and out["stopped_by"] == "answer"
    assert all(e["ok"] for e in out["ledger"]), out["ledger"]
    bearers = {h.get("authorization", "").removeprefix("Bearer ") for h in server.headers}
    expected = {KEYS["OPENAI_API_KEY"], KEYS["ANTHROPIC_API_KEY"]}
    if policy == "openai-client":
        expected.add(KEYS["PODIUM_POLICY_API_KEY"])
    assert bearers == expected
    env_seen = [m.content for m in out["messages"] if getattr(m, "name", "") == "python"]
    assert "'PATH'" in env_seen[0]
    # ... and no key appears anywhere it leaves a record.
    assert client.payloads
    assert not leaks(repr(client.payloads))
    assert not leaks(json.dumps(client.payloads, default=str))
    assert all_logs.records
    for record in all_logs.records:
        assert not leaks(record.getMessage()), record.name
        assert not leaks(repr(record.__dict__)), record.name
    assert not leaks(all_logs.text)
    db_files = sorted(Path(ctx["trajectory_db"]).parent.glob("traj.sqlite*"))
    raw = b"".join(f.read_bytes() for f in db_files)
    assert QUESTION.encode() in raw  # the record is there to be searched
    assert not leaks(raw)
    printed = capfd.readouterr()
    assert not leaks(printed.out + printed.err)


@pytest.mark.parametrize("mode", ["default", "none"])
def test_the_sandbox_never_sees_the_keys(keys, monkeypatch, mode):
    if mode == "none":  # the unisolated fallback must clear the environment too
        monkeypatch.setenv("PODIUM_SANDBOX", "none")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # "runs WITHOUT isolation"
        result = run_python(ENV_CODE + "\nimport subprocess\nprint(subprocess.getoutput('env'))")
    assert result.ok, result
    assert "'PATH'" in result.stdout and result.isolated == (mode == "default")
    assert not leaks(result.stdout + result.stderr)


def cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``python -m podium.studio.cli ARGS`` with ``env``."""
    return subprocess.run(
        [sys.executable, "-m", "podium.studio.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )


def test_cli_output_never_shows_the_keys(tmp_path, write_config):
    empty = write_config(tmp_path / "empty.toml", {})
    env = {
        **os.environ,
        **KEYS,
        "PODIUM_CONFIG": str(empty),
        "PODIUM_CACHE_DIR": str(tmp_path / "cache"),
        "PODIUM_TRAJECTORY_DB": str(tmp_path / "cli.sqlite"),
        # A closed port: a run that called its policy would fail, not start a server.
        "PODIUM_POLICY_BASE_URL": "http://127.0.0.1:9/v1",
    }
    listed = cli("tools", "--json", "--profile", "hosted", env=env)
    assert listed.returncode == 0, listed.stderr
    rows = {r["name"]: r for r in json.loads(listed.stdout)["tools"]}
    assert all(rows[n]["available"] for n in ("web_search", "ask_gpt5", "ask_claude"))
    assert not leaks(listed.stdout + listed.stderr)

    # --budget-usd 0: the budget guard stops the run before any model call.
    ran = cli("run", "leakcheck?", "--json", "--profile", "hosted", "--budget-usd", "0", env=env)
    assert ran.returncode == 0, ran.stderr
    result = json.loads(ran.stdout)
    assert result["stopped_by"] == "budget" and result["cost_usd"] == 0
    assert not leaks(ran.stdout + ran.stderr)
    raw = b"".join(f.read_bytes() for f in tmp_path.glob("cli.sqlite*"))
    assert b"leakcheck?" in raw and not leaks(raw)
    assert not (tmp_path / "cache" / "server").exists()  # no embedded server was started


def test_files_of_threads_views_and_eval_reports_never_hold_the_keys(
    openai_server, tmp_path, write_config
):
    """The newer commands' files: checkpoints (``run --thread``), ``view`` and ``eval`` output.

    Real CLI processes with every key set; policy and hosted experts on the fake server.
    """
    server = openai_server
    base_url = server.base_url
    config = write_config(
        tmp_path / "leak.toml",
        {
            "policy": {"base_url": base_url},
            "profiles": {"leak": {"tools": ["python", "ask_gpt5", "ask_claude"]}},
            "experts": {"ask_gpt5": {"base_url": base_url}, "ask_claude": {"base_url": base_url}},
        },
    )
    (tmp_path / "tasks.jsonl").write_text(json.dumps({"question": QUESTION, "answer": "42"}))
    env = {
        **os.environ,
        **KEYS,
        "NO_PROXY": "127.0.0.1,localhost",
        "PODIUM_CONFIG": str(config),
        "PODIUM_CACHE_DIR": str(tmp_path / "cache"),
        "PODIUM_TRAJECTORY_DB": str(tmp_path / "traj.sqlite"),
        "PODIUM_CHECKPOINT_DB": str(tmp_path / "checkpoints.sqlite"),
    }
    view_out, eval_out = str(tmp_path / "view.html"), str(tmp_path / "eval")
    tasks = f"jsonl:{tmp_path / 'tasks.jsonl'}"
    commands = [
        ["run", QUESTION, "--thread", "leak-thread", "--json", "--profile", "leak"],
        ["view", "--latest", "--db", env["PODIUM_TRAJECTORY_DB"], "--no-open", "--out", view_out],
        ["eval", tasks, "--router", "policy", "--profile", "leak", "--out", eval_out],
    ]
    for args in commands:
        done = cli(*args, env=env)
        assert done.returncode == 0, (args[0], done.stderr[-2000:])
        assert not leaks(done.stdout + done.stderr), args[0]

    # The runs used the keys (so they were there to leak) and printed the environment.
    bearers = {h.get("authorization", "").removeprefix("Bearer ") for h in server.headers}
    assert {KEYS["OPENAI_API_KEY"], KEYS["PODIUM_POLICY_API_KEY"]} <= bearers
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p.name != "leak.toml"]
    written = {p.relative_to(tmp_path).as_posix() for p in files}
    assert {"checkpoints.sqlite", "view.html", "eval/report.html", "eval/results.jsonl"} <= written
    assert QUESTION.encode() in (tmp_path / "checkpoints.sqlite").read_bytes() + b"".join(
        p.read_bytes() for p in tmp_path.glob("checkpoints.sqlite*")
    )
    assert b"'PATH'" in b"".join(p.read_bytes() for p in files)  # the sandbox's env is stored
    for path in files:
        assert not leaks(path.read_bytes()), path


# --- keys an endpoint echoes are redacted before they reach the state ---------------------

ECHO_KEY_ENV = "ACME_LLM_KEY"  # a configured api_key_env of no well-known form
ECHO_KEY = "acme-echo-secret-77d1e0b4c2"


@pytest.mark.parametrize("mode", ["echo401", "echo"])
def test_a_key_an_endpoint_echoes_is_redacted_before_the_state(
    mode, keys, fake_graph, monkeypatch, tmp_path, write_config
):
    """A 401 quoting the Authorization header, or a reply quoting it: never stored or shown."""
    from langgraph.checkpoint.sqlite import SqliteSaver

    from podium.graph import build_graph
    from podium.graph.testing import fake_openai
    from podium.tools import load_pool

    monkeypatch.setenv(ECHO_KEY_ENV, ECHO_KEY)
    with fake_openai(mode) as server:
        expert = {"model": "acme", "base_url": server.base_url, "api_key_env": ECHO_KEY_ENV,
                  "price": "qwen3-8b", "max_tokens": 64, "capability": "echoes"}  # fmt: skip
        config = write_config(
            tmp_path / "echo.toml",
            {"profiles": {"echo": {"tools": ["ask_acme"]}}, "experts": {"ask_acme": expert}},
        )
        script = [AIMessage(content="", tool_calls=[call("ask_acme", {"question": "q"}, "e1")])]
        policy, ctx = fake_graph([*script, "42"], load_pool("echo", config=str(config)))
        db = tmp_path / "checkpoints.sqlite"
        with SqliteSaver.from_conn_string(str(db)) as saver:
            g = build_graph().compile(checkpointer=saver)
            out = g.invoke(
                {"question": QUESTION},
                {"configurable": {"thread_id": "echo"}},
                context=Context(**ctx, config=str(config), profile="echo"),
            )
        assert server.requests == 1  # a 401 is not retried

    (seen,) = [m for m in out["messages"] if getattr(m, "name", "") == "ask_acme"]
    assert "Bearer [redacted]" in str(seen.content)  # the endpoint did echo the header
    (entry,) = [e for e in out["ledger"] if e["kind"] == "tool"]
    assert entry["ok"] is (mode == "echo")
    if mode == "echo401":
        assert "401" in entry["error"] and entry["cost_usd"] == 0  # refused: not billed
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("*.sqlite*"))
    assert QUESTION.encode() in stored and ECHO_KEY.encode() not in stored
    assert ECHO_KEY not in repr(out) and ECHO_KEY not in repr(policy.prompts)


def test_web_search_without_network_is_a_failed_call_and_not_billed(keys, fake_graph):
    """Tavily returns (not raises) its errors: a search that never left is no result."""
    tool = web_search_tool(Prices(load_config()))
    tool.api_wrapper.api_base_url = "http://127.0.0.1:9"  # nothing listens: no network
    script = [AIMessage(content="", tool_calls=[call("web_search", {"query": "news"}, "w1")])]
    _, ctx = fake_graph([*script, "I could not search."], [tool])
    out = graph.invoke({"question": QUESTION}, context=Context(**ctx))
    (entry,) = [e for e in out["ledger"] if e["kind"] == "tool"]
    assert entry["ok"] is False and entry["cost_usd"] == 0 and "ConnectionError" in entry["error"]
    (msg,) = [m for m in out["messages"] if getattr(m, "name", "") == "web_search"]
    assert msg.status == "error" and str(msg.content).startswith("Error: ConnectionError")
