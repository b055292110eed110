"""Rollouts for GRPO: run the graph G times per task and store every trajectory for training.

Each run is built as evaluation builds it (``training/eval/run_context.py``: turn limit,
budget, no stated preference, the task's own tools), so the policy learns on the prompts it is
judged on. With ``sample_preferences`` each task instead gets a seeded preference
(``preferences.py``), as in ToolOrchestra. A task's G runs share a group id and its preference,
sample at temperature > 0, and are stored in the trajectory store (SQLite) the graph writes
anyway, under the record key ``training``: task id, suite, group id, sample index, preference
and the checker's verdict — everything the reward needs.
"""

from __future__ import annotations

import asyncio
import tempfile
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from podium.graph import TrajectoryStore
from podium.tools.errors import UserError
from podium.training.eval import suites
from podium.training.eval.run_context import BUDGET_USD, MAX_TURNS, task_context, task_tools
from podium.training.ray_runs import RayPlan, check_address, connect, run_on_ray

from .preferences import NO_PREFERENCE, Preference, pool_localities, sample_preference
from .rewards import TRAINING_KEY


class CollectError(UserError, ValueError):
    """A user mistake in a collection or training request (one line naming the fix)."""


@dataclass
class CollectConfig:
    """What ``podium collect`` runs."""

    tasks: str = field(metadata={"help": "Task suite: math, code, … or jsonl:<file>."})
    out: str = field(metadata={"help": "SQLite trajectory store the rollouts go to."})
    group_size: int = field(default=8, metadata={"help": "Runs per task (the GRPO group)."})
    limit: int | None = field(default=None, metadata={"help": "At most this many tasks."})
    concurrency: int = field(default=2, metadata={"help": "Runs in flight at once."})
    seed: int = field(default=0, metadata={"help": "Seed of the tasks and preferences."})
    temperature: float = field(default=1.0, metadata={"help": "Policy sampling temperature."})
    policy_base_url: str = field(default="", metadata={"help": "Policy endpoint; empty = config."})
    policy_model: str = field(default="", metadata={"help": "Model name at the endpoint."})
    profile: str = field(default="local", metadata={"help": "Tool-pool profile."})
    config: str = field(default="", metadata={"help": "User config file (TOML)."})
    local_only: bool = field(default=False, metadata={"help": "Offer only local tools."})
    max_turns: int = field(default=MAX_TURNS, metadata={"help": "Policy turns per run."})
    budget_usd: float = field(default=BUDGET_USD, metadata={"help": "Dollar cap of each run."})
    sample_preferences: bool = field(
        default=False,
        metadata={"help": "A seeded preference per task (the paper's); default: none, as eval."},
    )
    ray: str | None = field(
        default=None, metadata={"help": "Ray cluster address ('local': start one); None: here."}
    )
    ray_workers: int = field(default=2, metadata={"help": "Ray workers to spread runs over."})


def training_info(
    task: suites.Task,
    group_id: str,
    index: int,
    pref: Preference,
    verdict: suites.Verdict | None,
    error: str = "",
) -> dict[str, Any]:
    """The ``training`` entry of a stored record."""
    return {
        "task_id": task.id,
        "suite": task.suite,
        "group_id": group_id,
        "sample": index,
        "preference": pref.instruction,
        "preference_kind": pref.kind,
        "preference_vector": pref.vector or None,
        "verdict": None
        if verdict is None
        else {"correct": verdict.correct, "score": verdict.score, "detail": verdict.detail},
        "checker_error": error,
    }


def finish_record(
    store: TrajectoryStore,
    trajectory_id: str,
    task: suites.Task,
    group_id: str,
    index: int,
    pref: Preference,
) -> dict[str, Any]:
    """Judge a stored run with its task's checker and store the verdict beside it."""
    record = store.get(trajectory_id)
    if record is None:
        raise RuntimeError(f"run {trajectory_id} left no record in {store.path}")
    try:
        verdict, error = suites.check(task, record["answer"], record), ""
    except suites.CheckerError as exc:
        verdict, error = None, str(exc)
    record[TRAINING_KEY] = training_info(task, group_id, index, pref, verdict, error)
    store.save(record)
    return record


def check_endpoint(base_url: str, timeout: float = 5.0) -> None:
    """Refuse a policy endpoint that does not answer ``GET /models``.

    Raises:
        CollectError: the endpoint is down or not OpenAI-compatible.
    """
    url = base_url.rstrip("/") + "/models"
    try:
        with urllib.request.urlopen(url, timeout=timeout):
            return
    except urllib.error.HTTPError as exc:
        if exc.code in (401, 403):  # up, and wants a key: the run will send it
            return
        reason = f"HTTP {exc.code}"
    except (urllib.error.URLError, OSError) as exc:
        reason = str(getattr(exc, "reason", exc))
    raise CollectError(
        f"policy endpoint {base_url} is down ({reason}): start it or fix --policy-base-url"
    )


def load_tasks(name: str, limit: int | None, seed: int) -> list[suites.Task]:
    """The tasks of a suite; an empty suite is a user error."""
    try:
        tasks = suites.load_suite(name, limit=limit, seed=seed)
    except suites.SuiteError as exc:
        raise CollectError(str(exc)) from None
    if not tasks:
        raise CollectError(f"task suite {name!r} is empty: check the file or the suite name")
    return tasks


def check_request(cfg: CollectConfig) -> list[suites.Task]:
    """The tasks of a collection request, once every setting is checked.

    Raises:
        CollectError: a setting is out of range, the output folder or the endpoint is missing,
            the suite is empty or is a conversation.
    """
    if cfg.group_size < 2:
        raise CollectError(f"--group-size must be at least 2 for GRPO, got {cfg.group_size}")
    if cfg.concurrency < 1:
        raise CollectError(f"--concurrency must be at least 1, got {cfg.concurrency}")
    out = Path(cfg.out)
    if not out.parent.is_dir():
        raise CollectError(f"folder {out.parent} does not exist: create it or fix --out")
    try:
        talks = suites.converses(cfg.tasks)
    except suites.SuiteError as exc:
        raise CollectError(str(exc)) from None
    if talks:
        raise CollectError(
            f"suite {cfg.tasks!r} is a conversation; collect runs one question per task: "
            "use another suite"
        )
    tasks = load_tasks(cfg.tasks, cfg.limit, cfg.seed)
    if cfg.policy_base_url:
        check_endpoint(cfg.policy_base_url)
    if cfg.ray is not None:
        if cfg.ray_workers < 1:
            raise CollectError(f"--ray-workers must be at least 1, got {cfg.ray_workers}")
        check_address(cfg.ray)
    return tasks


@dataclass(frozen=True)
class RunSpec:
    """One rollout: its task, preference, place in the group and fixed trajectory id.

    The id is fixed before the run starts, so a run retried after its worker died replaces
    its record instead of adding a second one.
    """

    task: suites.Task
    pref: Preference
    index: int
    group_id: str
    run_id: str


def plan_runs(cfg: CollectConfig, tasks: list[suites.Task]) -> list[RunSpec]:
    """Every run of a collection: ``cfg.group_size`` per task, each with its own id."""
    pool = pool_localities(cfg.profile, cfg.config or None, cfg.local_only)
    specs = []
    for task in tasks:
        pref = NO_PREFERENCE
        if cfg.sample_preferences:
            pref = sample_preference(task.id, pool, seed=cfg.seed)
        group_id = f"{task.id}@{cfg.seed}"
        # Fresh ids: a new collection into the same store adds runs, a retry replaces its own.
        specs += [RunSpec(task, pref, i, group_id, uuid.uuid4().hex) for i in range(cfg.group_size)]
    return specs


async def collect_run(base: dict[str, Any], spec: RunSpec) -> dict[str, Any]:
    """Run ``spec`` through the graph (context ``base``), judge it and store the verdict."""
    from podium.graph import graph

    task = spec.task
    with tempfile.TemporaryDirectory(prefix="podium-task-") as workdir, task_tools(task):
        ctx = task_context(base, task, Path(workdir), spec.pref.instruction, spec.pref.vector)
        state = await graph.ainvoke(
            {"question": task.question, "trajectory_id": spec.run_id}, context=ctx
        )
        store = TrajectoryStore(base["trajectory_db"])
        return await asyncio.to_thread(
            finish_record, store, state["trajectory_id"], task, spec.group_id, spec.index, spec.pref
        )


def _base_context(cfg: CollectConfig) -> dict[str, Any]:
    return {
        "policy_base_url": cfg.policy_base_url,
        "policy_model": cfg.policy_model,
        "profile": cfg.profile,
        "config": cfg.config,
        "local_only": cfg.local_only,
        "temperature": cfg.temperature,
        "max_turns": cfg.max_turns,
        "budget_usd": cfg.budget_usd,
        "trajectory_db": str(Path(cfg.out).resolve()),
    }


async def collect(
    cfg: CollectConfig, progress: Callable[[dict[str, Any]], None] | None = None
) -> dict[str, Any]:
    """Run every task ``cfg.group_size`` times and store the judged trajectories.

    With ``cfg.ray`` set the runs are spread over that Ray cluster (``ray_runs.py``),
    ``cfg.concurrency`` in flight on each of ``cfg.ray_workers`` workers.

    Returns:
        A summary: tasks, runs, correct runs, errors and the store's path.
    """
    tasks = check_request(cfg)
    out = Path(cfg.out)
    TrajectoryStore(out)  # created (WAL, schema) once, before any worker opens it
    base = _base_context(cfg)
    specs = plan_runs(cfg, tasks)
    summary = {"tasks": len(tasks), "runs": 0, "correct": 0, "errors": 0, "store": str(out)}

    def tally(record: dict[str, Any]) -> None:
        verdict = record[TRAINING_KEY]["verdict"]
        summary["runs"] += 1
        summary["correct"] += bool(verdict and verdict["correct"])
        summary["errors"] += record["stopped_by"] == "error"
        if progress is not None:
            progress(record)

    if cfg.ray is not None:
        plan = RayPlan(cfg.ray, cfg.ray_workers, cfg.concurrency)
        connect(plan)  # in the main thread, where Ray installs its signal handlers
        jobs = [(base, spec) for spec in specs]
        await asyncio.to_thread(run_on_ray, collect_run, jobs, plan, tally)
        return summary
    gate = asyncio.Semaphore(cfg.concurrency)

    async def one(spec: RunSpec) -> None:
        async with gate:
            record = await collect_run(base, spec)
        tally(record)

    await asyncio.gather(*(one(spec) for spec in specs))
    return summary


def stored_groups(store: TrajectoryStore) -> dict[str, list[dict[str, Any]]]:
    """Collected trajectories by group id, each group in sample order."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in store.records(TRAINING_KEY):
        groups.setdefault(record[TRAINING_KEY]["group_id"], []).append(record)
    for members in groups.values():
        members.sort(key=lambda r: r[TRAINING_KEY]["sample"])
    return groups
