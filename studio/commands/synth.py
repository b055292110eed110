"""``podium synth``: build tool environments and verified tasks (ToolScale-style), offline."""

from __future__ import annotations

import time
from collections import Counter
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from ..console import console, model_text
from .options import Seed

app = typer.Typer(
    help="Synthetic tool environments (SQLite + tools) and tasks verified by execution.",
    no_args_is_help=True,
)


def _drops(stats: Counter[str]) -> str:
    drops = {k: v for k, v in stats.items() if k != "kept"}
    return ", ".join(f"{k} {v}" for k, v in sorted(drops.items(), key=lambda kv: -kv[1])) or "-"


@app.command("env")
def env_cmd(
    domain: Annotated[
        str,
        typer.Option(
            "--domain", help="One of the ten domains (or a new name with --llm-base-url)."
        ),
    ],
    out_path: Annotated[
        Path | None, typer.Option("--out", help="Environment file to write.")
    ] = None,
    seed: Seed = 0,
    llm_base_url: Annotated[
        str,
        typer.Option(
            envvar="PODIUM_SYNTH_BASE_URL",
            help="OpenAI-compatible endpoint: the LLM proposes the "
            "schema, rows and tools (each proposal validated before it is kept).",
        ),
    ] = "",
    llm_model: Annotated[str, typer.Option(envvar="PODIUM_SYNTH_MODEL")] = "policy",
) -> None:
    """Build the environment of DOMAIN: a SQLite database with its tools."""
    from podium.tools.environment import load_spec
    from podium.training.synth import toolscale

    start = time.perf_counter()
    if llm_base_url:
        from podium.tools.endpoints import chat_model
        from podium.training.synth.llm import build_llm_env

        llm = chat_model(base_url=llm_base_url, model=llm_model, api_key="", max_tokens=4096)
        path = build_llm_env(llm, domain, out_path or toolscale.env_path(domain, seed), seed)
    else:
        path = toolscale.build_env(domain, seed, out_path)
    spec = load_spec(path)
    table = Table(
        "tool",
        "kind",
        "description",
        title=model_text(f"{spec.name}: {path}"),
        title_justify="left",
    )
    for t in spec.tools:
        # An LLM may have written the environment: its names and descriptions are model text.
        table.add_row(
            model_text(t.name), "write" if t.writes else "read", model_text(t.description[:80])
        )
    console.print(table)
    console.print(
        f"{len(spec.tables)} tables, {len(spec.tools)} tools in {time.perf_counter() - start:.1f}s"
    )


@app.command("tasks")
def tasks_cmd(
    env: Annotated[str, typer.Option("--env", help="A domain name or an environment file.")],
    n: Annotated[int, typer.Option("-n", help="How many verified tasks to keep.")] = 50,
    seed: Seed = 0,
    out_path: Annotated[Path | None, typer.Option("--out", help="JSONL file to write.")] = None,
) -> None:
    """Synthesize N tasks for ENV, verified by execution, as JSONL."""
    from podium.training.synth import toolscale
    from podium.training.synth.tasks import SynthError

    if n < 1:
        raise SynthError(f"-n must be at least 1, got {n}")
    path = toolscale.resolve_env(env, seed)
    tasks, stats = toolscale.synthesize(path, n, seed)
    target = out_path or (
        toolscale.tasks_path(env, seed) if env in toolscale.DOMAINS else path.with_suffix(".jsonl")
    )
    toolscale.write_tasks(tasks, target)
    levels = Counter(t.data["difficulty"] for t in tasks)
    console.print(f"{len(tasks)} tasks -> {target}")
    console.print(f"difficulty: {dict(sorted(levels.items()))}; dropped: {_drops(stats)}")


@app.command("verify")
def verify_cmd(
    tasks_file: Annotated[Path, typer.Argument(help="Tasks JSONL (from podium synth tasks).")],
) -> None:
    """Re-run every task's gold actions on a fresh copy of its environment."""
    import tempfile

    from podium.tools.environment import call_tool, db_hash
    from podium.training.eval.suites import toolscale as toolscale_suite
    from podium.training.synth import toolscale

    tasks = toolscale.read_tasks(tasks_file)
    bad = 0
    with tempfile.TemporaryDirectory() as tmp:
        for task in tasks:
            copy = Path(toolscale_suite.prepare(task, Path(tmp))["environment"])
            ok = all(call_tool(copy, a["tool"], a["args"]).ok for a in task.data["actions"])
            if not ok or db_hash(copy) != task.data["gold_hash"]:
                bad += 1
                console.print(
                    model_text(f"{task.id}: gold actions no longer reproduce the gold state", "red")
                )
    console.print(f"{len(tasks) - bad}/{len(tasks)} tasks verified")
    if bad:
        raise typer.Exit(1)


@app.command("all")
def all_cmd(
    n: Annotated[int, typer.Option("-n", help="Tasks to keep per domain.")] = 60,
    seed: Seed = 0,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Directory to write to.")] = None,
) -> None:
    """Build all ten environments and their tasks; print and write the summary table."""
    from podium.tools.environment import load_spec
    from podium.tools.paths import atomic_path, cache_dir
    from podium.training.synth import toolscale

    folder = out_dir or cache_dir(toolscale.SUITE)
    table = Table(
        "domain",
        "tables",
        "tools",
        "kept",
        "dropped",
        "why dropped",
        "seconds",
        title=f"ToolScale-style synthesis, seed {seed}",
        title_justify="left",
    )
    lines = [
        "| domain | tables | tools | tasks kept | dropped | why dropped | seconds |",
        "|---|---|---|---|---|---|---|",
    ]
    for domain in toolscale.DOMAINS:
        start = time.perf_counter()
        env = toolscale.build_env(domain, seed, folder / f"{domain}-seed{seed}.sqlite")
        tasks, stats = toolscale.synthesize(env, n, seed)
        toolscale.write_tasks(tasks, folder / f"{domain}-seed{seed}.tasks.jsonl")
        spec = load_spec(env)
        row = [
            domain,
            str(len(spec.tables)),
            str(len(spec.tools)),
            str(len(tasks)),
            str(sum(stats.values()) - stats["kept"]),
            _drops(stats),
            f"{time.perf_counter() - start:.1f}",
        ]
        table.add_row(*row)
        lines.append("| " + " | ".join(row) + " |")
    console.print(table)
    summary = folder / f"summary-seed{seed}.md"
    with atomic_path(summary) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    console.print(f"summary -> {summary}")
