"""vLLM's own OpenAI-compatible server, run in the foreground from the vLLM venv.

The server is ``python -m vllm.entrypoints.openai.api_server`` of a separate venv (vLLM pins
its own transformers), with hermes tool-call parsing and LoRA adapters. It runs offline with no
usage reports and sees no API key but its own; on a CPU the KV cache is 1 GiB by default.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from podium.tools.localhost import DIRECT, base_url, die_with_parent, served_models, telling_line
from podium.tools.paths import cache_dir

from .process import (
    ServeError,
    ServeSpec,
    Stop,
    check_port_free,
    ignoring_stops,
    stop_group,
    stop_signals,
)

VLLM_PYTHON_ENV = "PODIUM_VLLM_PYTHON"
# Offline, no usage reports; the CPU backend's KV cache in GiB (tiny by default).
VLLM_ENV = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1"}
VLLM_ENV |= {"DO_NOT_TRACK": "1"}
CPU_ENV = {"VLLM_CPU_KVCACHE_SPACE": "1"}
CPU_FLAGS = (("--enforce-eager", None), ("--dtype", "float32"))
LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)  # ranks vLLM accepts for --max-lora-rank
LOG_TAIL = 15

NO_VLLM = "vLLM's python not found at {path}: run `make install-vllm` or set ${env}"
BAD_LORA = "--lora {value!r}: expected NAME=PATH of a PEFT adapter directory"
NO_ADAPTER = "--lora {name}: {path} has no adapter_config.json (save it with save_pretrained)"
NO_MODEL = "--model {model}: no such directory (a hub id must already be in the HF cache)"
DIED = "{engine} exited with code {code} while starting: {line} (log: {log})"
TIMED_OUT = "{engine} did not answer on {url} within {timeout:.0f} s (log: {log})"


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
        repo = Path(__file__).resolve().parents[2]  # the checkout of an editable install
        candidates = [repo / ".venv-vllm/bin/python", Path.cwd() / ".venv-vllm/bin/python"]
        path = next((p for p in candidates if p.exists()), candidates[0])
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise ServeError(NO_VLLM.format(path=path, env=VLLM_PYTHON_ENV))
    return path


def has_gpu() -> bool:
    """Whether an NVIDIA GPU is visible (vLLM's CUDA build would use it)."""
    return Path("/dev/nvidia0").exists() or shutil.which("nvidia-smi") is not None


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
    # Several GPUs: each replica split over tensor_parallel_size of them, data_parallel_size
    # replicas behind this one endpoint (tp x dp GPUs in all).
    if spec.tensor_parallel_size > 1:
        cmd += ["--tensor-parallel-size", str(spec.tensor_parallel_size)]
    if spec.data_parallel_size > 1:
        cmd += ["--data-parallel-size", str(spec.data_parallel_size)]
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
    with stop_signals(), log.open("wb") as out:
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
        except Stop:
            return 0
        finally:
            with ignoring_stops():
                stop_group(process)
