"""``podium eval``: run a task suite under routers, then write its report."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from podium.training.eval.run_context import BUDGET_USD, MAX_TURNS

from ..console import console
from .options import (
    BudgetUsd,
    Concurrency,
    ConfigFile,
    Limit,
    LocalOnly,
    MaxTurns,
    Profile,
    Ray,
    RayWorkers,
    Seed,
    UsageError,
)


def eval_(
    suite: Annotated[str, typer.Argument(help="math, code, wiki, fc, tau2, toolscale, jsonl:FILE")],
    router: Annotated[
        list[str] | None,
        typer.Option(
            "--router", "-r", help="policy, strongest, cheapest, random, oracle (repeat)."
        ),
    ] = None,
    limit: Limit = None,
    seed: Seed = 0,
    concurrency: Concurrency = 1,
    out: Annotated[
        Path | None, typer.Option(help="Output dir (default podium-eval/SUITE).")
    ] = None,
    resume: Annotated[bool, typer.Option(help="Continue OUT, skipping finished tasks.")] = False,
    retry_errors: Annotated[
        bool, typer.Option(help="With --resume: run tasks that ended in error again.")
    ] = False,
    prefer: Annotated[
        list[str] | None, typer.Option(help="Preferred tool (repeat); compliance is measured.")
    ] = None,
    profile: Profile = "local",
    config: ConfigFile = "",
    local_only: LocalOnly = False,
    budget_usd: BudgetUsd = BUDGET_USD,
    max_turns: MaxTurns = MAX_TURNS,
    langsmith: Annotated[
        bool, typer.Option(help="Run through langsmith.evaluate (uploads if LANGSMITH_API_KEY).")
    ] = False,
    quiet: Annotated[bool, typer.Option(help="No progress bar or table.")] = False,
    ray: Ray = None,
    ray_workers: RayWorkers = 2,
) -> None:
    """Evaluate routers on a task suite: results.jsonl, summary.json, report.html."""
    from podium.graph import Context
    from podium.training.eval.runner import EvalConfig, evaluate
    from podium.training.eval.suites import SuiteSkipped

    from ..reports import write_report

    if langsmith and ray is not None:
        raise UsageError("--langsmith runs in this process: drop --ray or --langsmith")
    ctx = {"profile": profile, "config": config, "local_only": local_only,
           "budget_usd": budget_usd, "max_turns": max_turns}  # fmt: skip
    Context(**ctx)  # bad numbers fail here, as one line
    cfg = EvalConfig(
        suite=suite, out=out or Path("podium-eval") / suite.replace(":", "_").replace("/", "_"),
        routers=list(dict.fromkeys(router or ["policy"])), limit=limit, seed=seed,
        concurrency=concurrency, resume=resume, retry_errors=retry_errors,
        prefer=list(prefer or []), context=ctx, progress=not quiet, ray=ray,
        ray_workers=ray_workers,
    )  # fmt: skip
    try:
        if langsmith:
            from podium.training.eval.langsmith_eval import evaluate_langsmith

            summary = evaluate_langsmith(cfg)
        else:
            summary = evaluate(cfg)
    except SuiteSkipped as exc:
        print(f"podium: skipped: {exc}", file=sys.stderr)
        raise typer.Exit(0) from None
    write_report(cfg.out)
    if quiet:
        print(json.dumps({n: s["accuracy"] for n, s in summary["routers"].items()}))
    else:
        _print_summary(summary, cfg.out)


def _print_summary(summary: dict[str, Any], out_dir: Path) -> None:
    table = Table("router", "accuracy", "95% CI", "mean $", "mean s", "calls/task", "errors")
    for name, s in summary["routers"].items():
        low, high = s["accuracy_ci95"]
        table.add_row(
            name, f"{s['accuracy']:.1%}", f"{low:.0%}–{high:.0%}", f"{s['mean_cost_usd']:.6f}",
            f"{s['mean_latency_s']:.1f}", f"{s['calls_per_task']:.2f}", str(s["errors"]),
        )  # fmt: skip
    console.print(table)
    console.print(f"wrote {out_dir}/results.jsonl, summary.json, report.html, pareto.png")
