"""Test doubles for code that embeds podium's graph: a scripted policy, priced tools, a server.

Fast tests of an application built on :data:`podium.graph.graph` need neither models nor
keys. Hand the graph a scripted policy and priced fake tools through the public overrides of
:mod:`podium.graph.resources`::

    from podium.graph import Context, graph
    from podium.graph.resources import policy_override, tools_override
    from podium.graph.testing import FakePolicy, calc_tool, tool_call

    policy = FakePolicy(script=[tool_call("calc", expression="6*7"), "42"])
    with policy_override(policy), tools_override([calc_tool()]):
        out = graph.invoke({"question": "6*7?"}, context=Context(trajectory_db="t.sqlite"))
    assert out["answer"] == "42" and policy.bound[0] == ["answer", "calc"]

To exercise the real OpenAI client instead (timeouts, retries, malformed replies), point
``Context.policy_base_url`` or an expert's ``base_url`` at :func:`fake_openai`; its
``reply=scripted_reply`` answers many concurrent runs, each from its own conversation.
"""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from langchain_core.language_models import BaseChatModel, LanguageModelInput
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import Runnable
from langchain_core.tools import BaseTool, StructuredTool
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import Field

from podium.tools.arithmetic import arithmetic
from podium.tools.cost import ToolCost, Usage, with_cost

__all__ = [
    "OK_REPLY",
    "OK_USAGE",
    "TOOL_TURNS",
    "FakeOpenAI",
    "FakePolicy",
    "broken_tool",
    "calc_tool",
    "completion",
    "expected_answer",
    "expert_tool",
    "fake_openai",
    "openai_tool_call",
    "question",
    "question_parts",
    "scripted_reply",
    "text_tool_call",
    "tool_call",
]

# --- the policy ------------------------------------------------------------------------------


class FakePolicy(BaseChatModel):
    """A chat model that replies from ``script`` and records what it was asked.

    Each call pops the next item: a string is a plain answer, an :class:`AIMessage` (e.g. from
    :func:`tool_call`) is returned as is, an exception is raised. ``prompts``, ``bound`` (tool
    names bound per call), ``schemas`` (their OpenAI schemas) and ``choices`` (the
    ``tool_choice`` per call) let a test check what the graph showed the policy. Every reply
    reports ``usage`` tokens, so policy turns are billed.
    """

    script: list[Any] = Field(default_factory=list)
    prompts: list[list[BaseMessage]] = Field(default_factory=list)
    bound: list[list[str]] = Field(default_factory=list)
    schemas: list[list[dict[str, Any]]] = Field(default_factory=list)  # tool schemas per call
    choices: list[object] = Field(default_factory=list)
    usage: tuple[int, int] = (100, 20)

    @property
    def _llm_type(self) -> str:
        return "fake-policy"

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.prompts.append(list(messages))
        self.bound.append([t["function"]["name"] for t in kwargs.get("tools", [])])
        self.schemas.append(list(kwargs.get("tools", [])))
        self.choices.append(kwargs.get("tool_choice"))
        item = self.script.pop(0)
        if isinstance(item, Exception):
            raise item
        msg = AIMessage(content=item) if isinstance(item, str) else item.model_copy(deep=True)
        msg.usage_metadata = {
            "input_tokens": self.usage[0],
            "output_tokens": self.usage[1],
            "total_tokens": sum(self.usage),
        }
        return ChatResult(generations=[ChatGeneration(message=msg)])

    def bind_tools(
        self,
        tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool],
        *,
        tool_choice: str | None = None,
        **kwargs: Any,
    ) -> Runnable[LanguageModelInput, AIMessage]:
        """Bind ``tools`` in OpenAI format, as the real clients do."""
        tools_ = [convert_to_openai_tool(t) for t in tools]
        return self.bind(tools=tools_, tool_choice=tool_choice, **kwargs)


def tool_call(name: str, **args: Any) -> AIMessage:
    """A scripted policy turn that calls tool ``name`` with ``args`` (a native tool call)."""
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": f"c_{name}"}])


def text_tool_call(name: str, **args: Any) -> str:
    """The same turn written as text, the way small local models call tools.

    Hermes-style ``<tool_call>`` tags around the JSON call, which the graph's parser reads
    when a reply carries no native tool call.
    """
    return f"<tool_call>\n{json.dumps({'name': name, 'arguments': args})}\n</tool_call>"


# --- priced tools ----------------------------------------------------------------------------


def calc_tool(per_call: float = 0.001) -> BaseTool:
    """A local calculator billed ``per_call`` dollars (exact arithmetic, never ``eval``)."""

    def calc(expression: str) -> tuple[str, Usage]:
        """Evaluate an arithmetic expression."""
        return arithmetic(expression), Usage()

    tool = StructuredTool.from_function(calc, response_format="content_and_artifact")
    return with_cost(
        tool, ToolCost(per_call_usd=per_call, locality="local", capability="arithmetic")
    )


def expert_tool(
    in_price: float = 1.25,
    out_price: float = 10.0,
    max_out: int = 1000,
    used: tuple[int, int] = (300, 50),
) -> BaseTool:
    """A remote "LLM expert" priced per token, reporting ``used`` (input, output) tokens."""

    def oracle(question: str) -> tuple[str, Usage]:
        """Ask the oracle."""
        return "the oracle says 42", Usage(input_tokens=used[0], output_tokens=used[1])

    tool = StructuredTool.from_function(oracle, response_format="content_and_artifact")
    return with_cost(
        tool,
        ToolCost(
            input_usd_per_mtok=in_price,
            output_usd_per_mtok=out_price,
            max_output_tokens=max_out,
            locality="remote",
            capability="knows everything",
        ),
    )


def broken_tool() -> BaseTool:
    """A priced tool that always raises, for the graph's error paths."""

    def boom(x: str) -> str:
        """Always fails."""
        raise RuntimeError("kaboom")

    return with_cost(StructuredTool.from_function(boom), ToolCost(per_call_usd=0.0005))


# --- an OpenAI-compatible server -------------------------------------------------------------

OK_REPLY = "the expert says 42"
OK_USAGE = (20, 5)
SERVER_LIFETIME_S = 30.0  # default: the server shuts itself down after this, whatever happens
HANG_S = 5.0  # a hanging request is answered (with nothing) after this at the latest
MODES = ("ok", "hang", "http500", "malformed", "drop", "echo401", "echo")

Reply = Callable[[dict[str, Any]], dict[str, Any]]
"""Builds the assistant message (``{"role": "assistant", ...}``) for a request body."""


def completion(
    message: dict[str, Any], model: str, usage: tuple[int, int] | dict[str, Any] | None = OK_USAGE
) -> bytes:
    """The JSON body of a chat completion holding ``message``.

    ``usage`` as ``(prompt, completion)`` tokens, or a raw ``usage`` block as the endpoint
    sends it (lying counts, missing fields), or ``None`` for a reply without one.
    """
    body: dict[str, Any] = {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 0,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
    }
    if isinstance(usage, tuple):
        usage = {
            "prompt_tokens": usage[0],
            "completion_tokens": usage[1],
            "total_tokens": sum(usage),
        }
    if usage is not None:
        body["usage"] = usage
    return json.dumps(body).encode()


class FakeOpenAI(ThreadingHTTPServer):
    """A chat-completions server on 127.0.0.1 that fails on purpose, in one ``mode``.

    ``GET /v1/models`` lists one model, as a client probing the endpoint before its runs
    expects (counted in ``probes``, not in ``requests``). ``POST /v1/chat/completions``
    answers per ``mode``: ``ok`` (a completion with usage:
    ``reply(body)``'s message when a ``reply`` function is given, else :data:`OK_REPLY`),
    ``hang`` (no answer until the client gives up), ``http500``, ``malformed`` (200 with a
    broken JSON body), ``drop`` (headers and part of the body, then the connection closes),
    ``echo401`` and ``echo`` (a 401 error, or a completion, quoting the request's
    ``Authorization`` header). ``usage`` is what ``ok`` replies report (a raw block to lie
    with, or None for no usage block). Requests sent to it as an HTTP proxy are answered
    too. ``requests`` counts the requests; ``targets`` (absolute when proxied) and
    ``headers`` (names lower-cased) keep each one's, in arrival order.
    """

    daemon_threads = True
    block_on_close = False
    request_queue_size = 256  # many concurrent clients connect at once under load

    def __init__(self, mode: str = "ok", reply: Reply | None = None) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
        super().__init__(("127.0.0.1", 0), _Handler)
        self.mode, self.reply = mode, reply
        self.usage: dict[str, Any] | tuple[int, int] | None = OK_USAGE  # what "ok" replies report
        self.requests = 0
        self.probes = 0  # GET /v1/models
        self.targets: list[str] = []
        self.headers: list[dict[str, str]] = []
        self.lock = threading.Lock()
        self.release = threading.Event()  # set on shutdown: hanging handlers return at once

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL of this server."""
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _Handler(BaseHTTPRequestHandler):
    server: FakeOpenAI
    protocol_version = "HTTP/1.1"  # keep-alive: a load test must not pay a connect per call

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: a test's output is its own."""

    def _send(self, status: int, body: bytes, length: int | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        """``GET /v1/models``: the one model; any other path is a 404."""
        if not self.path.rstrip("/").endswith("/models"):
            self._send(404, b'{"error": {"message": "not found", "type": "not_found"}}')
            return
        with self.server.lock:
            self.server.probes += 1
        self._send(200, json.dumps({"object": "list", "data": [{"id": "fake"}]}).encode())

    def do_POST(self) -> None:
        """Answer one completion request the way the server's mode says."""
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        server = self.server
        with server.lock:
            server.requests += 1
            server.targets.append(self.path)
            server.headers.append({k.lower(): v for k, v in self.headers.items()})
        usage: dict[str, Any] | tuple[int, int] | None
        if server.reply is not None:
            message, usage = server.reply(body), (len(json.dumps(body)) // 4, 10)
        else:
            message, usage = {"role": "assistant", "content": OK_REPLY}, server.usage
        ok = completion(message, body.get("model", "fake"), usage)
        if server.mode == "hang":
            server.release.wait(HANG_S)
            self.close_connection = True
        elif server.mode == "http500":
            self._send(500, b'{"error": {"message": "internal failure", "type": "server_error"}}')
        elif server.mode == "echo401":
            auth = self.headers.get("Authorization", "")
            error = {"message": f"Incorrect API key provided: {auth}", "type": "invalid_request"}
            self._send(401, json.dumps({"error": error}).encode())
        elif server.mode == "echo":
            echo = {"role": "assistant", "content": f"you sent {self.headers.get('Authorization')}"}
            self._send(200, completion(echo, body.get("model", "fake"), server.usage))
        elif server.mode == "malformed":
            self._send(200, b'{"id": "chatcmpl-fake", "choices": [{"index": 0, "mess')
        elif server.mode == "drop":
            self._send(200, ok[:20], length=len(ok))  # promise the whole body, send a bit
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True
        else:
            self._send(200, ok)


@contextmanager
def fake_openai(
    mode: str = "ok", reply: Reply | None = None, lifetime_s: float = SERVER_LIFETIME_S
) -> Iterator[FakeOpenAI]:
    """A running :class:`FakeOpenAI`, stopped on exit (or after ``lifetime_s``, a safety net)."""
    server = FakeOpenAI(mode, reply)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.daemon = True
    thread.start()
    watchdog = threading.Timer(lifetime_s, server.shutdown)
    watchdog.daemon = True
    watchdog.start()
    try:
        yield server
    finally:
        watchdog.cancel()
        server.release.set()
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# --- a scripted policy behind the server ------------------------------------------------------

TOOL_TURNS = 2  # calc calls of a scripted run before its answer
_QUESTION = re.compile(r"Run (\d+): what is (\d+) \* (\d+)\?")
_RESULT = re.compile(r"<tool_response>\n(.*?)\n</tool_response>", re.DOTALL)


def question(i: int) -> str:
    """The question of run ``i`` (factors differ per run, so answers differ too)."""
    return f"Run {i}: what is {1000 + i} * {7 + i % 13}?"


def question_parts(text: str) -> tuple[int, int, int]:
    """``(i, a, b)`` of the first :func:`question` in ``text``: run number and factors."""
    found = _QUESTION.search(text)
    if found is None:
        raise ValueError(f"no scripted question in {text[:80]!r}")
    i, a, b = map(int, found.groups())
    return i, a, b


def expected_answer(q: str) -> str:
    """The only answer :func:`scripted_reply` leads a run of question ``q`` to."""
    i, a, b = question_parts(q)
    return f"run {i}: {a * b + TOOL_TURNS - 1}"


def openai_tool_call(call_id: str, name: str, args: dict[str, Any]) -> dict[str, Any]:
    """One tool call in OpenAI's wire format, as an endpoint's assistant message carries it."""
    function = {"name": name, "arguments": json.dumps(args)}
    return {"id": call_id, "type": "function", "function": function}


def scripted_reply(body: dict[str, Any]) -> dict[str, Any]:
    """The policy's next message, from the conversation alone (stateless, so concurrent-safe).

    A ``reply`` for :func:`fake_openai`. Turn k < :data:`TOOL_TURNS` calls ``calc`` on
    ``a*b+k``; then it calls ``answer`` with the run number and the last tool result (podium
    renders results as ``<tool_response>`` blocks in user turns), which only this
    conversation's tool calls produce: a run that got another's turns answers wrong.
    """
    users = [str(m["content"]) for m in body["messages"] if m["role"] == "user"]
    i, a, b = question_parts(users[0])
    results = [r for u in users[1:] for r in _RESULT.findall(u)]
    if len(results) < TOOL_TURNS:
        k = len(results)
        call = openai_tool_call(f"call_{i}_{k}", "calc", {"expression": f"{a}*{b}+{k}"})
    else:
        call = openai_tool_call(f"answer_{i}", "answer", {"text": f"run {i}: {results[-1]}"})
    return {"role": "assistant", "content": None, "tool_calls": [call]}
