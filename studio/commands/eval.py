"""``podium eval``: run a task suite under routers, then write its report."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from podium.training.eval.run_context import BUDGET_USD, MAX_TURNS, spread

from ..console import console, usd
from .options import (
    BudgetUsd,
    Concurrency,
    ConfigFile,
    Limit,
    LocalOnly,
    MaxTurns,
    PolicyBaseUrl,
    Profile,
    Ray,
    RayWorkers,
    Seed,
    UsageError,
    given_flags,
)


def eval_(
    click_ctx: typer.Context,
    suite: Annotated[
        str, typer.Argument(help="math, code, wiki, fc, tau2, toolscale, jsonl:FILE")
    ] = "",
    router: Annotated[
        list[str] | None,
        typer.Option(
            "--router", "-r", help="policy, direct, strongest, cheapest, random, oracle (repeat)."
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
    prices: Annotated[
        str, typer.Option(help="Price file (TOML): evaluate under it and under today's prices.")
    ] = "",
    replay: Annotated[
        str, typer.Option(help="Trajectory store: ask its past runs again (instead of SUITE).")
    ] = "",
    policy_base_url: PolicyBaseUrl = "",
    oracle_tool: Annotated[
        list[str] | None,
        typer.Option(help="Tools the oracle forces first (repeat; 'answer' too); default all."),
    ] = None,
    ray: Ray = None,
    ray_workers: RayWorkers = 2,
) -> None:
    """Evaluate routers on a task suite: results.jsonl, summary.json, report.html."""
    from podium.graph import Context
    from podium.graph.database import check_reachable
    from podium.graph.stores import default_db
    from podium.tools.price_shock import load_shock
    from podium.training.eval.runner import EvalConfig, evaluate
    from podium.training.eval.suites import SuiteSkipped

    from ..reports import write_report

    if bool(suite) == bool(replay):
        raise UsageError("name a SUITE or --replay STORE (one of them): see 'podium eval --help'")
    suite = suite or f"store:{replay}"
    shock = load_shock(prices) if prices else None  # a bad price file fails before any run
    if shock is not None and langsmith:
        raise UsageError("--prices runs two local evaluations and compares them: drop --langsmith")
    if langsmith and ray is not None:
        raise UsageError("--langsmith runs in this process: drop --ray or --langsmith")
    ctx = {"profile": profile, "config": config, "local_only": local_only,
           "budget_usd": budget_usd, "max_turns": max_turns}  # fmt: skip
    ctx["explicit"] = sorted(given_flags(click_ctx) & ctx.keys())  # flags beat $PODIUM_*
    if policy_base_url:
        ctx["policy_base_url"] = policy_base_url  # a list is spread over runs by the runner
    Context(**spread(ctx, 0))  # bad numbers fail here, as one line
    check_reachable(default_db(), "PODIUM_TRAJECTORY_DB")  # before any run starts
    cfg = EvalConfig(
        suite=suite, out=out or Path("podium-eval") / suite.replace(":", "_").replace("/", "_"),
        routers=list(dict.fromkeys(router or ["policy"])), limit=limit, seed=seed,
        concurrency=concurrency, resume=resume, retry_errors=retry_errors,
        prefer=list(prefer or []), context=ctx, progress=not quiet,
        oracle_tools=list(oracle_tool or []), ray=ray, ray_workers=ray_workers,
    )  # fmt: skip
    if cfg.out.exists() and not cfg.out.is_dir():
        raise UsageError(f"--out {cfg.out} is a file: pass a directory for the results")
    try:
        if shock is not None:
            _shock(cfg, shock, quiet)
            return
        if langsmith:
            from podium.training.eval.langsmith_eval import evaluate_langsmith

            summary = evaluate_langsmith(cfg)
        else:
            summary = evaluate(cfg)
    except SuiteSkipped as exc:
        print(f"podium: skipped: {exc}", file=sys.stderr)
        raise typer.Exit(0) from None
    if replay:
        summary = _with_served(cfg)
    write_report(cfg.out)
    if quiet:
        print(json.dumps({n: s["accuracy"] for n, s in summary["routers"].items()}))
    else:
        _print_summary(summary, cfg.out)


def _print_summary(summary: dict[str, Any], out_dir: Path) -> None:
    table = Table("router", "accuracy", "95% CI", "mean cost", "mean s", "calls/task", "errors")
    for name, s in summary["routers"].items():
        low, high = s["accuracy_ci95"]
        table.add_row(
            name, f"{s['accuracy']:.1%}", f"{low:.0%}–{high:.0%}", usd(s["mean_cost_usd"]),
            f"{s['mean_latency_s']:.1f}", f"{s['calls_per_task']:.2f}", str(s["errors"]),
        )  # fmt: skip
    console.print(table)
    console.print(f"wrote {out_dir}/results.jsonl, summary.json, report.html, pareto.png")


def _with_served(cfg: Any) -> dict[str, Any]:
    """Add what was served (router ``stored``) beside the replayed routers, and re-summarise."""
    from podium.training.eval import suites
    from podium.training.eval.runner import RESULTS, write_summary
    from podium.training.eval.suites.stored import stored_rows

    tasks = suites.load_suite(cfg.suite, limit=cfg.limit, seed=cfg.seed)
    path = cfg.out / RESULTS
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    done = {r["task_id"] for r in rows if r["router"] == "stored"}
    served = [r | {"seed": cfg.seed} for r in stored_rows(cfg.suite, tasks)]
    rows = [r for r in served if r["task_id"] not in done]
    with path.open("a", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in rows)
    return write_summary(cfg, tasks)


def _shock(cfg: Any, shock: Any, quiet: bool) -> None:
    """Evaluate under today's prices and the price file; print how mix and cost moved."""
    from podium.training.eval.shock import BRANCHES, describe, evaluate_shock

    from ..reports import write_report

    report = evaluate_shock(cfg, shock)
    for name in BRANCHES:
        write_report(cfg.out / name)
    if quiet:
        print(json.dumps(report))
        return
    for line in describe(report):
        console.print(line, highlight=False)
    console.print(f"wrote {cfg.out}/base, {cfg.out}/shocked and {cfg.out}/price_shock.json")
