"""N concurrent graph runs against a local OpenAI-compatible server: throughput, latency, loss.

The policy is the real ``ChatOpenAI`` client talking to the fake server of
:mod:`podium.graph.testing` on 127.0.0.1, whose ``scripted_reply`` answers instantly from the
conversation it is sent: ``TOOL_TURNS`` calls of the priced ``calc`` tool, then an answer
built from the run's own question and last tool result. So what is measured is podium's own
overhead (graph, parsing, budget guard, ToolNode, ledger, SQLite trajectory writes) under
concurrency, and the check is exact: every run's stored trajectory must hold its own question
with the answer only that question leads to, none lost, none mixed up. Before measuring, the
check proves it can fail: on three runs it must see a swapped answer and a lost trajectory.

The Ray column runs the same N runs spread over a local Ray cluster of 2 workers
(``training/eval/ray_runs.py``, as ``podium collect --ray`` does), checked the same way.

Usage: ``python benchmarks/load.py [--n 1 8 32 64] [--no-ray]`` (``make load``).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from podium.graph import Context, TrajectoryStore, graph
from podium.graph.resources import tools_override
from podium.graph.testing import (
    TOOL_TURNS,
    calc_tool,
    expected_answer,
    fake_openai,
    question,
    question_parts,
    scripted_reply,
)

ROOT = Path(__file__).resolve().parents[1]
RAY_WORKERS = 2


@dataclass
class LoadResult:
    """What one level of concurrency measured and verified."""

    n: int
    seconds: float
    latencies: list[float]
    stored: int
    correct: int  # stored records whose question, answer and ledger are this run's own
    requests: int

    @property
    def throughput(self) -> float:
        """Runs per second."""
        return self.n / self.seconds

    def percentile(self, q: float) -> float:
        """Latency percentile ``q`` (0-100) in seconds (nearest rank)."""
        ranked = sorted(self.latencies)
        return ranked[max(0, min(len(ranked) - 1, round(q / 100 * len(ranked) + 0.5) - 1))]


async def _timed(q: str, ctx: Context) -> tuple[dict[str, Any], float]:
    start = time.perf_counter()
    out = await graph.ainvoke({"question": q}, context=ctx)
    return out, time.perf_counter() - start


def verify(outs: list[dict[str, Any]], questions: list[str], store: TrajectoryStore) -> int:
    """How many runs left exactly their own trajectory (question, answer, ledger, id)."""
    records = {r["id"]: r for r in store.records()}
    good = 0
    for out, q in zip(outs, questions, strict=True):
        record = records.get(out["trajectory_id"])
        if record is None or record["question"] != q:
            continue
        calls = [e for e in record["ledger"] if e["kind"] == "tool" and e["ok"]]
        good += (
            record["answer"] == out["answer"] == expected_answer(q)
            and record["stopped_by"] == "answer"
            and len(calls) == TOOL_TURNS
            and record["cost_usd"] == out["cost_usd"]
        )
    return good


async def run_load(n: int, base_url: str, db: Path) -> LoadResult:
    """``n`` concurrent runs into a fresh store at ``db``, timed and verified."""
    store = TrajectoryStore(db)
    ctx = Context(
        policy_base_url=base_url, trajectory_db=str(db), budget_usd=1.0, max_turns=TOOL_TURNS + 2
    )
    questions = [question(i) for i in range(n)]
    start = time.perf_counter()
    done = await asyncio.gather(*(_timed(q, ctx) for q in questions))
    seconds = time.perf_counter() - start
    outs = [out for out, _ in done]
    correct = verify(outs, questions, store)
    return LoadResult(n, seconds, [s for _, s in done], len(store), correct, 0)


def measure(n: int, workdir: Path) -> LoadResult:
    """One level: a fresh fake server and store, ``n`` concurrent runs, verified.

    Every run's pool is the priced ``calc`` tool (no sandbox, no models).
    """
    with tools_override([calc_tool()]), fake_openai(reply=scripted_reply, lifetime_s=600) as server:

        async def warm_then_measure() -> LoadResult:
            # One event loop: the policy's HTTP client (cached per endpoint) is bound to it.
            await run_load(1, server.base_url, workdir / f"warm-{n}.sqlite")  # lazy set-up
            before = server.requests
            result = await run_load(n, server.base_url, workdir / f"load-{n}.sqlite")
            result.requests = server.requests - before
            return result

        result = asyncio.run(warm_then_measure())
    return result


def self_check(workdir: Path) -> tuple[int, int, int]:
    """What :func:`verify` counts for 3 runs: as they are, two answers swapped, one record lost.

    A check that cannot fail proves nothing: these must be 3, 1 and 2.
    """
    db = workdir / "self-check.sqlite"
    with tools_override([calc_tool()]), fake_openai(reply=scripted_reply) as server:
        ctx = Context(policy_base_url=server.base_url, trajectory_db=str(db), max_turns=4)

        async def runs() -> list[dict[str, Any]]:
            return list(
                await asyncio.gather(
                    *(graph.ainvoke({"question": question(i)}, context=ctx) for i in range(3))
                )
            )

        outs = asyncio.run(runs())
    store, questions = TrajectoryStore(db), [question(i) for i in range(3)]
    good = verify(outs, questions, store)
    swapped = verify([outs[1], outs[0], outs[2]], questions, store)
    conn = sqlite3.connect(db)
    with conn:  # commits
        conn.execute("DELETE FROM trajectories WHERE id = ?", (outs[2]["trajectory_id"],))
    conn.close()
    return good, swapped, verify(outs, questions, store)


async def ray_run(base_url: str, db: str, q: str) -> tuple[str, dict[str, Any], float]:
    """One run in a Ray worker (the calc pool installed there): question, outcome, seconds.

    The graph is imported here, in the worker: run as a script, this module's functions reach
    Ray by value, and a compiled graph copied by value loses LangGraph's sentinels.
    """
    from podium.graph import graph as worker_graph

    ctx = Context(
        policy_base_url=base_url, trajectory_db=db, budget_usd=1.0, max_turns=TOOL_TURNS + 2
    )
    with tools_override([calc_tool()]):  # every run's pool is the priced calc tool, as above
        start = time.perf_counter()
        out = await worker_graph.ainvoke({"question": q}, context=ctx)
        seconds = time.perf_counter() - start
    keep = {k: out[k] for k in ("trajectory_id", "answer", "cost_usd")}
    return q, keep, seconds


def ray_measure(n: int, workdir: Path, workers: int = RAY_WORKERS) -> LoadResult:
    """The same ``n`` runs spread over ``workers`` Ray workers (cluster started beforehand)."""
    from podium.training.eval.ray_runs import RayPlan, connect, run_all, start_workers

    plan = RayPlan("local", workers, in_flight=max(1, -(-n // workers)))
    connect(plan)
    actors = start_workers(plan)
    done: list[tuple[str, dict[str, Any], float]] = []
    db = workdir / f"ray-{n}.sqlite"
    TrajectoryStore(db)
    try:
        with fake_openai(reply=scripted_reply, lifetime_s=600) as server:
            warm = [(server.base_url, str(workdir / f"ray-warm-{n}.sqlite"), question(0))]
            run_all(ray_run, warm * workers, actors, 1, lambda _: None)  # imports, pool, client
            before = server.requests
            jobs = [(server.base_url, str(db), question(i)) for i in range(n)]
            start = time.perf_counter()
            run_all(ray_run, jobs, actors, plan.in_flight, done.append)
            seconds = time.perf_counter() - start
            requests = server.requests - before
    finally:
        import ray

        for actor in actors:
            ray.kill(actor)
    done.sort(key=lambda d: question_parts(d[0])[0])
    store = TrajectoryStore(db)
    correct = verify([d[1] for d in done], [d[0] for d in done], store)
    return LoadResult(n, seconds, [d[2] for d in done], len(store), correct, requests)


def table(results: list[LoadResult], on_ray: list[LoadResult] | None = None) -> str:
    """The results as the docs quote them; with ``on_ray``, its runs/s and checks beside."""
    head = (
        f"{'N':>3} {'runs/s':>8} {'p50 s':>7} {'p95 s':>7} {'stored':>7} {'correct':>8} "
        f"{'requests':>9}"
    )
    lines = [head + (f" {'Ray runs/s':>10} {'Ray correct':>11}" if on_ray else "")]
    for i, r in enumerate(results):
        line = (
            f"{r.n:>3} {r.throughput:>8.1f} {r.percentile(50):>7.3f} {r.percentile(95):>7.3f} "
            f"{r.stored:>3}/{r.n:<3} {r.correct:>4}/{r.n:<3} {r.requests:>9}"
        )
        if on_ray:
            ray = on_ray[i]
            line += f" {ray.throughput:>10.1f} {ray.correct:>7}/{ray.n:<3}"
        lines.append(line.rstrip())
    return "\n".join(lines)


def main() -> int:
    """Measure each level of concurrency, print the table; exit 1 if a run was lost or mixed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[1, 8, 32, 64])
    parser.add_argument("--no-ray", action="store_true", help="Skip the Ray column.")
    args = parser.parse_args()
    on_ray: list[LoadResult] = []
    with tempfile.TemporaryDirectory(prefix="podium-load-") as tmp:
        checked = self_check(Path(tmp))
        print(f"self-check (3 runs, 2 swapped, 1 lost): verify counts {checked}, must be (3, 1, 2)")
        if checked != (3, 1, 2):
            return 1
        results = [measure(n, Path(tmp)) for n in args.n]
        if not args.no_ray:
            # Workers import podium, and benchmarks.load when it was imported rather than run.
            os.environ["PYTHONPATH"] = os.pathsep.join(
                filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])
            )
            on_ray = [ray_measure(n, Path(tmp)) for n in args.n]
    print(f"{TOOL_TURNS + 1} policy turns and {TOOL_TURNS} calc calls per run; one SQLite store")
    if on_ray:
        print(f"Ray: a local cluster of {RAY_WORKERS} workers, started before timing")
    print(table(results, on_ray))
    return 0 if all(r.stored == r.correct == r.n for r in results + on_ray) else 1


if __name__ == "__main__":
    sys.exit(main())
