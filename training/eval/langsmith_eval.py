"""The same evaluation through ``langsmith.evaluate``: checkers as evaluators, cost as feedback.

With ``LANGSMITH_API_KEY`` set, each router's run is uploaded as an experiment on a dataset
named for the suite and seed. Without it, LangSmith runs fully offline against a client that
never connects (docs/evaluation.md). Either way the local files are the same as :func:`evaluate`'s.
"""

from __future__ import annotations

import os
import uuid
from typing import Any

from .runner import EvalConfig, plan_eval, run_unit, write_summary
from .suites import Task

OFFLINE_URL = "http://127.0.0.1:9"  # nothing listens there; the client is never asked to send


def client() -> Any:
    """A LangSmith client: the real one with a key, else one that never connects."""
    from langsmith import Client

    if os.environ.get("LANGSMITH_API_KEY"):
        return Client()
    return Client(api_url=OFFLINE_URL, api_key="offline", info={}, tracing_sampling_rate=0.0)


def online() -> bool:
    """True when results are uploaded."""
    return bool(os.environ.get("LANGSMITH_API_KEY"))


def _inputs(task: Task) -> dict[str, Any]:
    return {"task_id": task.id, "question": task.question}


def _examples(ls: Any, name: str, tasks: list[Task]) -> Any:
    """The examples to run: a LangSmith dataset online, in-memory examples offline."""
    from langsmith.schemas import Example

    if not online():
        dataset_id = uuid.uuid4()
        return [
            Example(id=uuid.uuid4(), dataset_id=dataset_id, inputs=_inputs(t),
                    outputs={"gold": t.gold})
            for t in tasks
        ]  # fmt: skip
    if not ls.has_dataset(dataset_name=name):
        ls.create_dataset(name, description="podium evaluation suite")
    dataset = ls.read_dataset(dataset_name=name)
    have = {e.inputs.get("task_id") for e in ls.list_examples(dataset_id=dataset.id)}
    new = [t for t in tasks if t.id not in have]
    if new:
        ls.create_examples(
            inputs=[_inputs(t) for t in new], outputs=[{"gold": t.gold} for t in new],
            dataset_id=dataset.id,
        )  # fmt: skip
    wanted = {t.id for t in tasks}
    return [e for e in ls.list_examples(dataset_id=dataset.id) if e.inputs["task_id"] in wanted]


def feedback(outputs: dict[str, Any]) -> dict[str, Any]:
    """The checker's verdict and the run's cost and latency, as LangSmith feedback."""
    row = outputs["row"]
    return {
        "results": [
            {"key": "correct", "score": float(bool(row["correct"])), "comment": row.get("detail")},
            {"key": "cost_usd", "score": float(row["cost_usd"])},
            {"key": "latency_s", "score": float(row["latency_s"])},
            {"key": "tool_calls", "score": len(row["tool_calls"])},
        ]
    }


def evaluate_langsmith(cfg: EvalConfig) -> dict[str, Any]:
    """Run ``cfg`` through ``langsmith.evaluate``; write the same files as ``evaluate``."""
    from langsmith import evaluate as ls_evaluate

    plan = plan_eval(cfg)
    by_id = {t.id: t for t in plan.tasks}
    ls = client()
    for router in cfg.routers:
        pending = [t for r, t in plan.todo if r == router]
        if not pending:
            continue

        def target(inputs: dict[str, Any], router: str = router) -> dict[str, Any]:
            row = run_unit(router, by_id[inputs["task_id"]], cfg, plan.tools)
            plan.results.append(row)
            return {"answer": row.get("answer", ""), "row": row}

        ls_evaluate(
            target,
            data=_examples(ls, f"podium-{cfg.suite}-seed{cfg.seed}", pending),
            evaluators=[feedback],
            experiment_prefix=f"podium-{cfg.suite}-{router}",
            metadata={"suite": cfg.suite, "router": router, "seed": cfg.seed},
            max_concurrency=cfg.concurrency,
            client=ls,
            upload_results=online(),
        )
    return write_summary(cfg, plan.tasks)
