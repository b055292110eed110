"""The ``podium`` command line: run a question, list the tool pool, prepare the embedded models."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    help="podium: a small policy model orchestrates priced tools and LLMs (LangGraph).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
server_app = typer.Typer(help="The embedded llama.cpp server.", no_args_is_help=True)
app.add_typer(server_app, name="server")
out = Console()

ProfileOpt = Annotated[str, typer.Option("--profile", "-p", help="Tool-pool profile.")]
ConfigOpt = Annotated[str, typer.Option("--config", "-c", help="User config file (TOML).")]
LocalOpt = Annotated[bool, typer.Option("--local-only", help="Offer only local tools.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


# Click's base error class, whether typer vendors Click (typer._click, newer typer) or not.
_CLICK_ERROR = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


class UsageError(ValueError):
    """A mistake in the command line; one line, exit code 2."""


def _user_errors() -> tuple[type[Exception], ...]:
    """Exceptions that mean the user must fix something: printed as one line, exit code 2."""
    from podium.graph import ContextError
    from podium.tools import ConfigError
    from podium.tools.adapters import AdapterError
    from podium.tools.llamacpp import ServerError
    from podium.tools.model_files import ModelFilesError
    from podium.tools.retrieval import RetrievalError

    from .durable import ThreadError
    from .eval_cmd import user_errors as _eval_errors
    from .serve import ServeError
    from .synth_cmd import user_errors as _synth_errors
    from .train_cmd import user_errors as _train_errors

    return (
        *_eval_errors(),
        *_train_errors(),
        *_synth_errors(),
        UsageError,
        AdapterError,
        ConfigError,
        ContextError,
        ModelFilesError,
        ServerError,
        RetrievalError,
        ServeError,
        ThreadError,
    )


def run_result(state: dict[str, Any]) -> dict[str, Any]:
    """The ``--json`` object of a finished run."""
    from podium.graph.state import spent

    ledger = state.get("ledger", [])
    policy_cost = sum(e["cost_usd"] for e in ledger if e["kind"] == "policy")
    return {
        "answer": state.get("answer", ""),
        "cost_usd": spent(ledger),
        "policy_cost_usd": policy_cost,
        "latency_s": state.get("latency_s", 0.0),
        "turns": state.get("turns", 0),
        "stopped_by": state.get("stopped_by") or "error",
        "trajectory_id": state.get("trajectory_id", ""),
        "tool_calls": [
            {"tool": e["name"], "cost_usd": e["cost_usd"], "latency_s": e["seconds"], "ok": e["ok"]}
            for e in ledger
            if e["kind"] == "tool"
        ],
    }


async def _run(
    thread_id: str, question: str, ctx: Any, decision: str | None, on_step: Any
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Run (or resume) ``thread_id`` to its end or its next approval pause."""
    from podium.studio.durable import checkpoint_db, durable_graph, next_step, pending_approval

    path = checkpoint_db()
    async with durable_graph(path) as graph:
        step = await next_step(graph, path, thread_id, question, ctx, decision)
        config = {"configurable": {"thread_id": thread_id}}
        async for chunk in graph.astream(
            step.input, config, context=step.context, stream_mode="updates"
        ):
            on_step(chunk)
        snapshot = await graph.aget_state(config)
        return dict(snapshot.values), pending_approval(snapshot)


def _describe_step(chunk: dict[str, Any]) -> str:
    node, update = next(iter(chunk.items()))
    if node == "__interrupt__":
        return "waiting for approval"
    update = update or {}
    if node == "policy":
        msgs = update.get("messages") or []
        calls = [c["name"] for m in msgs for c in getattr(m, "tool_calls", [])]
        turn = update.get("turns", "?")
        return f"turn {turn}: calling {', '.join(calls)}" if calls else f"turn {turn}: answering"
    if node == "tools":
        return "reading tool results"
    return "saving the trajectory"


PAUSED = 3
"""Exit code of a run paused for a person's approval (resume it with --approve or --reject)."""


@app.command()
def run(
    question: Annotated[str, typer.Argument(help="The question; omit to resume --thread.")] = "",
    preference: Annotated[str, typer.Option(help="Tool preference, e.g. 'save money'.")] = "",
    budget_usd: Annotated[float, typer.Option(help="Hard cap on dollars spent.")] = 1.0,
    max_turns: Annotated[int, typer.Option(help="Policy turns before a forced answer.")] = 50,
    thread: Annotated[
        str,
        typer.Option(help="Thread to resume (no question) or to follow up."),
    ] = "",
    approve_above_usd: Annotated[
        float, typer.Option(help="Ask before a tool call predicted to cost more (negative: never).")
    ] = -1.0,
    approve: Annotated[
        bool | None, typer.Option("--approve/--reject", help="Answer the approval a thread awaits.")
    ] = None,
    local_only: LocalOpt = False,
    json_out: JsonOpt = False,
    profile: ProfileOpt = "local",
    config: ConfigOpt = "",
) -> None:
    """Answer QUESTION with the orchestrator and account for every dollar and second.

    Every run is checkpointed on a thread: a run killed mid-way resumes from its last step with
    'podium run --thread ID', and a finished thread takes follow-up questions.
    """
    from podium.graph import Context
    from podium.graph.context import check_length
    from podium.studio.durable import new_thread_id
    from podium.tools import load_pool

    if not question.strip() and not thread:
        raise UsageError("the question is empty: pass the question as the first argument")
    check_length("the question", question, "shorten it")
    ctx = Context(
        profile=profile,
        config=config,
        preference=preference,
        budget_usd=budget_usd,
        max_turns=max_turns,
        local_only=local_only,
        approve_above_usd=approve_above_usd,
    )
    load_pool(profile, config=config or None, local_only=local_only)  # config errors first
    thread_id = thread or new_thread_id()
    decision = None if approve is None else ("approve" if approve else "reject")
    while True:
        if json_out:
            state, waiting = asyncio.run(
                _run(thread_id, question.strip(), ctx, decision, lambda _: None)
            )
        else:
            with out.status("starting…") as status:
                state, waiting = asyncio.run(
                    _run(
                        thread_id,
                        question.strip(),
                        ctx,
                        decision,
                        lambda c: status.update(_describe_step(c)),
                    )
                )
        if waiting is None or json_out or not sys.stdin.isatty():
            break
        question, decision = "", _ask(waiting)  # a person at the terminal answers now
    result = run_result(state) | {"thread_id": thread_id, "pending_approval": waiting}
    if json_out:
        print(json.dumps(result))
    elif waiting is None:
        _print_run(result)
    if waiting is not None:
        if not json_out:
            print(
                f"podium: paused: {waiting['tool']} ({waiting['args']}) is predicted to cost "
                f"${waiting['predicted_cost_usd']:.6f}: resume with "
                f"'podium run --thread {thread_id} --approve' or '--reject'",
                file=sys.stderr,
            )
        raise typer.Exit(PAUSED)
    if (state.get("stopped_by") or "error") == "error":
        raise typer.Exit(1)


def _ask(waiting: dict[str, Any]) -> str:
    """Ask the person at the terminal about a pending call."""
    out.print(
        f"[bold]{waiting['question']}[/bold]\n  {waiting['tool']}({json.dumps(waiting['args'])})"
    )
    return "approve" if typer.confirm("Run it?", default=False) else "reject"


def _print_run(result: dict[str, Any]) -> None:
    out.print(f"[bold]Answer:[/bold] {result['answer'] or '(none)'}")
    table = Table("tool", "ok", "cost $", "seconds", title="Tool calls", title_justify="left")
    for call in result["tool_calls"]:
        table.add_row(
            call["tool"],
            "yes" if call["ok"] else "no",
            f"{call['cost_usd']:.6f}",
            f"{call['latency_s']:.2f}",
        )
    if result["tool_calls"]:
        out.print(table)
    out.print(
        f"cost ${result['cost_usd']:.6f} (policy ${result['policy_cost_usd']:.6f}) · "
        f"{result['latency_s']:.1f}s · {result['turns']} turns · stopped by {result['stopped_by']}"
        f" · trajectory {result['trajectory_id']} · thread {result['thread_id']}"
    )


@app.command()
def tools(
    json_out: JsonOpt = False,
    profile: ProfileOpt = "local",
    config: ConfigOpt = "",
    local_only: LocalOpt = False,
) -> None:
    """List the active tool pool with its cost metadata, and the policy's adapter."""
    from podium.tools import cost_of, load_config, pool_entries
    from podium.tools.adapters import active_adapter

    entries = pool_entries(profile, config=config or None, local_only=local_only)
    adapter = active_adapter(load_config(config or None))
    rows = [
        {
            "name": e.name,
            "available": e.tool is not None,
            "reason": e.reason,
            **(cost_of(e.tool).model_dump() if e.tool is not None else {}),
        }
        for e in entries
    ]
    if json_out:
        print(json.dumps({"profile": profile, "tools": rows, "adapter": adapter}, indent=2))
        return
    table = Table(
        "tool",
        "where",
        "price",
        "latency",
        "capability / why absent",
        title=f"profile {profile}",
        title_justify="left",
    )
    for e in entries:
        if e.tool is None:
            table.add_row(e.name, "-", "-", "-", f"[dim]unavailable: {e.reason}[/dim]")
        else:
            c = cost_of(e.tool)
            table.add_row(
                e.name,
                c.locality,
                c.price_text(),
                f"~{c.expected_latency_s:g}s",
                c.capability,
            )
    out.print(table)
    if adapter is not None:
        out.print(f"policy adapter: {adapter['path']} (sha256 {adapter['sha256']})")
    else:
        out.print("policy adapter: none (the base model)")


@app.command()
def setup(
    index: Annotated[bool, typer.Option(help="Also build the Wikipedia index.")] = True,
) -> None:
    """Assemble and verify the packaged models (and build the search index) once."""
    from podium.tools.model_files import PACKAGED_MODELS

    for model in PACKAGED_MODELS.values():
        if model.installed():
            out.print(f"{model.alias}: {model.title} -> {model.path()}")
        elif model.optional:
            out.print(f"{model.alias}: {model.title} not installed (optional)")
        else:
            model.path()  # raises ModelFilesError with the fix
    if index:
        from podium.tools.retrieval import WikiIndex

        with out.status("building the Wikipedia index (once, a few minutes)…") as status:
            wiki = WikiIndex.load_or_build(
                progress=lambda done, total: status.update(f"embedding {done}/{total} passages")
            )
        out.print(f"local_search: {len(wiki)} passages indexed")


def _embedded_servers() -> list[Any]:
    """The plain embedded server and, when the config sets ``[policy] adapter``, the adapted one."""
    from podium.tools import load_config
    from podium.tools.llamacpp import EmbeddedServer

    adapter = load_config().policy.adapter
    servers = [EmbeddedServer()]
    if adapter and Path(adapter).is_file():  # a missing adapter file has no server to stop
        servers.append(EmbeddedServer(adapter=adapter))
    return servers


@server_app.command("status")
def server_status() -> None:
    """Show the embedded server (the adapted one when [policy] adapter is set), if running."""
    print(json.dumps(_embedded_servers()[-1].status()))


@server_app.command("stop")
def server_stop() -> None:
    """Stop the embedded server (and the adapted one when [policy] adapter is set)."""
    stopped = [server.stop() for server in _embedded_servers()]
    out.print("stopped" if any(stopped) else "no embedded server was running")


def _usage_error(exc: Exception) -> int:
    """Print a Click error (bad flag, value or subcommand) as one line; return its exit code.

    Click's own report is a usage line, a hint and a boxed message; podium's rule is one line
    naming the problem and the fix. ``podium`` alone still prints the help (exit code 2).
    """
    message = " ".join(exc.format_message().split())
    if type(exc).__name__ == "NoArgsIsHelpError":  # rich help is printed already
        if message:
            print(exc.format_message())
        return 2
    ctx = getattr(exc, "ctx", None)
    fix = f": see '{ctx.command_path} --help'" if ctx is not None else ""
    print(f"podium: error: {message.rstrip('.')}{fix}", file=sys.stderr)
    return int(getattr(exc, "exit_code", 2))


def main() -> None:
    """Entry point: user mistakes become one line on stderr and exit code 2."""
    try:
        code = app(standalone_mode=False)  # Click errors reach us instead of its usage box
    except _CLICK_ERROR as exc:
        sys.exit(_usage_error(exc))
    except typer.Abort:
        print("podium: aborted", file=sys.stderr)
        sys.exit(1)
    except _user_errors() as exc:
        print(f"podium: error: {exc}", file=sys.stderr)  # one line: no rich wrapping
        sys.exit(2)
    sys.exit(code if isinstance(code, int) else 0)  # typer.Exit(n) and --help return n


from .serve import register as _register_serve  # noqa: E402

_register_serve(app)

from .devserver import register as _register_studio  # noqa: E402

_register_studio(app)

from .eval_cmd import register as _register_eval  # noqa: E402

_register_eval(app)

from .train_cmd import register as _register_train  # noqa: E402

_register_train(app)

from .synth_cmd import register as _register_synth  # noqa: E402

_register_synth(app)


if __name__ == "__main__":
    main()
