"""``podium train``: train a LoRA adapter of the policy with TRL + PEFT (GRPO or RFT)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def train(
    config: Annotated[Path, typer.Option("--config", help="Training config (TOML).")],
) -> None:
    """Train a LoRA adapter of the policy with TRL: GRPO (offline, online) or RFT."""
    from podium.training.grpo.config import load_train_config
    from podium.training.grpo.trainer import train as train_adapter

    cfg = load_train_config(config)
    if cfg.mode == "rft":
        from podium.training.grpo.rft import train_rft

        typer.echo(train_rft(cfg).summary())
        return
    result = train_adapter(cfg)
    typer.echo(
        f"{result.steps} steps · final loss {result.losses[-1] if result.losses else 'n/a'}"
        f" · {result.dropped_groups}/{result.groups} groups dropped (low spread)"
        f" · adapter → {result.adapter_dir}"
    )
