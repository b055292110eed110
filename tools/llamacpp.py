"""The embedded model server: llama.cpp's OpenAI-compatible server on 127.0.0.1.

One detached ``python -m llama_cpp.server`` process serves the packaged models
(``podium.tools.models``) under their aliases from one port, so the graph talks to it exactly as it
talks to vLLM: ``ChatOpenAI(base_url=embedded_base_url(), model="policy", api_key="embedded")``.
It outlives the process that started it; a state file lets later processes find and reuse it, and
an ``fcntl`` lock makes concurrent ``ensure()`` calls start only one.

Chat handling: every model uses its GGUF's own jinja template (``chat_format`` unset). For Qwen
that template renders the request's ``tools``, earlier assistant ``tool_calls`` and ``tool``
results; the server does not parse calls out of the reply, so they arrive as text in ``content``
and podium parses them (``chatml-function-calling`` makes Qwen 0.5B stop calling tools at all).
The server keeps one model in memory at a time: a request for another alias swaps it.
"""

from __future__ import annotations

import contextlib
import importlib.util
import ipaddress
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from podium.tools.models import default_aliases, file_lock, get_model
from podium.tools.paths import atomic_path, cache_dir

__all__ = ["EmbeddedServer", "ServerError", "embedded_base_url"]

NOT_INSTALLED = "llama-cpp-python[server] is not installed; run `make install`"
NOT_LOOPBACK = "the embedded server binds a loopback address only, not {host!r}"
DIED = "llama.cpp server exited with code {code} while starting: {line} (log: {log})"
TIMED_OUT = "llama.cpp server did not answer on {url} within {timeout:.0f} s (log: {log})"
BUSY = "another process holds {lock} (starting or stopping the server) for over {timeout:.0f} s"

# Environment variables that ``llama_cpp.server.__main__`` lets override the config file: a stray
# ``HOST=0.0.0.0`` (common in containers) would otherwise expose the server beyond loopback.
_OVERRIDING_ENV = ("HOST", "PORT", "CONFIG_FILE")
_STOP_GRACE = 10.0
# Health checks go straight to loopback even when HTTP(S)_PROXY is set.
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class ServerError(RuntimeError):
    """The embedded server could not be started or reached."""


class EmbeddedServer:
    """A llama.cpp server process serving the packaged models on a loopback port.

    Args:
        host: Loopback address to bind.
        port: Port to bind; a free one when ``None``.
        models: Aliases to serve, the first loaded at start; every required model plus the
            installed optional ones when ``None``.
        n_ctx: Context length per model.
        n_threads: CPU threads for decoding and prefill; ``os.cpu_count()`` when ``None``.
        state_dir: Where the state, config, lock and log files go (``cache_dir("server")``).
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int | None = None,
        models: Sequence[str] | None = None,
        n_ctx: int = 8192,
        n_threads: int | None = None,
        state_dir: Path | None = None,
    ) -> None:
        if not _is_loopback(host):
            raise ValueError(NOT_LOOPBACK.format(host=host))
        self.host = host
        self.port = port
        self.models = list(models) if models is not None else default_aliases()
        for alias in self.models:
            get_model(alias)  # unknown aliases fail here, not in the server's log
        self.n_ctx = n_ctx
        self.n_threads = n_threads or os.cpu_count() or 1
        self._dir = state_dir
        # Servers serving different model sets have their own files and can run side by side.
        self._stem = "llamacpp-" + "+".join(sorted(self.models))

    def _file(self, suffix: str) -> Path:
        directory = self._dir or cache_dir("server")
        directory.mkdir(parents=True, exist_ok=True)
        return directory / f"{self._stem}{suffix}"

    @property
    def state_path(self) -> Path:
        """The state file naming the running server (pid, port, models, started_at)."""
        return self._file(".json")

    @property
    def log_path(self) -> Path:
        """The server's stdout and stderr of its latest start."""
        return self._file(".log")

    def ensure(self, timeout: float = 120) -> str:
        """Return the base URL (``http://127.0.0.1:<port>/v1``) of a healthy server.

        Reuses the server in the state file when it is alive, serves these models with at least
        this context, and answers; otherwise (re)starts one and waits until it answers.

        Raises:
            ServerError: The server died while starting, or did not answer within ``timeout``.
            ModelFilesError: A model's packages are missing or fail their checksum.
        """
        deadline = time.monotonic() + timeout
        with self._locked(timeout):
            state = self._read_state()
            if state is not None and self._reusable(state):
                return _base_url(state["host"], state["port"])
            if state is not None:
                _terminate(state["pid"])
                self.state_path.unlink(missing_ok=True)
            return self._start(deadline, timeout)

    def stop(self) -> bool:
        """Stop the server named in the state file and remove the file; ``False`` if none ran."""
        with self._locked(_STOP_GRACE * 3):
            state = self._read_state()
            if state is None:
                return False
            stopped = _terminate(state["pid"])
            self.state_path.unlink(missing_ok=True)
            return stopped

    def status(self) -> dict[str, Any] | None:
        """The state file's content plus ``url``, ``alive`` and ``healthy``; ``None`` if absent."""
        state = self._read_state()
        if state is None:
            return None
        url = _base_url(state["host"], state["port"])
        alive = _is_server(state["pid"])
        healthy = alive and _served(url, timeout=2.0) is not None
        return {**state, "url": url, "alive": alive, "healthy": healthy}

    @contextlib.contextmanager
    def _locked(self, timeout: float) -> Iterator[None]:
        lock = self._file(".lock")
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(file_lock(lock, timeout=timeout))
            except TimeoutError:
                raise ServerError(BUSY.format(lock=lock, timeout=timeout)) from None
            yield

    def _read_state(self) -> dict[str, Any] | None:
        try:
            return json.loads(self.state_path.read_text())
        except (OSError, ValueError):
            return None

    def _reusable(self, state: dict[str, Any]) -> bool:
        if sorted(state.get("models", [])) != sorted(self.models):
            return False
        if state.get("n_ctx", 0) < self.n_ctx or self.port not in (None, state.get("port")):
            return False
        if not _is_server(state["pid"]):
            return False
        try:
            served = _served(_base_url(state["host"], state["port"]), timeout=5.0)
        except TimeoutError:
            # /v1/models waits for the model lock, so a long generation in another process
            # stalls it; a live llama_cpp.server process on the recorded port is busy, not dead.
            return True
        return served is not None and set(self.models) <= served

    def _start(self, deadline: float, timeout: float) -> str:
        if importlib.util.find_spec("llama_cpp") is None:
            raise ServerError(NOT_INSTALLED)
        paths = {alias: str(get_model(alias).path()) for alias in self.models}
        for attempt in range(3):
            port = self.port or _free_port(self.host)
            try:
                return self._launch(paths, port, deadline, timeout)
            except _PortTaken:
                # Another process took the port between our probe and the server's bind.
                if self.port is not None or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _launch(self, paths: dict[str, str], port: int, deadline: float, timeout: float) -> str:
        config = self._file(".config.json")
        with atomic_path(config) as tmp:
            tmp.write_text(json.dumps(self._config(paths, port), indent=2))
        env = {k: v for k, v in os.environ.items() if k not in _OVERRIDING_ENV}
        command = [sys.executable, "-m", "llama_cpp.server", "--config_file", str(config)]
        with self.log_path.open("wb") as log:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                start_new_session=True,  # survives Ctrl-C in the terminal that started it
            )
        url = _base_url(self.host, port)
        while True:
            code = process.poll()
            if code is not None:
                line = _last_line(self.log_path)
                if "address already in use" in line.lower():
                    raise _PortTaken(line)
                raise ServerError(DIED.format(code=code, line=line, log=self.log_path))
            with contextlib.suppress(TimeoutError):
                served = _served(url, timeout=2.0)
                if served is not None and set(self.models) <= served:
                    break
            if time.monotonic() > deadline:
                _terminate(process.pid)
                raise ServerError(TIMED_OUT.format(url=url, timeout=timeout, log=self.log_path))
            time.sleep(0.1)
        state = {
            "pid": process.pid,
            "host": self.host,
            "port": port,
            "models": self.models,
            "n_ctx": self.n_ctx,
            "n_threads": self.n_threads,
            "started_at": time.time(),
            "log": str(self.log_path),
        }
        with atomic_path(self.state_path) as tmp:
            tmp.write_text(json.dumps(state, indent=2))
        return url

    def _config(self, paths: dict[str, str], port: int) -> dict[str, Any]:
        """The ``--config_file`` JSON for ``llama_cpp.server`` (see its ``settings.py``)."""
        models = [
            {
                "model": path,
                "model_alias": alias,
                "n_ctx": self.n_ctx,
                "n_threads": self.n_threads,
                "n_threads_batch": self.n_threads,
                # The server's default (True) keeps full-vocabulary logits for every prompt
                # token: slower prefill and up to n_ctx × 152k × 4 B (5 GB at 8k) of RAM, for
                # prompt logprobs that nothing here asks for.
                "logits_all": False,
                "use_mlock": False,  # don't pin 0.5–1 GB of weights in RAM
                "verbose": False,
            }
            for alias, path in paths.items()
        ]
        # interrupt_requests would cut a streaming answer short as soon as another request
        # queues; with several graph runs sharing one server that truncates replies silently.
        return {"host": self.host, "port": port, "interrupt_requests": False, "models": models}


class _PortTaken(ServerError):
    """The chosen port was taken before the server could bind it."""


_cache_lock = threading.Lock()
_cached: dict[str, Any] = {}


def embedded_base_url() -> str:
    """Base URL of the default embedded server, started if needed; remembered per process.

    The remembered URL is re-checked with a cheap liveness test of the recorded pid, so a server
    stopped or killed meanwhile is started again.
    """
    with _cache_lock:
        pid = _cached.get("pid")
        if pid is None or not _is_server(pid):
            server = EmbeddedServer()
            _cached["url"] = server.ensure()
            _cached["pid"] = (server.status() or {}).get("pid")
        return _cached["url"]


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _base_url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}/v1" if ":" in host else f"http://{host}:{port}/v1"


def _free_port(host: str) -> int:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def _served(url: str, timeout: float) -> set[str] | None:
    """Model ids listed by ``GET {url}/models``; ``None`` if nothing answers there.

    Raises:
        TimeoutError: Something accepted the connection but did not answer in time.
    """
    try:
        with _NO_PROXY.open(f"{url}/models", timeout=timeout) as response:
            return {entry["id"] for entry in json.load(response)["data"]}
    except TimeoutError:
        raise
    except urllib.error.URLError as error:
        if isinstance(error.reason, TimeoutError):
            raise error.reason from None
        return None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _alive(pid: int) -> bool:
    with contextlib.suppress(ChildProcessError):
        # Reap it if it is our own exited child: a zombie still answers kill(pid, 0).
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError, IndexError):
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def _is_server(pid: int) -> bool:
    """Whether ``pid`` is a live llama_cpp.server process (not a recycled pid)."""
    if not _alive(pid):
        return False
    try:
        return b"llama_cpp.server" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return not Path("/proc/self").exists()  # no procfs (macOS): trust the pid


def _terminate(pid: int) -> bool:
    """SIGTERM the server's process group, SIGKILL it after a grace period; ``False`` if gone."""
    if not _is_server(pid):
        return False
    for sig, grace in ((signal.SIGTERM, _STOP_GRACE), (signal.SIGKILL, _STOP_GRACE)):
        _signal(pid, sig)
        end = time.monotonic() + grace
        while time.monotonic() < end:
            if not _alive(pid):
                return True
            time.sleep(0.05)
    return not _alive(pid)


def _signal(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        if os.getpgid(pid) == pid:  # ours run in their own session: stop the whole group
            os.killpg(pid, sig)
        else:
            os.kill(pid, sig)


def _last_line(log: Path) -> str:
    with contextlib.suppress(OSError):
        lines = [line.strip() for line in log.read_text(errors="replace").splitlines()]
        return next((line for line in reversed(lines) if line), "(empty log)")
    return "(no log)"
