"""``podium train``: GRPO-train a LoRA adapter of the policy with TRL + PEFT."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def train(
    config: Annotated[Path, typer.Option("--config", help="Training config (TOML).")],
) -> None:
    """GRPO-train a LoRA adapter of the policy with TRL (offline or with the graph online)."""
    from podium.training.grpo.config import load_train_config
    from podium.training.grpo.trainer import train as train_adapter

    result = train_adapter(load_train_config(config))
    typer.echo(
        f"{result.steps} steps · final loss {result.losses[-1] if result.losses else 'n/a'}"
        f" · {result.dropped_groups}/{result.groups} groups dropped (low spread)"
        f" · adapter → {result.adapter_dir}"
    )
