"""``podium collect``: GRPO rollouts, each task run as a group, judged and stored for training."""

from __future__ import annotations

import asyncio
import json
import math
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
    out: Annotated[
        str,
        typer.Option("--out", help="Trajectory store: SQLite file or postgresql:// URL."),
    ],
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
    price_jitter: Annotated[
        float, typer.Option(help="Each tool's prices times a random factor in [1/(1+J), 1+J].")
    ] = 0.0,
    profile: Profile = "local",
    config: ConfigFile = "",
    local_only: LocalOnly = False,
    explore: Annotated[
        bool,
        typer.Option(
            "--explore",
            help="One run per pool tool (and one answering at once), that tool forced as the "
            "first call; replaces --group-size. Stored flagged as exploration.",
        ),
    ] = False,
    explore_tool: Annotated[
        list[str] | None,
        typer.Option(help="With --explore: force only this tool (repeat; 'answer' too)."),
    ] = None,
    explore_samples: Annotated[
        int, typer.Option(help="With --explore: sampled runs per forced tool.")
    ] = 1,
    router: Annotated[
        str,
        typer.Option(
            help="Drive the runs with a fixed router (strongest, cheapest, random, or "
            "TOOL+strongest: TOOL first, then the expert answers) instead of the policy: "
            "demonstrations for RFT. Any --group-size >= 1."
        ),
    ] = "",
    json_out: JsonOut = False,
    ray: Ray = None,
    ray_workers: RayWorkers = 2,
) -> None:
    """Run every task GROUP_SIZE times (temperature > 0) and store the judged trajectories.

    With --explore, each task runs once per pool tool forced as the first call's name; with
    --router, a fixed router drives the runs (stored as model 'router:NAME').
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from podium.graph import TrajectoryStore
    from podium.training.grpo.collect import CollectConfig, CollectError
    from podium.training.grpo.collect import collect as collect_groups

    if not 0 < temperature < math.inf:  # nan fails both comparisons
        raise CollectError(
            f"--temperature must be finite and above 0 for GRPO groups, got {temperature}"
        )
    cfg = CollectConfig(
        tasks=tasks, out=out, group_size=group_size, limit=limit,
        concurrency=concurrency, seed=seed, temperature=temperature,
        policy_base_url=policy_base_url, policy_model=policy_model, profile=profile,
        config=config, local_only=local_only, max_turns=max_turns, budget_usd=budget_usd,
        sample_preferences=sample_preferences, price_jitter=price_jitter,
        explore=explore, explore_tools=list(explore_tool or []), explore_samples=explore_samples,
        router=router, ray=ray, ray_workers=ray_workers,
    )  # fmt: skip
    if Path(out).exists():  # a directory or a broken store fails here, before the progress bar
        TrajectoryStore(out)
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
