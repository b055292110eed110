"""``podium train``: TRL's ``GRPOTrainer`` with a PEFT LoRA adapter, fed by podium rollouts.

No training loop of ours: a ``rollout_func`` hands TRL the samples and ``GroupReward`` the
rewards; TRL computes group advantages and does the clipped, KL-regularised updates.

* **offline**: the dataset is the store's groups; each group id arrives ``num_generations``
  times and the k-th copy becomes the group's k-th stored trajectory (``batches.py``).
* **online**: the dataset is a task suite; each copy of a task runs the LangGraph graph with
  the model being trained as its policy (``policy_override`` + :class:`LocalPolicy`), the
  run is judged and stored, and its generated token ids and log-probs are returned.

Several processes: ``accelerate launch --multi_gpu --num_processes N -m
podium.training.grpo.trainer --config FILE`` (gloo on CPU, NCCL on GPUs; keep
``per_device_train_batch_size`` a multiple of ``num_generations`` so groups stay whole).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from podium.graph import Context, TrajectoryStore
from podium.graph.database import check_reachable, is_postgres
from podium.graph.resources import policy_override, resolve
from podium.tools import cost_of
from podium.tools.errors import UserError
from podium.tools.price_shock import jittered, price_shock
from podium.training.eval import suites
from podium.training.eval.run_context import task_context, task_tools

from .base_model import load_policy
from .collect import finish_record, load_tasks, stored_groups
from .config import TrainConfig, TrainConfigError, load_train_config
from .local_policy import LocalPolicy
from .preferences import NO_PREFERENCE, Preference, make_preference, sample_preference
from .rewards import TRAINING_KEY, GroupReward, measure
from .samples import BatchError, GRPOSample, trajectory_sample

RolloutFunc = Callable[[list[Any], Any], dict[str, Any]]
# Preference kinds that need no tool name, so one can be set for every task (``preference``).
FIXED_PREFERENCES = ("accuracy", "save_money", "be_fast", "avoid_api")
SAMPLED = "sampled"  # ``preference = "sampled"``: a seeded preference per task, as in the paper


def _pool(cfg: TrainConfig) -> dict[str, Any]:
    return resolve(Context(profile=cfg.profile, config=cfg.config, local_only=cfg.local_only)).tools


def _empty_sample(tokenizer: Any, record: Mapping[str, Any]) -> GRPOSample:
    """A run with no policy turn (e.g. the budget stopped it): nothing to train on."""
    eos = tokenizer.eos_token_id
    return GRPOSample([eos], [eos], [0], 0.0, [0.0], record.get("id", ""), None, False)


def _outputs(
    samples: list[GRPOSample],
    records: list[Mapping[str, Any]],
    logprobs: list[list[float]] | None,
    cfg: TrainConfig,
) -> dict[str, Any]:
    info = [r.get(TRAINING_KEY, {}) for r in records]
    return {
        "prompt_ids": [s.prompt_ids for s in samples],
        "completion_ids": [s.completion_ids for s in samples],
        "logprobs": logprobs,
        "env_mask": [s.env_mask for s in samples],
        "podium_measure": [measure(r, cfg.reward).__dict__ for r in records],
        "podium_group": [i.get("group_id", "") for i in info],
        "podium_preference": [
            i.get("preference_vector") or cfg.reward.default_preference for i in info
        ],
        "podium_trajectory": [r.get("id", "") for r in records],
    }


def offline_rollouts(
    cfg: TrainConfig, groups: Mapping[str, list[dict[str, Any]]], pool: Mapping[str, Any]
) -> RolloutFunc:
    """A ``rollout_func`` replaying stored groups: the k-th copy of a group id → its k-th run."""

    def rollout(prompts: list[Any], trainer: Any) -> dict[str, Any]:
        tok = trainer.processing_class
        seen: Counter[str] = Counter()
        samples, records = [], []
        for gid in prompts:
            record = groups[gid][seen[gid] % len(groups[gid])]
            seen[gid] += 1
            try:
                samples.append(trajectory_sample(record, tok, pool))
            except BatchError:
                samples.append(_empty_sample(tok, record))
            records.append(record)
        return _outputs(samples, records, None, cfg)  # stored runs carry no log-probs

    return rollout


def online_rollouts(
    cfg: TrainConfig, tasks: Mapping[str, suites.Task], pool: Mapping[str, Any]
) -> RolloutFunc:
    """A ``rollout_func`` running the graph with the model being trained as its policy."""
    from podium.graph import graph

    store = TrajectoryStore(cfg.store or None)
    localities = {name: cost_of(tool).locality for name, tool in pool.items()}

    def preference(task: suites.Task) -> Preference:
        if cfg.preference == SAMPLED:
            return sample_preference(task.id, localities, seed=cfg.seed)
        return make_preference(cfg.preference, localities) if cfg.preference else NO_PREFERENCE

    calls = itertools.count()
    base = {
        "profile": cfg.profile,
        "config": cfg.config,
        "local_only": cfg.local_only,
        "max_turns": cfg.max_turns,
        "budget_usd": cfg.budget_usd,
        "temperature": cfg.temperature,
        "policy_base_url": "http://127.0.0.1:9/in-process",  # never called: overridden
        "trajectory_db": store.location,
    }

    def rollout(prompts: list[Any], trainer: Any) -> dict[str, Any]:
        tok = trainer.processing_class
        model = trainer.accelerator.unwrap_model(trainer.model)
        step = next(calls)
        seen: Counter[str] = Counter()
        samples, records, logprobs = [], [], []
        for task_id in prompts:
            task = tasks[task_id]
            pref = preference(task)
            policy = LocalPolicy(
                model=model,
                tokenizer=tok,
                temperature=cfg.temperature,
                max_new_tokens=cfg.max_new_tokens,
            )
            jitter = jittered(cfg.price_jitter, f"{cfg.seed}:{task.id}:{step}")
            with (
                tempfile.TemporaryDirectory(prefix="podium-task-") as workdir,
                task_tools(task),
                policy_override(policy),
                price_shock(jitter if cfg.price_jitter else None),
            ):
                ctx = task_context(base, task, Path(workdir), pref.instruction, pref.vector)
                state = graph.invoke({"question": task.question}, context=ctx)
            record = finish_record(
                store, state["trajectory_id"], task, f"{task.id}#{step}", seen[task.id], pref
            )
            seen[task.id] += 1
            generated = [t.completion_ids for t in policy.turns]
            try:
                sample = trajectory_sample(
                    record,
                    tok,
                    pool,
                    generated=generated,
                    logprobs=[t.logprobs for t in policy.turns],
                )
            except BatchError:
                sample = _empty_sample(tok, record)
            logprobs.append(sample.logprobs or [0.0] * len(sample.env_mask))
            samples.append(sample)
            records.append(record)
        return _outputs(samples, records, logprobs, cfg)

    return rollout


@dataclass
class TrainResult:
    """What a training run did."""

    adapter_dir: str
    steps: int
    losses: list[float] = field(default_factory=list)
    dropped_groups: int = 0
    groups: int = 0
    rank: int = 0  # this process's index under ``accelerate launch``; 0 alone
    trajectories: list[str] = field(default_factory=list)  # the runs this process scored


def build_trainer(cfg: TrainConfig) -> tuple[Any, GroupReward]:
    """TRL's ``GRPOTrainer`` for ``cfg``, with its podium reward.

    Raises:
        TrainConfigError: a missing model or store, an empty store or suite, bad GRPO values.
    """
    import os

    from datasets import Dataset
    from trl import GRPOTrainer

    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # rollout_func is by design

    model_dir = cfg.model_dir()
    try:
        args = cfg.grpo_args()
    except ValueError as exc:
        raise TrainConfigError(f"bad [grpo] values: {' '.join(str(exc).split())}") from None
    pool = _pool(cfg)
    g = args.num_generations
    if cfg.mode == "offline":
        check_reachable(cfg.store, "the [grpo] store")
        if not is_postgres(cfg.store) and not Path(cfg.store).is_file():
            raise TrainConfigError(
                f"store {cfg.store} does not exist: run podium collect --out {cfg.store} first"
            )
        groups = {k: v for k, v in stored_groups(TrajectoryStore(cfg.store)).items() if len(v) >= g}
        if not groups:
            raise TrainConfigError(
                f"store {cfg.store} has no group of {g} collected runs: "
                f"run podium collect --group-size {g} --out {cfg.store}"
            )
        rows = [{"prompt": gid} for gid in groups]
        rollout = offline_rollouts(cfg, groups, pool)
    else:
        if cfg.preference and cfg.preference not in (*FIXED_PREFERENCES, SAMPLED):
            kinds = ", ".join((*FIXED_PREFERENCES, SAMPLED))
            raise TrainConfigError(f"unknown preference {cfg.preference!r}: use one of {kinds}")
        tasks = {t.id: t for t in load_tasks(cfg.tasks, cfg.limit, cfg.seed)}
        rows = [{"prompt": tid} for tid in tasks]
        rollout = online_rollouts(cfg, tasks, pool)
    try:
        model, tokenizer = load_policy(model_dir, cfg.init_adapter)
    except ValueError as exc:
        raise TrainConfigError(str(exc)) from None
    reward = GroupReward(list(pool), cfg.reward)
    trainer = GRPOTrainer(
        model=model,
        reward_funcs=[reward],
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=None if cfg.init_adapter else cfg.lora_config(),
        rollout_func=rollout,
    )
    return trainer, reward


def train(cfg: TrainConfig) -> TrainResult:
    """Train and save the LoRA adapter (PEFT layout, loadable by vLLM's ``--lora-modules``)."""
    trainer, reward = build_trainer(cfg)
    trainer.train()
    accelerator = trainer.accelerator
    if accelerator.is_main_process:  # every rank holds the same weights: one writes them
        trainer.model.save_pretrained(cfg.output_dir)
        trainer.processing_class.save_pretrained(cfg.output_dir)
    accelerator.wait_for_everyone()
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    return TrainResult(
        cfg.output_dir,
        trainer.state.global_step,
        losses,
        reward.dropped,
        reward.groups,
        accelerator.process_index,
        reward.trajectories,
    )


def check_launch(env: Mapping[str, str]) -> None:
    """Refuse ``accelerate launch --cpu --num_processes N`` (N > 1) without an MPI hostfile.

    Accelerate then starts a single process (with ``MASTER_ADDR`` set, but no ``WORLD_SIZE``):
    training would silently run on one process instead of N.

    Raises:
        TrainConfigError: naming the launch commands that start N gloo processes on CPU.
    """
    sizes = ("WORLD_SIZE", "OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "MV2_COMM_WORLD_SIZE")
    cpu = env.get("ACCELERATE_USE_CPU", "").lower() in ("1", "true", "yes")
    if cpu and "MASTER_ADDR" in env and not any(k in env for k in sizes):
        raise TrainConfigError(
            "accelerate launch --cpu starts one process unless given --mpirun_hostfile: use "
            "`accelerate launch --multi_gpu --num_processes N` (gloo on CPU) or "
            "`torchrun --nproc_per_node N -m podium.training.grpo.trainer`"
        )


def main(argv: list[str] | None = None) -> None:
    """``python -m podium.training.grpo.trainer --config FILE``, what ``accelerate launch`` runs.

    Each process prints its :class:`TrainResult` as one JSON line; a bad config or launch is
    one line on stderr and exit code 2.
    """
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", required=True)
    try:
        check_launch(os.environ)
        result = train(load_train_config(parser.parse_args(argv).config))
    except UserError as exc:
        print(f"podium: error: {exc}", file=sys.stderr)
        sys.exit(2)
    print(json.dumps(asdict(result)), flush=True)  # one line per process


if __name__ == "__main__":
    main()
