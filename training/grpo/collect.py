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
import contextlib
import tempfile
import urllib.error
import urllib.request
import uuid
import zlib
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from podium.graph import Context, TrajectoryStore
from podium.graph.database import check_reachable, is_postgres
from podium.graph.resources import policy_override, resolve_tools
from podium.tools.config import load_config
from podium.tools.errors import UserError
from podium.tools.price_shock import PriceShock, jittered, price_shock
from podium.training.eval import suites
from podium.training.eval.ray_runs import RayPlan, check_address, connect, run_on_ray
from podium.training.eval.routers import CHAINED, router_for
from podium.training.eval.run_context import (
    BUDGET_USD,
    MAX_TURNS,
    policy_endpoints,
    spread,
    task_context,
    task_tools,
)

from .preferences import NO_PREFERENCE, Preference, pool_localities, sample_preference
from .rewards import ROUTER_MODEL, TRAINING_KEY

DEMONSTRATORS = ("strongest", "cheapest", "random")
"""Fixed routers (``eval/routers.py``) that can drive collection runs in the policy's place."""


def router_model(router: str) -> str:
    """The ``policy_model`` a router's runs are stored under: never the policy's own name."""
    return f"{ROUTER_MODEL}{router}"


class CollectError(UserError, ValueError):
    """A user mistake in a collection or training request (one line naming the fix)."""


@dataclass
class CollectConfig:
    """What ``podium collect`` runs."""

    tasks: str = field(metadata={"help": "Task suite: math, code, … or jsonl:<file>."})
    out: str = field(
        metadata={"help": "Store the rollouts go to: SQLite file or postgresql:// URL."}
    )
    group_size: int = field(default=8, metadata={"help": "Runs per task (the GRPO group)."})
    limit: int | None = field(default=None, metadata={"help": "At most this many tasks."})
    concurrency: int = field(default=2, metadata={"help": "Runs in flight at once."})
    seed: int = field(default=0, metadata={"help": "Seed of the tasks and preferences."})
    temperature: float = field(default=1.0, metadata={"help": "Policy sampling temperature."})
    policy_base_url: str = field(
        default="",
        metadata={
            "help": "Policy endpoint(s), comma-separated: runs go round-robin; empty = config."
        },
    )
    policy_model: str = field(default="", metadata={"help": "Model name at the endpoint."})
    profile: str = field(default="local", metadata={"help": "Tool-pool profile."})
    config: str = field(default="", metadata={"help": "User config file (TOML)."})
    local_only: bool = field(default=False, metadata={"help": "Offer only local tools."})
    max_turns: int = field(default=MAX_TURNS, metadata={"help": "Policy turns per run."})
    budget_usd: float = field(default=BUDGET_USD, metadata={"help": "Dollar cap of each run."})
    price_jitter: float = field(
        default=0.0,
        metadata={"help": "Each tool's prices times a random factor in [1/(1+j), 1+j] per run."},
    )
    sample_preferences: bool = field(
        default=False,
        metadata={"help": "A seeded preference per task (the paper's); default: none, as eval."},
    )
    explore: bool = field(
        default=False,
        metadata={
            "help": "One run per pool tool (and one answering at once), that tool forced as "
            "the first call's name; replaces the sampled group."
        },
    )
    explore_tools: list[str] = field(
        default_factory=list,
        metadata={"help": "With explore: force only these (pool tools or 'answer'); empty = all."},
    )
    explore_samples: int = field(
        default=1,
        metadata={
            "help": "With explore: sampled runs per forced tool (a 0.5B policy writes a usable "
            "query or program in some samples, not in every one)."
        },
    )
    router: str = field(
        default="",
        metadata={
            "help": "Drive the runs with this fixed router (strongest, cheapest, random) "
            "instead of the policy: demonstrations for RFT, stored as model 'router:NAME'."
        },
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
    first_tool: str = "",
) -> dict[str, Any]:
    """The ``training`` entry of a stored record (``first_tool``: the explored tool, if any)."""
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
        "explore_tool": first_tool or None,
    }


def explore_tools(pool: Mapping[str, Any], only: list[str] | None = None) -> list[str]:
    """What an exploring collection forces first: every pool tool, then ``answer`` at once.

    The untrained policy almost never tries some tools (``local_search`` ~3% of first calls),
    so sampling alone never finds the run that wins; one forced run per tool does. ``only``
    keeps some of them (a CPU cannot afford every expert on every task).

    Raises:
        CollectError: ``only`` names a tool the pool does not offer.
    """
    from podium.graph.render import ANSWER

    every = [*sorted(pool), ANSWER]
    unknown = [t for t in only or [] if t not in every]
    if unknown:
        raise CollectError(
            f"--explore-tool {unknown[0]!r} is not offered: use one of {', '.join(every)}"
        )
    return [t for t in every if t in only] if only else every


def finish_record(
    store: TrajectoryStore,
    trajectory_id: str,
    task: suites.Task,
    group_id: str,
    index: int,
    pref: Preference,
    first_tool: str = "",
) -> dict[str, Any]:
    """Judge a stored run with its task's checker and store the verdict beside it."""
    record = store.get(trajectory_id)
    if record is None:
        raise RuntimeError(f"run {trajectory_id} left no record in {store.location}")
    try:
        verdict, error = suites.check(task, record["answer"], record), ""
    except suites.CheckerError as exc:
        verdict, error = None, str(exc)
    record[TRAINING_KEY] = training_info(task, group_id, index, pref, verdict, error, first_tool)
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
    if cfg.router:
        _, chained, last = cfg.router.rpartition("+")
        if (last not in CHAINED) if chained else (cfg.router not in DEMONSTRATORS):
            raise CollectError(
                f"--router {cfg.router!r} cannot drive a run: use one of {', '.join(DEMONSTRATORS)}"
                " or TOOL+strongest"
            )
        if cfg.explore:
            raise CollectError("--router and --explore exclude each other: a router picks its tool")
        if cfg.group_size < 1:
            raise CollectError(f"--group-size must be at least 1, got {cfg.group_size}")
    elif cfg.group_size < 2 and not cfg.explore:
        raise CollectError(f"--group-size must be at least 2 for GRPO, got {cfg.group_size}")
    if cfg.concurrency < 1:
        raise CollectError(f"--concurrency must be at least 1, got {cfg.concurrency}")
    if cfg.explore_samples < 1:
        raise CollectError(f"--explore-samples must be at least 1, got {cfg.explore_samples}")
    if not 0 <= cfg.price_jitter < float("inf"):
        raise CollectError(f"--price-jitter must be a number >= 0, got {cfg.price_jitter}")
    out = Path(cfg.out)
    if is_postgres(cfg.out):
        check_reachable(cfg.out, "--out")
    elif not out.parent.is_dir():
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
    for url in [] if cfg.router else policy_endpoints(cfg.policy_base_url):
        check_endpoint(url)
    if cfg.ray is not None:
        if cfg.ray_workers < 1:
            raise CollectError(f"--ray-workers must be at least 1, got {cfg.ray_workers}")
        check_address(cfg.ray)
    return tasks


@dataclass(frozen=True)
class RunSpec:
    """One rollout: its task, preference, group, place in it and fixed trajectory id.

    The id is fixed before the run starts, so a run retried after its Ray worker died
    replaces its record instead of adding a second one. ``run`` numbers it in the collection
    (it picks the policy endpoint of a list), ``first_tool`` is the tool an exploring run is
    forced to call first, ``shock`` its jittered prices.
    """

    task: suites.Task
    pref: Preference
    group_id: str
    index: int
    run: int
    run_id: str
    first_tool: str = ""
    shock: PriceShock | None = None


def plan_runs(
    cfg: CollectConfig, tasks: list[suites.Task], pool: Mapping[str, Any], store: TrajectoryStore
) -> list[RunSpec]:
    """Every run of a collection, in order; an exploring collection skips runs already stored.

    Each run gets a fresh id: a new collection into the same store adds runs, and a retry
    (Ray) of one run replaces its own record.
    """
    forced = explore_tools(pool, cfg.explore_tools) if cfg.explore else []
    # An exploring collection resumes: each (task, policy model, forced tool) gets only the
    # samples it lacks, so a teacher model's exploration adds to the same store.
    default = load_config(cfg.config or None).policy.model  # the graph's fallback, as it does
    model = Context(policy_model=cfg.policy_model).policy_model or default  # flag, then env
    records = store.records(TRAINING_KEY) if cfg.explore else []
    stored = Counter(r[TRAINING_KEY]["task_id"] for r in records)
    done = Counter(
        (r[TRAINING_KEY]["task_id"], r[TRAINING_KEY].get("explore_tool"))
        for r in records
        if (r["context"].get("policy_model") or default) == model
    )
    specs: list[RunSpec] = []
    for task in tasks:
        pref = NO_PREFERENCE
        if cfg.sample_preferences:
            pref = sample_preference(task.id, pool, seed=cfg.seed)
        if cfg.explore:
            todo = [t for t in forced for k in range(cfg.explore_samples) if k >= done[task.id, t]]
            runs = [(stored[task.id] + i, t) for i, t in enumerate(todo)]
        else:
            runs = [(i, "") for i in range(cfg.group_size)]
        for index, first in runs:
            jitter = jittered(cfg.price_jitter, f"{cfg.seed}:{task.id}:{index}")
            shock = jitter if cfg.price_jitter else None
            group = f"{task.id}@{cfg.seed}"
            specs.append(
                RunSpec(task, pref, group, index, len(specs), uuid.uuid4().hex, first, shock)
            )
    return specs


async def collect_run(base: dict[str, Any], spec: RunSpec) -> dict[str, Any]:
    """Run ``spec`` through the graph (context ``base``), judge it and store the verdict.

    Self-contained, so a Ray worker runs it as it is: the store is opened from its location.
    """
    from podium.graph import graph

    task = spec.task
    base = dict(base)
    router = base.pop("router", "")
    with (
        tempfile.TemporaryDirectory(prefix="podium-task-") as workdir,
        task_tools(task),
        price_shock(spec.shock),
        contextlib.ExitStack() as stack,
    ):
        with_first = {**spread(base, spec.run), "first_tool": spec.first_tool}
        ctx = task_context(with_first, task, Path(workdir), spec.pref.instruction, spec.pref.vector)
        if router:  # a demonstration: the fixed router drives the graph (policy turns unbilled)
            seed = zlib.crc32(f"{spec.group_id}:{spec.index}".encode())
            # The pool alone: resolving the policy would start a server the router never asks.
            fixed = router_for(router, resolve_tools(ctx), seed=seed)
            stack.enter_context(policy_override(fixed))
        inputs = {"question": task.question, "trajectory_id": spec.run_id}
        state = await graph.ainvoke(inputs, context=ctx)
        store = TrajectoryStore(base["trajectory_db"])
        return await asyncio.to_thread(
            finish_record, store, state["trajectory_id"], task, spec.group_id, spec.index,
            spec.pref, spec.first_tool,
        )  # fmt: skip


async def collect(
    cfg: CollectConfig, progress: Callable[[dict[str, Any]], None] | None = None
) -> dict[str, Any]:
    """Run every task ``cfg.group_size`` times and store the judged trajectories.

    With ``cfg.ray`` set the runs are spread over that Ray cluster (``eval/ray_runs.py``),
    ``cfg.concurrency`` in flight on each of ``cfg.ray_workers`` workers.

    Returns:
        A summary: tasks, runs, correct runs, errors and the store's location.
    """
    tasks = check_request(cfg)
    pool = pool_localities(cfg.profile, cfg.config or None, cfg.local_only)
    store = TrajectoryStore(cfg.out)  # created (WAL, schema) once, before any worker opens it
    specs = plan_runs(cfg, tasks, pool, store)
    base = {
        "policy_base_url": cfg.policy_base_url,
        "policy_model": router_model(cfg.router) if cfg.router else cfg.policy_model,
        "router": cfg.router,
        "profile": cfg.profile,
        "config": cfg.config,
        "local_only": cfg.local_only,
        "temperature": cfg.temperature,
        "max_turns": cfg.max_turns,
        "budget_usd": cfg.budget_usd,
        "trajectory_db": store.location,
    }
    summary = {"tasks": len(tasks), "runs": 0, "correct": 0, "errors": 0, "store": store.location}

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
        base["trajectory_db"] = _absolute(store.location)  # workers may run elsewhere
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


def _absolute(location: str) -> str:
    """A store location that means the same in a worker with another working directory."""
    return location if is_postgres(location) else str(Path(location).resolve())


def stored_groups(store: TrajectoryStore) -> dict[str, list[dict[str, Any]]]:
    """Collected trajectories by group id, each group in sample order."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in store.records(TRAINING_KEY):
        groups.setdefault(record[TRAINING_KEY]["group_id"], []).append(record)
    for members in groups.values():
        members.sort(key=lambda r: r[TRAINING_KEY]["sample"])
    return groups
