"""``podium serve``: the policy on an OpenAI-compatible endpoint (vLLM or llama.cpp), foreground.

A busy port fails before anything starts; the command waits until the server answers, prints
the endpoint and how to point podium at it, and stops the server with all its children on
Ctrl-C, SIGTERM, or (vLLM) when ``podium serve`` itself dies. Flags podium does not know go to
vLLM unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ..servers import (
    DEFAULT_PORT,
    ServeError,
    ServeSpec,
    endpoint_text,
    llamacpp_adapter,
    parse_loras,
    serve_llamacpp,
    serve_vllm,
)
from .options import Host

PASS_THROUGH = {"allow_extra_args": True, "ignore_unknown_options": True}
"""Click settings of a command whose unknown flags go to the program it starts."""


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
    host: Host = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to bind.")] = DEFAULT_PORT,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for the server.")] = 600.0,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the endpoint as one JSON line.")
    ] = False,
    tensor_parallel_size: Annotated[
        int, typer.Option(help="vLLM: GPUs each model replica is split over.")
    ] = 1,
    data_parallel_size: Annotated[
        int, typer.Option(help="vLLM: model replicas behind the endpoint.")
    ] = 1,
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
    for flag, size in (("--tensor-parallel-size", tensor_parallel_size),
                       ("--data-parallel-size", data_parallel_size)):  # fmt: skip
        if size < 1:
            raise ServeError(f"{flag} {size}: choose 1 or more")
    parallel = tensor_parallel_size > 1 or data_parallel_size > 1
    if engine == "llamacpp":
        if model or ctx.args or parallel:
            raise ServeError("--model, parallel sizes and extra flags are for --engine vllm only")
        adapter = llamacpp_adapter(lora or [])
        spec = ServeSpec(model="", host=host, port=port, timeout=timeout)
        code = serve_llamacpp(spec, announce, adapter)
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
            tensor_parallel_size=tensor_parallel_size,
            data_parallel_size=data_parallel_size,
        )
        code = serve_vllm(spec, announce)
    raise typer.Exit(code)
