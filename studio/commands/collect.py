"""``podium collect``: GRPO rollouts, each task run as a group, judged and stored for training."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from podium.training.eval.run_context import BUDGET_USD, MAX_TURNS

from .options import (
    BudgetUsd,
    Concurrency,
    ConfigFile,
    JsonOut,
    Limit,
    LocalOnly,
    MaxTurns,
    PolicyBaseUrl,
    PolicyModel,
    Profile,
    Ray,
    RayWorkers,
    Seed,
)


def collect(
    tasks: Annotated[str, typer.Option("--tasks", help="Suite: math, code, … or jsonl:FILE.")],
    out: Annotated[Path, typer.Option("--out", help="SQLite store the trajectories go to.")],
    group_size: Annotated[int, typer.Option(help="Runs per task (the GRPO group).")] = 8,
    limit: Limit = None,
    concurrency: Concurrency = 2,
    seed: Seed = 0,
    temperature: Annotated[float, typer.Option(help="Policy sampling temperature.")] = 1.0,
    policy_base_url: PolicyBaseUrl = "",
    policy_model: PolicyModel = "",
    max_turns: MaxTurns = MAX_TURNS,
    budget_usd: BudgetUsd = BUDGET_USD,
    sample_preferences: Annotated[
        bool, typer.Option(help="A seeded preference per task (paper); default none, as eval.")
    ] = False,
    profile: Profile = "local",
    config: ConfigFile = "",
    local_only: LocalOnly = False,
    json_out: JsonOut = False,
    ray: Ray = None,
    ray_workers: RayWorkers = 2,
) -> None:
    """Run every task GROUP_SIZE times (temperature > 0) and store the judged trajectories."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from podium.training.grpo.collect import CollectConfig, CollectError
    from podium.training.grpo.collect import collect as collect_groups

    if temperature <= 0:
        raise CollectError(f"--temperature must be above 0 for GRPO groups, got {temperature}")
    cfg = CollectConfig(
        tasks=tasks, out=str(out), group_size=group_size, limit=limit,
        concurrency=concurrency, seed=seed, temperature=temperature,
        policy_base_url=policy_base_url, policy_model=policy_model, profile=profile,
        config=config, local_only=local_only, max_turns=max_turns, budget_usd=budget_usd,
        sample_preferences=sample_preferences, ray=ray, ray_workers=ray_workers,
    )  # fmt: skip
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, disable=json_out, transient=True) as bar:
        job = bar.add_task("collecting", total=None)  # known once the suite is loaded
        done = {"correct": 0}

        def step(record: dict[str, Any]) -> None:
            verdict = record["training"]["verdict"] or {}
            done["correct"] += bool(verdict.get("correct"))
            bar.update(job, advance=1, description=f"collecting · {done['correct']} correct")

        summary = asyncio.run(collect_groups(cfg, progress=step))
    if json_out:
        print(json.dumps(summary))
    else:
        typer.echo(
            f"{summary['runs']} runs of {summary['tasks']} tasks · {summary['correct']} correct"
            f" · {summary['errors']} errors → {summary['store']}"
        )
