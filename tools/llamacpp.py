"""The embedded model server: llama.cpp's OpenAI-compatible server on 127.0.0.1.

One detached ``python -m llama_cpp.server`` process serves the packaged models
(``podium.tools.model_files``) under their aliases from one port, so the graph talks to it as
it talks to vLLM:
``ChatOpenAI(base_url=embedded_base_url(), model="policy", api_key="embedded")``. It outlives
the process that started it; a state file lets later processes find and reuse it, and an
``fcntl`` lock makes concurrent ``ensure()`` calls start only one.

Facts about llama-cpp-python 0.3.36's server that callers must know:

* Every model uses its GGUF's own jinja template (``chat_format`` unset). Qwen's renders the
  request's ``tools``, assistant ``tool_calls`` and ``tool`` results, but the reply is not parsed:
  calls come back as text in ``content``. A ``tool_choice`` naming one function is the exception:
  the server then constrains decoding to that function's schema and returns real ``tool_calls``.
  The template writes a past call's ``arguments`` (a JSON string on the wire) as a quoted string,
  and Qwen 0.5B then imitates that form: parse ``"arguments": "{...}"`` too.
* It honours ``max_tokens`` only. ``ChatOpenAI(max_tokens=...)`` sends ``max_completion_tokens``,
  which it ignores (generation then runs to EOS or the context end): pass
  ``extra_body={"max_tokens": n}``.
* It rejects an assistant message whose ``content`` is null (HTTP 500), which is what
  ``ChatOpenAI`` sends for an ``AIMessage`` with tool calls and empty content.
* It holds one model in memory: a request for another alias swaps it (about a second).
* ``lora_path`` applies a GGUF LoRA to a model at load time (``podium export`` writes one);
  decode speed is unchanged. A server with an adapter on the policy is a separate server
  (its own state files), so adapted and plain policies can run side by side.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from filelock import FileLock

from podium.tools.adapters import adapter_identity, check_adapter
from podium.tools.errors import UserError
from podium.tools.localhost import (
    base_url,
    die_with_parent,
    free_port,
    is_loopback,
    served_models,
    telling_line,
)
from podium.tools.model_files import default_aliases, get_model
from podium.tools.paths import atomic_path, cache_dir
from podium.tools.redact import secrets

__all__ = ["EmbeddedServer", "ServerError", "embedded_base_url", "is_server"]

POLICY_ALIAS = "policy"

NOT_INSTALLED = (
    "llama-cpp-python[server] is not installed: run `make install` (or pip install 'podium[serve]')"
)
NOT_LOOPBACK = "the embedded server binds a loopback address only, not {host!r}"
DIED = "llama.cpp server exited with code {code} while starting: {line} (log: {log})"
TIMED_OUT = "llama.cpp server did not answer on {url} within {timeout:.0f} s (log: {log})"
BUSY = "another process has held {lock} (starting or stopping the server) for {timeout:.0f} s"

# Variables that llama_cpp.server's __main__ lets override the config file: a stray
# HOST=0.0.0.0 (common in containers) would otherwise expose the server beyond loopback.
_OVERRIDING_ENV = ("HOST", "PORT", "CONFIG_FILE")
_STOP_GRACE = 10.0
# Health checks go straight to loopback even when HTTP(S)_PROXY is set.
# Servers this process started, kept so their Popen objects are never collected while running
# (which warns) and so an exited one is reaped rather than lingering as a zombie.
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}
_STATE = (("pid", int), ("host", str), ("port", int), ("models", list))


_ENV_NAMES = ("PATH", "HOME", "USER", "LANG", "TZ", "TMPDIR", "PYTHONPATH", "LD_LIBRARY_PATH")
_ENV_PREFIXES = ("LC_", "OMP_", "GGML_", "LLAMA_", "OPENBLAS_", "MKL_", "CUDA_", "HIP_")


def server_env() -> dict[str, str]:
    """The server's environment: what the interpreter and llama.cpp read, no keys.

    The server outlives the run that started it and loads model files only, so it gets an
    allowlist, not podium's environment (API keys, tokens, proxies stay out). Variables that
    llama_cpp.server would take over its config file are left out too (``_OVERRIDING_ENV``).
    """
    keep = {k: v for k, v in os.environ.items() if k in _ENV_NAMES or k.startswith(_ENV_PREFIXES)}
    return {k: v for k, v in keep.items() if k not in _OVERRIDING_ENV and v not in secrets()}


class ServerError(UserError, RuntimeError):
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
        owned: Stop the server when this process dies, even by SIGKILL (``podium serve``); the
            shared embedded server (``False``) outlives its starter so later runs reuse it.
        adapter: A GGUF LoRA applied to the policy model (``lora_path``); checked against it
            before the server starts.

    Raises:
        AdapterError: the adapter file does not exist.
        ValueError: a non-loopback host, or an adapter without the policy model.
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
        owned: bool = False,
        adapter: str | Path | None = None,
    ) -> None:
        if not is_loopback(host):
            raise ValueError(NOT_LOOPBACK.format(host=host))
        self.host, self.port, self.n_ctx, self.owned = host, port, n_ctx, owned
        self.models = list(models) if models is not None else default_aliases()
        for alias in self.models:
            get_model(alias)  # an unknown alias fails here, not in the server's log
        self.n_threads = n_threads or os.cpu_count() or 1
        self.adapter = adapter_identity(adapter) if adapter else None
        if self.adapter is not None and POLICY_ALIAS not in self.models:
            raise ValueError(f"an adapter applies to the {POLICY_ALIAS!r} model, not served here")
        # Each model set (and adapter) has its own files, so servers of different sets coexist.
        name = "llamacpp-" + "+".join(sorted(self.models))
        if self.adapter is not None:
            name += "+lora-" + self.adapter["sha256"][:12]
        stem = (state_dir or cache_dir("server")) / name
        stem.parent.mkdir(parents=True, exist_ok=True)
        self.state_path = stem.with_name(stem.name + ".json")  # pid, port, models, started_at
        self.log_path = stem.with_name(stem.name + ".log")  # output since the latest start
        self._lock = stem.with_name(stem.name + ".lock")
        self._config_path = stem.with_name(stem.name + ".config.json")

    def ensure(self, timeout: float = 120) -> str:
        """Return the base URL (``http://127.0.0.1:<port>/v1``) of a healthy server.

        Reuses the server in the state file when it is alive, serves these models with at least
        this context, and answers; otherwise replaces it and waits until the new one answers.

        Raises:
            ServerError: The server died while starting, or did not answer within ``timeout``.
            ModelFilesError: A model's packages are missing or fail their checksum.
        """
        deadline = time.monotonic() + timeout
        with self._locked(timeout):
            state = self._read_state()
            if state is not None and self._reusable(state):
                return base_url(state["host"], state["port"])
            if state is not None:
                _terminate(state["pid"])
                self.state_path.unlink(missing_ok=True)
            if importlib.util.find_spec("llama_cpp") is None:
                raise ServerError(NOT_INSTALLED)
            paths = {alias: str(get_model(alias).path()) for alias in self.models}
            if self.adapter is not None:
                check_adapter(self.adapter["path"], paths[POLICY_ALIAS])
            return self._start(paths, deadline, timeout)

    def stop(self) -> bool:
        """Stop the server named in the state file and remove the file; ``False`` if none ran."""
        with self._locked(_STOP_GRACE * 3):
            state = self._read_state()
            if state is None:
                return False
            self.state_path.unlink()
            return _terminate(state["pid"])

    def status(self) -> dict[str, Any] | None:
        """The state file's content plus ``url``, ``alive`` and ``healthy``; ``None`` if absent."""
        state = self._read_state()
        if state is None:
            return None
        url = base_url(state["host"], state["port"])
        alive = is_server(state["pid"])
        with contextlib.suppress(TimeoutError):
            healthy = alive and bool(served_models(url))
            return {**state, "url": url, "alive": alive, "healthy": healthy}
        return {**state, "url": url, "alive": alive, "healthy": alive}  # busy generating

    @contextlib.contextmanager
    def _locked(self, timeout: float) -> Iterator[None]:
        lock = self._lock
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(FileLock(lock, timeout=timeout))  # Timeout is a TimeoutError
            except TimeoutError:
                raise ServerError(BUSY.format(lock=lock, timeout=timeout)) from None
            yield

    def _read_state(self) -> dict[str, Any] | None:
        with contextlib.suppress(OSError, ValueError):
            state = json.loads(self.state_path.read_text())
            types = {"pid": int, "host": str, "port": int, "models": list}
            if isinstance(state, dict) and all(
                isinstance(state.get(k), t) for k, t in types.items()
            ):
                return state
        return None

    def _reusable(self, state: dict[str, Any]) -> bool:
        if sorted(state["models"]) != sorted(self.models) or state.get("n_ctx", 0) < self.n_ctx:
            return False
        if state.get("adapter") != self.adapter:
            return False
        if self.port not in (None, state["port"]) or not is_server(state["pid"]):
            return False
        try:
            served = served_models(base_url(state["host"], state["port"]))
        except TimeoutError:
            # /v1/models waits for the model lock, so a long generation for another client
            # stalls it: a live llama_cpp.server process on the recorded port is busy, not dead.
            return True
        return set(self.models) <= served

    def _start(self, paths: dict[str, str], deadline: float, timeout: float) -> str:
        port = self.port or free_port(self.host)
        config = self._config_path
        with atomic_path(config) as tmp:
            tmp.write_text(json.dumps(self._config(paths, port), indent=2))
        env = server_env()
        command = [sys.executable, "-m", "llama_cpp.server", "--config_file", str(config)]
        with self.log_path.open("wb") as log:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**env, "PYTHONUNBUFFERED": "1"},
                start_new_session=True,  # not killed by a Ctrl-C in the terminal that started it
                preexec_fn=die_with_parent if self.owned else None,
            )
        _CHILDREN[process.pid] = process
        url = base_url(self.host, port)
        while (code := process.poll()) is None:
            with contextlib.suppress(TimeoutError):
                if set(self.models) <= served_models(url, timeout=2.0):
                    break
            if time.monotonic() > deadline:
                _terminate(process.pid)
                raise ServerError(TIMED_OUT.format(url=url, timeout=timeout, log=self.log_path))
            time.sleep(0.1)
        if code is not None:
            line = telling_line(self.log_path.read_text(errors="replace"))
            raise ServerError(DIED.format(code=code, line=line, log=self.log_path))
        state = {
            "pid": process.pid,
            "host": self.host,
            "port": port,
            "models": self.models,
            "adapter": self.adapter,
            "n_ctx": self.n_ctx,
            "n_threads": self.n_threads,
            "started_at": time.time(),
            "log": str(self.log_path),
        }
        with atomic_path(self.state_path) as tmp:
            tmp.write_text(json.dumps(state, indent=2))
        return url

    def _config(self, paths: dict[str, str], port: int) -> dict[str, Any]:
        """The ``--config_file`` JSON for ``llama_cpp.server`` (fields of its ``settings.py``)."""
        models = [
            {
                "model": path,
                "model_alias": alias,
                "n_ctx": self.n_ctx,
                "n_threads": self.n_threads,
                "n_threads_batch": self.n_threads,
                # The server's default (True) keeps full-vocabulary logits for every prompt
                # token: slower prefill and up to n_ctx × 152k × 4 B (5 GB at 8k) of RAM, only
                # for prompt logprobs, which nothing here asks for.
                "logits_all": False,
                "use_mlock": False,  # don't pin 0.1–1 GB of weights per model in RAM
                "verbose": False,
            }
            for alias, path in paths.items()
        ]
        for model in models:
            if model["model_alias"] == POLICY_ALIAS and self.adapter is not None:
                model["lora_path"] = self.adapter["path"]  # no mmap then: read into RAM
        # interrupt_requests (default True) ends a streaming answer as soon as another request
        # queues, without an error: measured, a stream stopped after "1, 2, 3, 4".
        return {"host": self.host, "port": port, "interrupt_requests": False, "models": models}


_default_lock = threading.Lock()
_default: dict[str, dict[str, Any]] = {}


def embedded_base_url(adapter: str | Path = "") -> str:
    """Base URL of the default embedded server, started if needed; remembered per process.

    With ``adapter`` (``[policy] adapter``), the server that applies that GGUF LoRA to the
    policy; it serves the other models too, so the policy and the local experts share it.
    A cheap liveness test of the remembered pid runs on each call, so a server stopped or killed
    meanwhile is started again.
    """
    key = adapter_identity(adapter)["sha256"] if adapter else ""  # a re-export is a new server
    with _default_lock:
        known = _default.setdefault(key, {})
        if "pid" not in known or not is_server(known["pid"]):
            server = EmbeddedServer(adapter=adapter or None)
            known["url"] = server.ensure()
            known["pid"] = (server.status() or {}).get("pid", -1)
        return known["url"]


def _alive(pid: int) -> bool:
    if pid in _CHILDREN:
        return _CHILDREN[pid].poll() is None  # poll() reaps our own exited child
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    with contextlib.suppress(OSError, IndexError):  # a zombie still answers kill(pid, 0)
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    return True


def is_server(pid: int) -> bool:
    """Whether ``pid`` is a live llama_cpp.server process (not a recycled pid)."""
    if not _alive(pid):
        return False
    try:
        return b"llama_cpp.server" in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return not Path("/proc/self").exists()  # no procfs (macOS): trust the pid


def _terminate(pid: int) -> bool:
    """SIGTERM the server, SIGKILL it after a grace period; ``False`` if it was not running."""
    if not is_server(pid):
        return False
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            if os.getpgid(pid) == pid:  # ours lead their own session: signal the whole group
                os.killpg(pid, sig)
            else:
                os.kill(pid, sig)
        end = time.monotonic() + _STOP_GRACE
        while time.monotonic() < end:
            if not _alive(pid):
                _CHILDREN.pop(pid, None)
                return True
            time.sleep(0.05)
    return not _alive(pid)
