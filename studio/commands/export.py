"""``podium export``: a trained PEFT adapter as a GGUF LoRA for the embedded llama.cpp server."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

DEFAULT_NAME = "adapter.gguf"


def export(
    adapter: Annotated[
        Path, typer.Argument(help="PEFT adapter folder: the output_dir of podium train.")
    ],
    out: Annotated[
        Path | None, typer.Option("--out", help=f"GGUF file to write; ADAPTER/{DEFAULT_NAME}.")
    ] = None,
    base: Annotated[
        str, typer.Option(help="Packaged model the adapter was trained on and will serve.")
    ] = "policy",
    outtype: Annotated[str, typer.Option(help="f16 (half the size) or f32.")] = "f16",
    json_out: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Write ADAPTER as a GGUF LoRA that the embedded llama.cpp server applies to the policy.

    Serve it with '[policy] adapter = "OUT"' in the config, or
    'podium serve --engine llamacpp --lora OUT'.
    """
    from podium.tools.adapters import AdapterError, write_gguf_lora
    from podium.tools.model_files import PACKAGED_MODELS, get_model

    if not adapter.is_dir():
        raise AdapterError(
            f"adapter folder {adapter} does not exist: pass podium train's output_dir"
        )
    if base not in PACKAGED_MODELS:
        raise AdapterError(
            f"--base {base!r}: choose a packaged model ({', '.join(PACKAGED_MODELS)})"
        )
    target = out or adapter / DEFAULT_NAME
    if not target.parent.is_dir():
        raise AdapterError(f"folder {target.parent} does not exist: create it or fix --out")
    start = time.monotonic()
    info = write_gguf_lora(adapter, target, get_model(base).path(), outtype)
    seconds = time.monotonic() - start
    if json_out:
        print(json.dumps({**info.__dict__, "seconds": round(seconds, 2)}))
        return
    typer.echo(
        f"exported {adapter} → {info.path} ({info.tensors} tensors, rank {info.rank}, "
        f"{info.size_bytes / 1e6:.1f} MB, sha256 {info.sha256[:12]}…) in {seconds:.1f} s\n"
        f'serve it: [policy] adapter = "{info.path}" in the config, or '
        f"podium serve --engine llamacpp --lora {info.path}"
    )
