"""``podium serve``: run the policy's OpenAI-compatible server in the foreground.

``--engine vllm`` starts vLLM's own server (``python -m vllm.entrypoints.openai.api_server`` of
the vLLM venv, with hermes tool-call parsing and LoRA adapters); ``--engine llamacpp`` starts the
embedded llama.cpp server (``podium.tools.llamacpp``). Either way: a busy port fails before
anything starts, the command waits until the server answers, prints the endpoint and how to point
podium at it, and stops the server with all its children on Ctrl-C, SIGTERM, or (vLLM) when
``podium serve`` itself dies.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer

from podium.tools.llamacpp import is_server
from podium.tools.localhost import DIRECT, base_url, die_with_parent, served_models, telling_line
from podium.tools.paths import cache_dir

VLLM_PYTHON_ENV = "PODIUM_VLLM_PYTHON"
DEFAULT_PORT = 8000
# DESIGN §3: offline, no usage reports; the CPU backend's KV cache in GiB (tiny by default).
VLLM_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1"}
VLLM_ENV |= {"DO_NOT_TRACK": "1"}
CPU_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1"}
CPU_FLAGS = (("--enforce-eager", None), ("--dtype", "float32"))
LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # ranks vLLM accepts for --max-lora-rank
STOP_GRACE_S = 20.0
LOG_TAIL = 15

NO_VLLM = "vLLM's python not found at {path}: run `make install-vllm` or set ${env}"
PORT_BUSY = "port {port} on {host} is already in use: stop what listens there or pass --port"
BAD_LORA = "--lora {value!r}: expected NAME=PATH of a PEFT adapter directory"
NO_ADAPTER = "--lora {name}: {path} has no adapter_config.json (save it with save_pretrained)"
NO_MODEL = "--model {model}: no such directory (a hub id must already be in the HF cache)"
LLAMACPP_LORA = (
    "--lora {value}: llama.cpp applies one GGUF LoRA, to the policy: pass --lora PATH "
    "(from podium export)"
)
DIED = "{engine} exited with code {code} while starting: {line} (log: {log})"
TIMED_OUT = "{engine} did not answer on {url} within {timeout:.0f} s (log: {log})"


class ServeError(RuntimeError):
    """A mistake in ``podium serve``'s arguments or setup; one line, exit code 2."""


class _Stop(Exception):
    """A stop signal (SIGINT, SIGTERM, SIGHUP) arrived."""


@dataclass
class ServeSpec:
    """What to serve and where."""

    model: str
    served_model_name: str = "policy"
    loras: dict[str, Path] = field(default_factory=dict)
    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    extra: list[str] = field(default_factory=list)
    timeout: float = 600.0


def parse_loras(values: Sequence[str]) -> dict[str, Path]:
    """``NAME=PATH`` options as a mapping, each checked to be a PEFT adapter directory."""
    loras: dict[str, Path] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not (sep and name.strip() and path.strip()):
            raise ServeError(BAD_LORA.format(value=value))
        adapter = Path(path).expanduser().resolve()
        if not (adapter / "adapter_config.json").is_file():
            raise ServeError(NO_ADAPTER.format(name=name, path=adapter))
        loras[name.strip()] = adapter
    return loras


def vllm_python() -> Path:
    """The interpreter of the vLLM venv: ``$PODIUM_VLLM_PYTHON``, else the repo's ``.venv-vllm``."""
    if env := os.environ.get(VLLM_PYTHON_ENV):
        path = Path(env).expanduser()
    else:
        repo = Path(__file__).resolve().parents[1]  # studio/ of an editable install
        candidates = [repo / ".venv-vllm/bin/python", Path.cwd() / ".venv-vllm/bin/python"]
        path = next((p for p in candidates if p.exists()), candidates[0])
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise ServeError(NO_VLLM.format(path=path, env=VLLM_PYTHON_ENV))
    return path


def has_gpu() -> bool:
    """Whether an NVIDIA GPU is visible (vLLM's CUDA build would use it)."""
    return Path("/dev/nvidia0").exists() or shutil.which("nvidia-smi") is not None


def check_port_free(host: str, port: int) -> None:
    """Raise :class:`ServeError` naming the port when something already listens there."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as probe:
        # As servers do: SO_REUSEADDR ignores TIME_WAIT leftovers, a listener still fails it.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            raise ServeError(PORT_BUSY.format(port=port, host=host)) from None


def _lora_rank(loras: dict[str, Path]) -> int:
    """The smallest rank vLLM accepts that fits every adapter."""
    ranks = [
        int(json.loads((p / "adapter_config.json").read_text()).get("r", 8)) for p in loras.values()
    ]
    need = max(ranks, default=8)
    return next((r for r in LORA_RANKS if r >= need), need)


def vllm_command(spec: ServeSpec, python: Path, *, gpu: bool) -> list[str]:
    """The vLLM server's command line; flags in ``spec.extra`` win over podium's CPU defaults."""
    cmd = [str(python), "-m", "vllm.entrypoints.openai.api_server", "--model", spec.model]
    cmd += ["--served-model-name", spec.served_model_name, "--host", spec.host]
    cmd += ["--port", str(spec.port), "--enable-auto-tool-choice", "--tool-call-parser", "hermes"]
    if spec.loras:
        cmd += ["--enable-lora", "--max-lora-rank", str(_lora_rank(spec.loras))]
        cmd += ["--max-loras", str(len(spec.loras)), "--lora-modules"]
        cmd += [f"{name}={path}" for name, path in spec.loras.items()]
    if not gpu:
        given = {a.split("=", 1)[0] for a in spec.extra if a.startswith("--")}
        for flag, value in CPU_FLAGS:
            if flag not in given:
                cmd += [flag] if value is None else [flag, value]
    return cmd + list(spec.extra)


def vllm_env(*, gpu: bool) -> dict[str, str]:
    """The server's environment: offline, no telemetry, and no API keys but vLLM's own."""
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY") or k == "VLLM_API_KEY"}
    env |= VLLM_ENV | {"PYTHONUNBUFFERED": "1"}
    if not gpu:
        env = {**CPU_ENV, **env}  # a user's own VLLM_CPU_KVCACHE_SPACE wins
    return env


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_group(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM the server's process group, SIGKILL what is left after a grace period."""
    pgid = process.pid  # started with start_new_session: it leads its own group
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, sig)
        end = time.monotonic() + STOP_GRACE_S
        while time.monotonic() < end:
            process.poll()  # reap the leader so the group can empty
            if process.returncode is not None and not _group_alive(pgid):
                return
            time.sleep(0.1)
    process.wait()


def _log_tail(log: Path) -> str:
    lines = log.read_text(errors="replace").splitlines() if log.exists() else []
    return "\n".join(lines[-LOG_TAIL:])


def _needs_key(spec: ServeSpec) -> bool:
    """Whether vLLM will want an API key (then ``/v1/models`` answers 401 to podium)."""
    return "VLLM_API_KEY" in os.environ or any(a.split("=")[0] == "--api-key" for a in spec.extra)


def _healthy(url: str) -> bool:
    """Whether vLLM's unauthenticated ``/health`` answers 200."""
    try:
        with DIRECT.open(url.removesuffix("/v1") + "/health", timeout=2.0) as response:
            return response.status == 200
    except OSError:
        return False


def _wait_healthy(
    process: subprocess.Popen[bytes], url: str, names: set[str], spec: ServeSpec, log: Path
) -> None:
    """Wait until ``GET url/models`` lists ``names``; raise with the log's gist on failure."""
    deadline = time.monotonic() + spec.timeout
    while (code := process.poll()) is None:
        with contextlib.suppress(TimeoutError):
            if names <= served_models(url, timeout=2.0) or (_needs_key(spec) and _healthy(url)):
                return
        if time.monotonic() > deadline:
            print(_log_tail(log), file=sys.stderr)
            raise ServeError(
                TIMED_OUT.format(engine="vLLM", url=url, timeout=spec.timeout, log=log)
            )
        time.sleep(0.5)
    print(_log_tail(log), file=sys.stderr)
    line = telling_line(log.read_text(errors="replace"))
    raise ServeError(DIED.format(engine="vLLM", code=code, line=line, log=log))


def endpoint_text(engine: str, url: str, models: list[str], log: Path | None) -> str:
    """What ``podium serve`` prints once the server answers: the endpoint and how to use it."""
    lines = [
        f"podium serve: {engine} is serving {', '.join(models)} at {url}",
        "point podium at it with the environment:",
        f"  export PODIUM_POLICY_BASE_URL={url}",
        f"  export PODIUM_POLICY_MODEL={models[0]}",
        "or in ~/.config/podium/config.toml:",
        "  [policy]",
        f'  base_url = "{url}"',
        f'  model = "{models[0]}"',
    ]
    if log is not None:
        lines.append(f"server log: {log}")
    return "\n".join([*lines, "Ctrl-C stops the server."])


_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def _ignoring_stops() -> Any:
    """Ignore further stop signals while the server is being stopped (no half-done stop)."""
    old = {s: signal.signal(s, signal.SIG_IGN) for s in _STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)


@contextlib.contextmanager
def _stop_signals() -> Any:
    """Turn SIGINT, SIGTERM and SIGHUP into :class:`_Stop` while serving.

    SIGINT is caught even where the shell ignores it (a job started with ``&``): stopping is
    what it asks for. An ignored SIGHUP (``nohup``) stays ignored.
    """

    def handler(signum: int, _frame: Any) -> None:
        raise _Stop(signum)

    stops = [signal.SIGINT, signal.SIGTERM]
    if signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
        stops.append(signal.SIGHUP)
    old = {s: signal.signal(s, handler) for s in stops}
    try:
        yield
    finally:
        for sig, previous in old.items():
            signal.signal(sig, previous)


def serve_vllm(spec: ServeSpec, announce: Callable[[str, list[str], Path], None]) -> int:
    """Run vLLM in the foreground until it exits or a stop signal; return an exit code."""
    python = vllm_python()
    check_port_free(spec.host, spec.port)
    model_dir = Path(spec.model).expanduser()
    if model_dir.exists():
        spec.model = str(model_dir.resolve())
    elif spec.model.startswith((".", "/", "~")) or spec.model.count("/") > 1:
        raise ServeError(NO_MODEL.format(model=spec.model))
    gpu = has_gpu()
    log = cache_dir("serve") / f"vllm-{spec.port}.log"
    names = [spec.served_model_name, *spec.loras]
    url = base_url(spec.host, spec.port)
    with _stop_signals(), log.open("wb") as out:
        process = subprocess.Popen(
            vllm_command(spec, python, gpu=gpu),
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=vllm_env(gpu=gpu),
            start_new_session=True,  # its own group: stopped as a whole, not hit by Ctrl-C twice
            preexec_fn=die_with_parent,  # stopped even if podium serve is SIGKILLed
        )
        try:
            _wait_healthy(process, url, set(names), spec, log)
            announce(url, names, log)
            code = process.wait()
            print(
                f"podium serve: vLLM exited with code {code}: {telling_line(_log_tail(log))}",
                file=sys.stderr,
            )
            return code or 1
        except _Stop:
            return 0
        finally:
            with _ignoring_stops():
                stop_group(process)


def llamacpp_adapter(values: Sequence[str]) -> str:
    """The GGUF LoRA of ``--lora PATH`` (or ``policy=PATH``), else ``[policy] adapter``.

    llama.cpp applies one adapter, to the policy model.
    """
    from podium.tools import load_config

    if not values:
        return load_config().policy.adapter
    name, sep, path = values[0].rpartition("=")
    if len(values) > 1 or (sep and name != "policy"):
        raise ServeError(LLAMACPP_LORA.format(value=" ".join(values)))
    return path


def serve_llamacpp(
    spec: ServeSpec, announce: Callable[[str, list[str], Path], None], adapter: str = ""
) -> int:
    """Run the embedded llama.cpp server (its own state files, so the shared one is untouched)."""
    from podium.tools.llamacpp import EmbeddedServer, ServerError

    check_port_free(spec.host, spec.port)
    try:
        server = EmbeddedServer(
            host=spec.host,
            port=spec.port,
            state_dir=cache_dir("serve", f"llamacpp-{spec.port}"),
            owned=True,
            adapter=adapter or None,
        )
    except ValueError as exc:
        raise ServeError(str(exc)) from None
    try:
        with _stop_signals():
            url = server.ensure(timeout=spec.timeout)
            announce(url, server.models, server.log_path)
            pid = (server.status() or {}).get("pid", -1)
            while is_server(pid):
                time.sleep(0.5)
            print("podium serve: the llama.cpp server exited", file=sys.stderr)
            return 1
    except _Stop:
        return 0
    except ServerError as exc:
        raise ServeError(str(exc)) from None
    finally:
        with _ignoring_stops():
            server.stop()


def register(app: typer.Typer) -> None:
    """Add ``podium serve`` to the CLI."""

    @app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def serve(
        ctx: typer.Context,
        engine: Annotated[str, typer.Option(help="vllm or llamacpp.")] = "vllm",
        model: Annotated[str, typer.Option(help="vLLM: model directory or cached hub id.")] = "",
        served_model_name: Annotated[
            str, typer.Option(help="vLLM: the name clients ask for.")
        ] = "policy",
        lora: Annotated[
            list[str] | None,
            typer.Option(
                help="vLLM: NAME=PATH of a PEFT adapter, repeatable; llamacpp: PATH of a GGUF "
                "LoRA (podium export) applied to the policy, default [policy] adapter."
            ),
        ] = None,
        host: Annotated[str, typer.Option(help="Address to bind.")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="Port to bind.")] = DEFAULT_PORT,
        timeout: Annotated[float, typer.Option(help="Seconds to wait for the server.")] = 600.0,
        json_out: Annotated[
            bool, typer.Option("--json", help="Print the endpoint as one JSON line.")
        ] = False,
    ) -> None:
        """Serve the policy on an OpenAI-compatible endpoint; extra flags go to vLLM."""
        adapter = ""

        def announce(url: str, models: list[str], log: Path) -> None:
            if json_out:
                info = {"engine": engine, "base_url": url, "models": models, "log": str(log)}
                if adapter:
                    from podium.tools.adapters import adapter_identity

                    info["adapter"] = adapter_identity(adapter)
                print(json.dumps(info), flush=True)
            else:
                print(endpoint_text(engine, url, models, log), flush=True)
                if adapter:
                    print(f"the policy answers with the LoRA {adapter}", flush=True)

        if engine not in ("vllm", "llamacpp"):
            raise ServeError(f"--engine {engine!r}: choose vllm or llamacpp")
        if not 0 < port < 65536:
            raise ServeError(f"--port {port}: choose a port between 1 and 65535")
        if engine == "llamacpp":
            if model or ctx.args:
                raise ServeError("--model and extra flags are for --engine vllm only")
            adapter = llamacpp_adapter(lora or [])
            code = serve_llamacpp(
                ServeSpec(model="", host=host, port=port, timeout=timeout), announce, adapter
            )
        else:
            if not model:
                raise ServeError("--engine vllm needs --model DIR (a Hugging Face model directory)")
            spec = ServeSpec(
                model=model,
                served_model_name=served_model_name,
                loras=parse_loras(lora or []),
                host=host,
                port=port,
                extra=list(ctx.args),
                timeout=timeout,
            )
            code = serve_vllm(spec, announce)
        raise typer.Exit(code)
