"""``podium collect`` and ``podium train``: GRPO rollouts into a store, then TRL + PEFT training."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Annotated, Any

import typer

from podium.training.eval.run_context import BUDGET_USD, MAX_TURNS


def user_errors() -> tuple[type[Exception], ...]:
    """The exceptions of these commands that are user mistakes (one line, exit code 2)."""
    from podium.training.grpo.collect import CollectError

    return (CollectError,)  # TrainConfigError is a CollectError


def register(app: typer.Typer) -> None:
    """Add ``collect`` and ``train`` to the podium CLI."""

    @app.command("collect")
    def collect_(
        tasks: Annotated[str, typer.Option("--tasks", help="Suite: math, code, … or jsonl:FILE.")],
        out: Annotated[Path, typer.Option("--out", help="SQLite store the trajectories go to.")],
        group_size: Annotated[int, typer.Option(help="Runs per task (the GRPO group).")] = 8,
        limit: Annotated[int | None, typer.Option(help="At most this many tasks.")] = None,
        concurrency: Annotated[int, typer.Option(help="Runs in flight at once.")] = 2,
        seed: Annotated[int, typer.Option(help="Seed of tasks and preferences.")] = 0,
        temperature: Annotated[float, typer.Option(help="Policy sampling temperature.")] = 1.0,
        policy_base_url: Annotated[str, typer.Option(help="Policy endpoint URL.")] = "",
        policy_model: Annotated[str, typer.Option(help="Model name at the endpoint.")] = "",
        max_turns: Annotated[int, typer.Option(help="Policy turns per run.")] = MAX_TURNS,
        budget_usd: Annotated[float, typer.Option(help="Dollar cap of each run.")] = BUDGET_USD,
        sample_preferences: Annotated[
            bool, typer.Option(help="A seeded preference per task (paper); default none, as eval.")
        ] = False,
        profile: Annotated[str, typer.Option("--profile", "-p", help="Tool pool.")] = "local",
        config: Annotated[str, typer.Option("--config", "-c", help="Config (TOML).")] = "",
        local_only: Annotated[bool, typer.Option("--local-only", help="Only local tools.")] = False,
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
        json_out: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    ) -> None:
        """Run every task GROUP_SIZE times (temperature > 0) and store the judged trajectories.

        With --explore, each task runs once per pool tool forced as the first call's name.
        """
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        from podium.training.grpo.collect import CollectConfig, CollectError, collect

        if temperature <= 0:
            raise CollectError(f"--temperature must be above 0 for GRPO groups, got {temperature}")
        cfg = CollectConfig(
            tasks=tasks, out=str(out), group_size=group_size, limit=limit,
            concurrency=concurrency, seed=seed, temperature=temperature,
            policy_base_url=policy_base_url, policy_model=policy_model, profile=profile,
            config=config, local_only=local_only, max_turns=max_turns, budget_usd=budget_usd,
            explore=explore, explore_tools=list(explore_tool or []),
            sample_preferences=sample_preferences,
        )  # fmt: skip
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, disable=json_out, transient=True) as bar:
            job = bar.add_task("collecting", total=None)
            done = {"correct": 0}

            def step(record: dict[str, Any]) -> None:
                verdict = record["training"]["verdict"] or {}
                done["correct"] += bool(verdict.get("correct"))
                bar.update(job, advance=1, description=f"collecting · {done['correct']} correct")

            summary = asyncio.run(collect(cfg, progress=step))
        if json_out:
            print(json.dumps(summary))
        else:
            typer.echo(
                f"{summary['runs']} runs of {summary['tasks']} tasks · {summary['correct']} correct"
                f" · {summary['errors']} errors → {summary['store']}"
            )

    @app.command("train")
    def train_(
        config: Annotated[Path, typer.Option("--config", help="Training config (TOML).")],
    ) -> None:
        """GRPO-train a LoRA adapter of the policy with TRL (offline or with the graph online)."""
        from podium.training.grpo.config import load_train_config
        from podium.training.grpo.trainer import train

        result = train(load_train_config(config))
        typer.echo(
            f"{result.steps} steps · final loss {result.losses[-1] if result.losses else 'n/a'}"
            f" · {result.dropped_groups}/{result.groups} groups dropped (low spread)"
            f" · adapter → {result.adapter_dir}"
        )
