"""The ``tau2`` suite: tau2-bench airline/retail tasks shipped in ``inspect-evals``.

A tau2 task is a conversation with a simulated user, so it needs an LLM endpoint for that user
(``$PODIUM_USER_SIM_BASE_URL``). Without one the suite is skipped with a message saying so.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
from pathlib import Path

from .tasks import SuiteSkipped, Task, register_suite, suite_error

DOMAINS = ("airline", "retail")
ENDPOINT_ENV = "PODIUM_USER_SIM_BASE_URL"


def domain_dir(domain: str) -> Path:
    """``inspect_evals/tau2/data/domains/<domain>`` of the installed ``inspect-evals``."""
    try:
        dist = importlib.metadata.distribution("inspect-evals")
    except importlib.metadata.PackageNotFoundError:
        raise suite_error(
            "tau2", "inspect-evals", "pip install --no-deps inspect-evals==0.26.0"
        ) from None
    return Path(str(dist.locate_file(f"inspect_evals/tau2/data/domains/{domain}")))


def tau2_tasks(domain: str) -> list[dict]:
    """The raw tau2 tasks of ``domain``."""
    return json.loads((domain_dir(domain) / "tasks.json").read_text(encoding="utf-8"))


def _load(limit: int | None = None, seed: int = 0) -> list[Task]:
    count = sum(len(tau2_tasks(d)) for d in DOMAINS)
    if not os.environ.get(ENDPOINT_ENV):
        raise SuiteSkipped(
            f"tau2 ({count} airline/retail tasks) needs a user-simulator LLM: set {ENDPOINT_ENV} "
            "to an OpenAI-compatible endpoint"
        )
    raise SuiteSkipped(
        f"tau2 with a user simulator is not implemented yet ({count} tasks found); "
        "the endpoint in ${ENDPOINT_ENV} is not used"
    )


def _check(task: Task, answer: str, record: object) -> None:  # pragma: no cover
    raise SuiteSkipped("tau2 is not runnable here")


register_suite("tau2", _load, _check)  # type: ignore[arg-type]
