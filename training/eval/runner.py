"""The evaluation runner: a suite's tasks through the graph under each router, checked and summed.

Per (router, task) one row is appended to ``results.jsonl`` as soon as it is known, so a killed
run loses at most the tasks in flight and ``resume=True`` redoes nothing that finished.
``summary.json`` is computed from that file alone (:func:`summarize`) and written atomically.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
import uuid
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextvars import copy_context
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from langchain_core.language_models import BaseChatModel
from langchain_core.tools import BaseTool

from podium.graph.context import Context
from podium.graph.resources import policy_override, resolve, resolve_tools
from podium.graph.trajectory import TrajectoryStore
from podium.tools.errors import UserError
from podium.tools.paths import atomic_path
from podium.tools.price_shock import PriceShock, price_shock

from . import suites
from .metrics import summarize
from .routers import ROUTERS, DirectRouter, RouterError, router_for
from .run_context import spread, task_context, task_tools

RESULTS = "results.jsonl"
SUMMARY = "summary.json"


class EvalError(UserError, ValueError):
    """A user mistake in an evaluation request (output dir in use, bad router, …)."""


@dataclass
class EvalConfig:
    """One evaluation request."""

    suite: str
    out: Path
    routers: list[str] = field(default_factory=lambda: ["policy"])
    limit: int | None = None
    seed: int = 0
    concurrency: int = 1
    resume: bool = False
    retry_errors: bool = False  # with resume: run the tasks whose rows are errors again
    prefer: list[str] = field(default_factory=list)  # preferred tools; compliance is measured
    oracle_tools: list[str] = field(default_factory=list)  # forced first by the oracle; [] = all
    context: dict[str, Any] = field(default_factory=dict)  # Context overrides for every run
    progress: bool = True
    shock: PriceShock | None = None  # evaluate under another price table (--prices)
    ray: str | None = None  # a Ray cluster address ("local": start one) to spread runs over
    ray_workers: int = 2


def preference_of(prefer: list[str]) -> tuple[str, dict[str, float] | None]:
    """The preference text and vector for a list of preferred tools."""
    if not prefer:
        return "", None
    return f"Prefer these tools: {', '.join(prefer)}; avoid the others.", dict.fromkeys(prefer, 1.0)


def _tool_calls(ledger: list[dict[str, Any]]) -> list[str]:
    return [e["name"] for e in ledger if e["kind"] == "tool"]


def run_task(
    task: suites.Task, cfg: EvalConfig, model: BaseChatModel | None, workdir: Path
) -> dict[str, Any]:
    """Run ``task`` through the graph (``model`` overriding the policy) and check it.

    A conversation task (tau2) is one graph run per customer message on one thread; its row
    sums the runs and carries the transcript, which is what its checker scores.
    """
    from podium.graph.graph import graph

    text, vector = preference_of(cfg.prefer)
    row: dict[str, Any] = {"task_id": task.id, "question": task.question, "gold": task.gold}
    start = time.perf_counter()
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        ctx = task_context(cfg.context, task, workdir, text, vector)
        dialogue = suites.dialogue(task)
        with contextlib.ExitStack() as stack:
            if model is not None:
                stack.enter_context(policy_override(model))
            stack.enter_context(task_tools(task, dialogue))
            if dialogue is None:
                inputs = {"question": task.question, "trajectory_id": run_id(workdir)}
                states = [graph.invoke(inputs, context=ctx)]
            else:
                states = converse(dialogue, ctx)
    except Exception as exc:  # a run that crashed is an error row, not a crash of the eval
        return row | _error(f"run failed: {type(exc).__name__}: {exc}", time.perf_counter() - start)
    state = states[-1] if states else {}
    ledger = state.get("ledger", [])  # a thread's ledger holds every run on it
    calls = _tool_calls(ledger)
    row |= {
        "answer": state.get("answer", ""),
        "cost_usd": sum(e["cost_usd"] for e in ledger),
        "policy_cost_usd": sum(e["cost_usd"] for e in ledger if e["kind"] == "policy"),
        "tool_cost_usd": sum(e["cost_usd"] for e in ledger if e["kind"] == "tool"),
        "malformed_calls": state.get("malformed_calls", 0),
        "latency_s": sum(s.get("latency_s") or 0.0 for s in states) or time.perf_counter() - start,
        "tool_calls": calls,
        "tool_errors": sum(e["kind"] == "tool" and not e["ok"] for e in ledger),
        "turns": state.get("turns", 0),
        "stopped_by": state.get("stopped_by"),
        "trajectory_id": state.get("trajectory_id", ""),
        "preferred_calls": sum(c in cfg.prefer for c in calls) if cfg.prefer else None,
    }
    if dialogue is not None:
        record: dict[str, Any] | None = dialogue.record()
        row |= {"trajectory_ids": [s.get("trajectory_id", "") for s in states], **record}
    else:
        record = TrajectoryStore(ctx.trajectory_db or None).get(row["trajectory_id"])
    try:
        verdict = suites.check(task, row["answer"], record)
    except suites.CheckerError as exc:
        return row | {"status": "error", "correct": False, "score": 0.0, "detail": str(exc)}
    # A run that an error ended (endpoint down, timeouts) is counted apart from wrong answers.
    status = "error" if row["stopped_by"] == "error" else "ok"
    return row | {"status": status, **asdict(verdict)}


def run_id(workdir: Path) -> str:
    """The trajectory id of the run in ``workdir``: one per (out, router, task[, tool]).

    Fixed before the run, so a run retried after its Ray worker died, or redone by
    ``--retry-errors``, replaces its trajectory instead of adding one.
    """
    return uuid.uuid5(uuid.NAMESPACE_URL, str(workdir.resolve())).hex


def converse(dialogue: suites.Dialogue, ctx: Context) -> list[dict[str, Any]]:
    """Ask the graph each question of ``dialogue`` on one thread; the state after each run.

    Each question after the first is a follow-up on the finished thread: the conversation and
    ledger are kept, the budget and turn limit are per run (see ``graph/policy.py``).
    """
    from langgraph.checkpoint.memory import InMemorySaver

    from podium.graph.graph import build_graph

    app = build_graph().compile(checkpointer=InMemorySaver(), name="podium")
    thread = {"configurable": {"thread_id": uuid.uuid4().hex}}
    states: list[dict[str, Any]] = []
    question = dialogue.opening()
    while question is not None:
        state = app.invoke({"question": question}, thread, context=ctx)
        states.append(state)
        if state.get("stopped_by") == "error":
            dialogue.end("agent_error")
            break
        question = dialogue.reply(state.get("answer", ""))
    return states


def _error(detail: str, seconds: float) -> dict[str, Any]:
    return {
        "status": "error", "correct": False, "score": 0.0, "detail": detail[:500], "answer": "",
        "cost_usd": 0.0, "latency_s": seconds, "tool_calls": [], "tool_errors": 0, "turns": 0,
        "stopped_by": "error", "trajectory_id": "", "preferred_calls": None,
    }  # fmt: skip


def run_oracle(
    task: suites.Task, cfg: EvalConfig, tools: dict[str, BaseTool], workdir: Path
) -> dict:
    """The best of the explore runs of ``task``: each tool forced first, the policy finishing.

    One policy run per pool tool (and one answering at once), the first call's name forced
    (``Context.first_tool``); the cheapest correct run is kept, so this is an upper bound that
    a router choosing the first tool can actually reach. When none is correct the cheapest
    finished run is kept (incorrect). ``oracle_runs`` lists every forced tool's outcome.
    """
    from podium.graph.render import ANSWER

    runs = {}
    for name in cfg.oracle_tools or [*sorted(tools), ANSWER]:
        forced = replace(cfg, context={**cfg.context, "first_tool": name})
        runs[name] = run_task(task, forced, None, workdir / name)
    solved = [r for r in runs.values() if r["correct"]]
    pool = solved or [r for r in runs.values() if r["status"] == "ok"] or list(runs.values())
    best = min(pool, key=lambda r: r["cost_usd"])
    chosen = next(n for n, r in runs.items() if r is best)
    summary = {n: {"correct": r["correct"], "cost_usd": r["cost_usd"]} for n, r in runs.items()}
    return best | {"oracle_tool": chosen, "oracle_runs": summary}


class _Results:
    """``results.jsonl``: rows appended under a lock and flushed to disk one by one."""

    def __init__(self, path: Path) -> None:
        self.path, self.lock = path, threading.Lock()

    def read(self) -> list[dict[str, Any]]:
        """The complete rows; a torn last line from a killed run is dropped (and rewritten)."""
        if not self.path.exists():
            return []
        rows, torn = [], False
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                torn = True
        if torn:
            self.write(rows)
        return rows

    def write(self, rows: list[dict[str, Any]]) -> None:
        """Replace the file atomically."""
        with atomic_path(self.path) as tmp:
            tmp.write_text("".join(json.dumps(r, default=str) + "\n" for r in rows))

    def append(self, row: dict[str, Any]) -> None:
        """Append one row durably."""
        with self.lock, self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(row, default=str) + "\n")
            f.flush()
            os.fsync(f.fileno())


def _check_request(cfg: EvalConfig, done: list[dict[str, Any]]) -> None:
    bad = [r for r in cfg.routers if r not in ROUTERS]
    if bad:
        raise EvalError(f"unknown router {bad[0]!r}: use one of {', '.join(ROUTERS)}")
    if cfg.concurrency < 1:
        raise EvalError(f"--concurrency must be at least 1, got {cfg.concurrency}")
    if cfg.ray is not None:
        from .ray_runs import check_address

        if cfg.ray_workers < 1:
            raise EvalError(f"--ray-workers must be at least 1, got {cfg.ray_workers}")
        check_address(cfg.ray)
    if done and not cfg.resume:
        raise EvalError(
            f"{cfg.out / RESULTS} exists: pass --resume to continue it, or another --out"
        )
    other = {(r.get("suite"), r.get("seed")) for r in done} - {(cfg.suite, cfg.seed)}
    if other:
        suite, seed = other.pop()
        raise EvalError(
            f"{cfg.out} holds results of suite {suite!r} seed {seed}: use another --out to run "
            f"{cfg.suite!r} seed {cfg.seed}"
        )


@contextlib.contextmanager
def _progress(total: int, enabled: bool) -> Iterator[Callable[[], None]]:
    if not enabled:
        yield lambda: None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn

    columns = ("[progress.description]{task.description}", BarColumn(), MofNCompleteColumn())
    with Progress(*columns, TimeElapsedColumn()) as bar:
        job = bar.add_task("evaluating", total=total)
        yield lambda: bar.advance(job)


def pending_units(
    cfg: EvalConfig, tasks: list[suites.Task], done: list[dict[str, Any]]
) -> list[tuple[str, suites.Task]]:
    """The (router, task) pairs still to run."""
    finished = {(r["router"], r["task_id"]) for r in done}
    return [(r, t) for r in cfg.routers for t in tasks if (r, t.id) not in finished]


def run_unit(
    router: str, task: suites.Task, cfg: EvalConfig, tools: dict[str, BaseTool]
) -> dict[str, Any]:
    """One (router, task) row, labelled with the suite, seed and router."""
    with price_shock(cfg.shock):  # set in this worker thread: graph runs inherit it
        return _run_unit(router, task, cfg, tools)


def _run_unit(
    router: str, task: suites.Task, cfg: EvalConfig, tools: dict[str, BaseTool]
) -> dict[str, Any]:
    workdir = cfg.out / "work" / router / task.id
    if router == "oracle":
        row = run_oracle(task, cfg, tools, workdir)
    else:
        seed = zlib.crc32(f"{cfg.seed}:{task.id}".encode())
        if router == "direct":  # the policy's own endpoint, resolved before the override
            model: BaseChatModel | None = DirectRouter(
                model=resolve(Context(**cfg.context)).chat_model()
            )
        else:
            model = None if router == "policy" else router_for(router, tools, seed=seed)
        row = run_task(task, cfg, model, workdir)
    return {"suite": cfg.suite, "seed": cfg.seed, "router": router, **row}


def _check_prefer(cfg: EvalConfig, tools: dict[str, BaseTool]) -> None:
    if not cfg.prefer:
        return
    if suites.brings_tools(cfg.suite):
        raise EvalError(
            f"--prefer names tools of the pool, but suite {cfg.suite!r} brings its own: drop it"
        )
    unknown = [p for p in cfg.prefer if p not in tools]
    if unknown:
        raise EvalError(
            f"--prefer {unknown[0]!r} is not a tool of the pool: use one of {', '.join(tools)}"
        )


def _check_shock(cfg: EvalConfig, tools: dict[str, BaseTool]) -> None:
    if cfg.shock is None:
        return
    unknown = sorted(set(cfg.shock.scale) - set(tools))
    if unknown:
        raise EvalError(
            f"price file {cfg.shock.source} scales unknown tool {unknown[0]!r}: "
            f"use tools of the pool ({', '.join(sorted(tools))})"
        )


@dataclass
class Plan:
    """What an evaluation will do, checked before any task runs."""

    tasks: list[suites.Task]
    tools: dict[str, BaseTool]
    todo: list[tuple[str, suites.Task]]
    results: _Results


def plan_eval(cfg: EvalConfig) -> Plan:
    """Check ``cfg`` and list the (router, task) pairs to run; user mistakes raise here."""
    results = _Results(cfg.out / RESULTS)
    done = results.read()
    if cfg.retry_errors and not cfg.resume:
        raise EvalError("--retry-errors continues an evaluation: add --resume")
    _check_request(cfg, done)
    tasks = suites.load_suite(cfg.suite, limit=cfg.limit, seed=cfg.seed)
    fixed = [r for r in cfg.routers if r != "policy"]
    if fixed and suites.converses(cfg.suite):
        raise EvalError(
            f"router {fixed[0]!r} cannot hold a {cfg.suite} conversation (its tools are the "
            "domain's): use --router policy"
        )
    with price_shock(cfg.shock):  # a shock may reorder the experts strongest/cheapest pick
        tools = resolve_tools(Context(**spread(cfg.context, 0)))
    _check_prefer(cfg, tools)
    _check_shock(cfg, tools)
    for name in cfg.routers:
        if name not in ("policy", "direct", "oracle"):
            router_for(name, tools)  # fail now, not per task
    if "oracle" in cfg.routers and not tools:
        raise RouterError("router 'oracle' needs at least one tool in the pool")
    unknown = [t for t in cfg.oracle_tools if t not in tools and t != "answer"]
    if unknown:
        raise EvalError(f"--oracle-tool {unknown[0]!r} is not a tool of the pool: use one of "
                        f"{', '.join([*tools, 'answer'])}")  # fmt: skip
    cfg.out.mkdir(parents=True, exist_ok=True)
    if cfg.retry_errors and any(r["status"] == "error" for r in done):
        done = [r for r in done if r["status"] != "error"]
        results.write(done)  # atomic: a failure now still leaves every good row
    return Plan(tasks, tools, pending_units(cfg, tasks, done), results)


def evaluate(cfg: EvalConfig) -> dict[str, Any]:
    """Run the evaluation ``cfg`` describes and write ``results.jsonl`` and ``summary.json``.

    Raises:
        EvalError, SuiteError, RouterError, ConfigError, ContextError: user mistakes, found
            before any task runs.
    """
    plan = plan_eval(cfg)
    tasks, tools, todo, results = plan.tasks, plan.tools, plan.todo, plan.results
    if cfg.ray is not None:
        _evaluate_on_ray(cfg, todo, results)
        return write_summary(cfg, tasks)
    with _progress(len(todo), cfg.progress) as advance, ThreadPoolExecutor(cfg.concurrency) as ex:
        # Each unit runs in a copy of this context: a caller's policy/tools override holds there;
        # a list of policy endpoints is spread over the units.
        futures = [
            ex.submit(
                copy_context().run,
                run_unit, r, t, replace(cfg, context=spread(cfg.context, n)), tools,
            )
            for n, (r, t) in enumerate(todo)
        ]  # fmt: skip
        for future in as_completed(futures):
            results.append(future.result())
            advance()
    return write_summary(cfg, tasks)


def run_unit_resolved(router: str, task: suites.Task, cfg: EvalConfig) -> dict[str, Any]:
    """:func:`run_unit` with the pool resolved where it runs (a Ray worker builds its own)."""
    with price_shock(cfg.shock):  # as plan_eval resolves it: a shock may reorder experts
        tools = resolve_tools(Context(**cfg.context))
    return run_unit(router, task, cfg, tools)


def _evaluate_on_ray(
    cfg: EvalConfig, todo: list[tuple[str, suites.Task]], results: _Results
) -> None:
    """Run ``todo`` on Ray workers; the driver alone appends rows, once per unit."""
    from .ray_runs import RayPlan, connect, run_on_ray

    plan = RayPlan(cfg.ray or "local", cfg.ray_workers, cfg.concurrency)
    connect(plan)  # an unreachable cluster fails here, before any task runs
    remote = replace(cfg, out=cfg.out.resolve(), progress=False)
    jobs = [
        (r, t, replace(remote, context=spread(cfg.context, n))) for n, (r, t) in enumerate(todo)
    ]
    with _progress(len(todo), cfg.progress) as advance:

        def store(row: dict[str, Any]) -> None:
            results.append(row)
            advance()

        run_on_ray(run_unit_resolved, jobs, plan, store)


def write_summary(cfg: EvalConfig, tasks: list[suites.Task]) -> dict[str, Any]:
    """Summarise ``results.jsonl`` (rows of this run's tasks) into ``summary.json``."""
    ids = {t.id for t in tasks}
    rows = [r for r in _Results(cfg.out / RESULTS).read() if r["task_id"] in ids]
    summary = {
        "suite": cfg.suite,
        "seed": cfg.seed,
        "limit": cfg.limit,
        "tasks": len(tasks),
        "prefer": cfg.prefer,
        "routers": summarize(rows, cfg.routers),
    }
    with atomic_path(cfg.out / SUMMARY) as tmp:
        tmp.write_text(json.dumps(summary, indent=2) + "\n")
    return summary
