"""A fake OpenAI-compatible chat server on 127.0.0.1, for fault tests and the load benchmark.

``GET /v1/models`` lists one model. ``POST /v1/chat/completions`` answers in one ``mode``:
``ok`` (a completion with usage: ``reply(body)``'s message when a ``reply`` function is
given, else a fixed text), ``hang`` (no answer until the client gives up), ``http500``,
``malformed`` (200 with a broken JSON body), ``drop`` (headers and part of the body, then the
connection is closed), ``echo401`` and ``echo`` (a 401 error, or a completion, quoting the
request's ``Authorization`` header). It also answers requests sent to it as an HTTP proxy
(absolute-form targets, kept in ``targets``).
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

OK_REPLY = "the expert says 42"
OK_USAGE = (20, 5)
SERVER_LIFETIME_S = 30.0  # default: the server shuts itself down after this, whatever happens
HANG_S = 5.0  # a hanging request is answered (with nothing) after this at the latest

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
    """The server; ``requests`` counts the completions asked for."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 256  # many concurrent clients connect at once under load

    def __init__(self, mode: str = "ok", reply: Reply | None = None) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.mode, self.reply = mode, reply
        self.usage: dict[str, Any] | tuple[int, int] | None = OK_USAGE  # what "ok" replies report
        self.requests = 0
        self.targets: list[str] = []  # each request's target: absolute when sent via a proxy
        self.lock = threading.Lock()
        self.release = threading.Event()  # set on shutdown: hanging handlers return at once

    @property
    def base_url(self) -> str:
        """The OpenAI-style base URL of this server."""
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


class _Handler(BaseHTTPRequestHandler):
    server: FakeOpenAI
    protocol_version = "HTTP/1.1"  # keep-alive: a load test must not pay a connect per call

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, length: int | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body) if length is None else length))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        """``GET /v1/models``: the one model, as clients probe an endpoint before runs."""
        if not self.path.rstrip("/").endswith("/models"):
            self._send(404, b'{"error": {"message": "not found"}}')
            return
        self._send(200, json.dumps({"object": "list", "data": [{"id": "fake"}]}).encode())

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
        server = self.server
        with server.lock:
            server.requests += 1
            server.targets.append(self.path)
        model = body.get("model", "fake")
        if server.reply is not None:
            message, usage = server.reply(body), (len(json.dumps(body)) // 4, 10)
        else:
            message, usage = {"role": "assistant", "content": OK_REPLY}, server.usage
        ok = completion(message, model, usage)
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
            self._send(200, completion(echo, model, server.usage))
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
    """A running :class:`FakeOpenAI`, stopped on exit (or after ``lifetime_s``)."""
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
