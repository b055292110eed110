"""``podium eval`` and ``podium view``: run a suite under routers, report it, look at one run."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from podium.training.eval.run_context import BUDGET_USD, MAX_TURNS

EVAL_HELP = "Evaluate routers on a task suite: results.jsonl, summary.json, report.html."


def _print_summary(summary: dict, out_dir: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table("router", "accuracy", "95% CI", "mean $", "mean s", "calls/task", "errors")
    for name, s in summary["routers"].items():
        low, high = s["accuracy_ci95"]
        table.add_row(
            name, f"{s['accuracy']:.1%}", f"{low:.0%}–{high:.0%}", f"{s['mean_cost_usd']:.6f}",
            f"{s['mean_latency_s']:.1f}", f"{s['calls_per_task']:.2f}", str(s["errors"]),
        )  # fmt: skip
    console = Console()
    console.print(table)
    console.print(f"wrote {out_dir}/results.jsonl, summary.json, report.html, pareto.png")


def register(app: typer.Typer) -> None:
    """Add ``eval`` and ``view`` to the podium CLI."""

    @app.command("eval", help=EVAL_HELP)
    def eval_(
        suite: Annotated[
            str, typer.Argument(help="math, code, wiki, fc, tau2, toolscale, jsonl:FILE")
        ],
        router: Annotated[
            list[str] | None,
            typer.Option(
                "--router", "-r", help="policy, strongest, cheapest, random, oracle (repeat)."
            ),
        ] = None,
        limit: Annotated[int | None, typer.Option(help="At most this many tasks.")] = None,
        seed: Annotated[int, typer.Option(help="Seed of the task sample and random router.")] = 0,
        concurrency: Annotated[int, typer.Option(help="Tasks run at once.")] = 1,
        out: Annotated[
            Path | None, typer.Option(help="Output dir (default podium-eval/SUITE).")
        ] = None,
        resume: Annotated[
            bool, typer.Option(help="Continue OUT, skipping finished tasks.")
        ] = False,
        retry_errors: Annotated[
            bool, typer.Option(help="With --resume: run tasks that ended in error again.")
        ] = False,
        prefer: Annotated[
            list[str] | None, typer.Option(help="Preferred tool (repeat); compliance is measured.")
        ] = None,
        profile: Annotated[
            str, typer.Option("--profile", "-p", help="Tool-pool profile.")
        ] = "local",
        config: Annotated[
            str, typer.Option("--config", "-c", help="User config file (TOML).")
        ] = "",
        local_only: Annotated[bool, typer.Option("--local-only", help="Only local tools.")] = False,
        budget_usd: Annotated[float, typer.Option(help="Dollar cap of each run.")] = BUDGET_USD,
        max_turns: Annotated[int, typer.Option(help="Policy turns per run.")] = MAX_TURNS,
        langsmith: Annotated[
            bool,
            typer.Option(help="Run through langsmith.evaluate (uploads if LANGSMITH_API_KEY)."),
        ] = False,
        quiet: Annotated[bool, typer.Option(help="No progress bar or table.")] = False,
        oracle_tool: Annotated[
            list[str] | None,
            typer.Option(help="Tools the oracle forces first (repeat; 'answer' too); default all."),
        ] = None,
    ) -> None:
        from podium.graph import Context
        from podium.training.eval.runner import EvalConfig, evaluate
        from podium.training.eval.suites import SuiteSkipped

        from .report import write_report

        ctx = {"profile": profile, "config": config, "local_only": local_only,
               "budget_usd": budget_usd, "max_turns": max_turns}  # fmt: skip
        Context(**ctx)  # bad numbers fail here, as one line
        cfg = EvalConfig(
            suite=suite, out=out or Path("podium-eval") / suite.replace(":", "_").replace("/", "_"),
            routers=list(dict.fromkeys(router or ["policy"])), limit=limit, seed=seed,
            concurrency=concurrency, resume=resume, retry_errors=retry_errors,
            prefer=list(prefer or []), context=ctx, progress=not quiet,
            oracle_tools=list(oracle_tool or []),
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

    @app.command("view")
    def view(
        trajectory_id: Annotated[str | None, typer.Argument(help="Trajectory id.")] = None,
        latest: Annotated[bool, typer.Option("--latest", help="The most recent run.")] = False,
        out: Annotated[Path | None, typer.Option(help="Where to write the HTML page.")] = None,
        db: Annotated[str, typer.Option(help="Trajectory SQLite file (default: cache).")] = "",
        no_open: Annotated[bool, typer.Option("--no-open", help="Do not open a browser.")] = False,
    ) -> None:
        """Write (and open) a self-contained HTML page of one trajectory."""
        from .cli import UsageError
        from .viewer import find_record, open_page, write_view

        if (trajectory_id is None) == (not latest):
            raise UsageError("give a TRAJECTORY_ID or --latest (one of them)")
        record = find_record(None if latest else trajectory_id, db or None)
        path = write_view(record, out)
        print(path)
        if not no_open:
            open_page(path)


def user_errors() -> tuple[type[Exception], ...]:
    """The user-error classes of evaluation and viewing."""
    from podium.training.eval.routers import RouterError
    from podium.training.eval.runner import EvalError
    from podium.training.eval.suites import SuiteError

    from .viewer import ViewError

    return (EvalError, RouterError, SuiteError, ViewError)
