"""ToolScale-style data: synthetic tool environments and their verified tasks, cached.

An environment is built once per (domain, seed) under ``cache_dir("toolscale")``; its tasks
are synthesized from it (:mod:`podium.training.synth.tasks`) and written as JSONL. The
``toolscale`` suite that runs and checks them is :mod:`podium.training.eval.suites.toolscale`.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

from podium.tools.environment import EnvError, create_environment, db_hash, load_spec
from podium.tools.paths import atomic_path, cache_dir
from podium.training.eval.suites import Task

from .domains import DOMAINS
from .tasks import SynthError, Synthesizer, Verified

SUITE = "toolscale"
VERSION = 1  # bump when generators change: cached tasks are then rebuilt
TASKS_PER_DOMAIN = 60
UNKNOWN_DOMAIN = "unknown domain {name!r}: choose one of {known}"


def env_path(domain: str, seed: int = 0) -> Path:
    """Default file of the environment of ``domain`` for ``seed``."""
    return cache_dir(SUITE) / f"{domain}-seed{seed}-v{VERSION}.sqlite"


def tasks_path(domain: str, seed: int = 0) -> Path:
    """Default tasks file of ``domain`` for ``seed``."""
    return cache_dir(SUITE) / f"{domain}-seed{seed}-v{VERSION}.tasks.jsonl"


def _generator(domain: str) -> Any:
    if domain not in DOMAINS:
        raise SynthError(UNKNOWN_DOMAIN.format(name=domain, known=", ".join(DOMAINS)))
    return DOMAINS[domain]


def build_env(domain: str, seed: int = 0, out: Path | None = None) -> Path:
    """Generate the environment of ``domain`` (schema, seeded rows, tools) at ``out``.

    Raises:
        SynthError: unknown domain.
    """
    spec, rows = _generator(domain)(seed)
    target = out or env_path(domain, seed)
    with atomic_path(target) as tmp:
        tmp.unlink()
        create_environment(tmp, spec, rows)
    return target


def resolve_env(env: str, seed: int = 0) -> Path:
    """An environment named by domain (built in the cache when missing) or by file path.

    Raises:
        SynthError: neither a domain nor a valid environment file.
    """
    if env in DOMAINS:
        path = env_path(env, seed)
        return path if path.is_file() else build_env(env, seed)
    if not Path(env).exists():
        raise SynthError(
            UNKNOWN_DOMAIN.format(name=env, known=", ".join(DOMAINS))
            + ", or the path of an environment file"
        )
    try:
        load_spec(env)
    except EnvError as exc:
        raise SynthError(str(exc)) from None
    return Path(env).resolve()


def _task(v: Verified, i: int, env: Path, seed: int, env_hash: str) -> Task:
    spec = load_spec(env)
    gold = "; ".join(v.required) or ", ".join(
        f"{a['tool']}({', '.join(f'{k}={x!r}' for k, x in a['args'].items())})" for a in v.actions
    )
    data = {
        "domain": spec.name,
        "env": str(env.resolve()),
        "env_seed": seed,
        "env_hash": env_hash,
        "actions": v.actions,
        "required": v.required,
        "gold_hash": v.gold_hash,
        "touched": v.touched,
        "writes": v.writes,
        "difficulty": v.difficulty,
        "evolution": v.evolution,
    }
    return Task(
        id=f"{SUITE}-{spec.name}-{i:04d}", suite=SUITE, question=v.instruction, gold=gold, data=data
    )


def synthesize(env: Path, n: int, seed: int = 0) -> tuple[list[Task], Counter[str]]:
    """``n`` verified tasks for the environment at ``env`` and the kept/dropped counts."""
    synth = Synthesizer(env, seed)
    try:
        kept = synth.run(n)
    finally:
        synth.close()
    env_hash = db_hash(env)
    return [_task(v, i, env, seed, env_hash) for i, v in enumerate(kept)], synth.stats


def write_tasks(tasks: list[Task], out: Path) -> None:
    """Write ``tasks`` as JSONL, atomically."""
    with atomic_path(out) as tmp:
        tmp.write_text("".join(json.dumps(asdict(t)) + "\n" for t in tasks), encoding="utf-8")


def read_tasks(path: Path) -> list[Task]:
    """Tasks from a JSONL file written by :func:`write_tasks`.

    Raises:
        SynthError: a missing file, a line that is not a task, or a task naming a tool its
            environment does not have.
    """
    if not path.is_file():
        raise SynthError(f"{path}: no such file; write one with podium synth tasks")
    tasks = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            row = json.loads(line)
            task = Task(**{**row, "suite": SUITE})
            actions = task.data["actions"]
            env = Path(task.data["env"])
        except (json.JSONDecodeError, TypeError, KeyError) as exc:
            raise SynthError(f"{path}:{n}: not a toolscale task ({exc})") from None
        spec = (
            load_spec(env)
            if env.is_file()
            else _generator(task.data["domain"])(task.data["env_seed"])[0]
        )
        names = {t.name for t in spec.tools}
        for a in actions:
            if a["tool"] not in names:
                raise SynthError(
                    f"{path}:{n}: task {task.id} names tool {a['tool']!r}, which environment "
                    f"{spec.name} does not have: regenerate it with podium synth tasks"
                )
        tasks.append(task)
    return tasks


def domain_tasks(domain: str, seed: int = 0, n: int = TASKS_PER_DOMAIN) -> list[Task]:
    """The cached tasks of ``domain`` for ``seed`` (synthesized on first use)."""
    path = tasks_path(domain, seed)
    if path.is_file():
        return read_tasks(path)
    tasks, _ = synthesize(resolve_env(domain, seed), n, seed)
    write_tasks(tasks, path)
    return tasks
