"""The routing task the learning benchmark trains on: two priced tools, disjoint suites.

Arithmetic questions from reasoning-gym's ``basic_arithmetic``; two tools that both compute
the exact answer, one cheap (``calculator``, $0.0001 a call) and one expensive
(``math_expert``, $0.02 a call); the user preference "keep the cost as low as possible". A
policy that learns the task routes to the calculator. ``benchmarks/learning.py`` trains on
it and compares held-out runs before and after; the parts live here so they are tested.
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from pathlib import Path
from typing import Any

from langchain_core.tools import BaseTool, StructuredTool

from podium.tools.arithmetic import arithmetic
from podium.tools.cost import ToolCost, Usage, with_cost
from podium.training.eval import suites
from podium.training.grpo.config import TrainConfig

# --- configuration: everything a run depends on --------------------------------------------


@dataclasses.dataclass(frozen=True)
class Setup:
    """One benchmark configuration."""

    seed: int = 0
    model: str = "policy"  # packaged alias: Qwen2.5-Coder-0.5B-Instruct
    train_tasks: int = 10  # questions the policy trains on (steps × tasks_per_step are drawn)
    heldout_tasks: int = 10  # other questions, never seen in training
    # GRPO optimiser steps. A sampled graph run of the 0.5B policy takes 30 s on 2 idle cores
    # and 150-330 s when other jobs load them (measured), so only a handful fit in 45 min.
    steps: int = 5
    tasks_per_step: int = 1  # prompts per step; each is run `group` times
    group: int = 4  # GRPO group size (paper: 8; halved for CPU time)
    lora_r: int = 16  # paper: 64 on every layer; r=16 is what DESIGN §6 timed here
    lora_alpha: int = 32
    # LoRA on the last layers only: the backward pass stops there, so an update costs about
    # one forward pass instead of three (2 shared cores prefill only ~50 tokens/s of 0.5B).
    lora_last_layers: int = 4
    # The paper's 1e-6 is tuned for thousands of GPU steps; five LoRA steps need a rate well
    # above the usual LoRA 1e-4 to move a decision at all.
    learning_rate: float = 5e-4
    beta: float = 0.0  # KL to the base (paper 1e-4): negligible in a short run, saves a forward
    # Sampling in training (paper: 1.0). At 1.0 the 0.5B model rambles to the token cap in
    # half its turns (measured), which doubles a step's time; 0.8 still explores both tools.
    temperature: float = 0.8  # evaluation is greedy
    max_turns: int = 2  # call a tool, then answer (the graph forces the answer on turn 2)
    max_new_tokens: int = 64  # a tool call or an answer is ~30-50 tokens
    preference: str = "save_money"


FULL = Setup()
QUICK = dataclasses.replace(
    FULL, train_tasks=1, heldout_tasks=2, steps=1, tasks_per_step=1, group=2
)
CHEAP_USD, EXPERT_USD = 0.0001, 0.02


def routing_tools() -> list[BaseTool]:
    """A cheap calculator and an expensive expert: both compute the exact answer."""

    def calculator(expression: str) -> tuple[str, Usage]:
        """Evaluate an arithmetic expression such as '(3 + 4) * -2'."""
        try:
            return arithmetic(expression), Usage()
        except (ValueError, SyntaxError, ZeroDivisionError) as exc:
            return f"error: {exc}", Usage(error=str(exc))

    def math_expert(expression: str) -> tuple[str, Usage]:
        """Ask a senior mathematician to work out an arithmetic expression."""
        import sympy

        try:
            value = sympy.nsimplify(sympy.sympify(expression.strip().rstrip(".="), rational=True))
        except (sympy.SympifyError, TypeError, ZeroDivisionError) as exc:
            return f"error: {exc}", Usage(error=str(exc))
        return f"The exact value is {value}.", Usage()

    cheap = ToolCost(per_call_usd=CHEAP_USD, expected_latency_s=0.01, capability="arithmetic")
    expert = ToolCost(
        per_call_usd=EXPERT_USD,
        expected_latency_s=0.01,
        locality="remote",
        capability="expert mathematician: exact answers to any math question",
    )
    build = StructuredTool.from_function
    return [
        with_cost(build(math_expert, response_format="content_and_artifact"), expert),
        with_cost(build(calculator, response_format="content_and_artifact"), cheap),
    ]


def _check(task: Any, answer: str, record: Any) -> Any:
    """reasoning-gym's own scorer, as the ``math`` suite applies it."""
    return suites.check(dataclasses.replace(task, suite="math"), answer, record)


def register_routing_suites(setup: Setup) -> tuple[str, str]:
    """Register the training and held-out suites (disjoint questions); returns their names."""
    import reasoning_gym

    size = setup.train_tasks + setup.heldout_tasks
    data = reasoning_gym.create_dataset("basic_arithmetic", size=3 * size, seed=setup.seed)
    entries, seen = [], set()
    for entry in data:  # unique questions only, so the split is disjoint by construction
        if entry["question"] not in seen:
            seen.add(entry["question"])
            entries.append(json.loads(json.dumps(entry, default=list)))
    if len(entries) < size:
        raise SystemExit(f"reasoning-gym gave {len(entries)} unique questions, need {size}")
    names = ("arith-train", "arith-heldout")
    splits = (entries[: setup.train_tasks], entries[setup.train_tasks : size])
    for name, split in zip(names, splits, strict=True):
        tasks = [
            suites.Task(
                id=f"{name}-{i:03d}",
                suite=name,
                question=e["question"],
                gold=str(e["answer"]),
                data={"dataset": "basic_arithmetic", "entry": e},
            )
            for i, e in enumerate(split)
        ]
        suites.register_suite(name, lambda limit=None, seed=0, tasks=tasks: tasks, _check)
    return names


# --- the comparison ---------------------------------------------------------------------------


def summarize(before: list[Any], after: list[Any], setup: Setup) -> dict[str, dict[str, Any]]:
    """Mean reward, accuracy, mean cost and tool mix of both policies on the held-out tasks.

    The reward is the training reward: per task, the two policies' runs form one group,
    min-max normalised together, so a point of reward means "better than the other policy".
    """
    from podium.training.grpo.preferences import make_preference
    from podium.training.grpo.rewards import combined_rewards, measure

    names = [t.name for t in routing_tools()]
    pref = make_preference(setup.preference, dict.fromkeys(names, "local")).vector
    rewards: dict[str, list[float]] = {"before": [], "after": []}
    for b, a in zip(before, after, strict=True):
        rb, ra = combined_rewards([measure(b), measure(a)], names, pref)
        rewards["before"].append(rb)
        rewards["after"].append(ra)
    out = {}
    for label, records in (("before", before), ("after", after)):
        ms = [measure(r) for r in records]
        calls = Counter()
        for m in ms:
            calls.update(m.calls)
        n = len(ms)
        out[label] = {
            "mean_reward": sum(rewards[label]) / n,
            "accuracy": sum(m.correct for m in ms) / n,
            "mean_cost_usd": sum(m.cost_usd for m in ms) / n,
            "calls_per_task": {t: calls.get(t, 0) / n for t in names},
            "no_tool": sum(not m.calls for m in ms) / n,
            "mean_turns": sum(r["turns"] for r in records) / n,
        }
    return out


def print_table(summary: dict[str, dict[str, Any]], n: int) -> None:
    """The before/after table."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"held-out: {n} arithmetic questions, greedy, preference save_money")
    table.add_column("metric")
    table.add_column("before", justify="right")
    table.add_column("after", justify="right")
    b, a = summary["before"], summary["after"]
    table.add_row("mean reward", f"{b['mean_reward']:.3f}", f"{a['mean_reward']:.3f}")
    table.add_row("accuracy", f"{b['accuracy']:.1%}", f"{a['accuracy']:.1%}")
    table.add_row("mean cost $", f"{b['mean_cost_usd']:.5f}", f"{a['mean_cost_usd']:.5f}")
    for tool in b["calls_per_task"]:
        bc, ac = b["calls_per_task"][tool], a["calls_per_task"][tool]
        table.add_row(f"{tool} calls/task", f"{bc:.2f}", f"{ac:.2f}")
    table.add_row("no tool call", f"{b['no_tool']:.1%}", f"{a['no_tool']:.1%}")
    table.add_row("turns/task", f"{b['mean_turns']:.2f}", f"{a['mean_turns']:.2f}")
    Console(width=100).print(table)


def train_config(setup: Setup, model: Path, out: Path, train_suite: str) -> TrainConfig:
    """The ``podium train`` configuration of this benchmark (online mode)."""
    from transformers import AutoConfig

    layers = AutoConfig.from_pretrained(model).num_hidden_layers

    return TrainConfig(
        model=str(model),
        output_dir=str(out / "adapter"),
        mode="online",
        store=str(out / "rollouts.sqlite"),
        tasks=train_suite,
        seed=setup.seed,
        max_turns=setup.max_turns,
        temperature=setup.temperature,
        max_new_tokens=setup.max_new_tokens,
        preference=setup.preference,
        grpo={
            "num_generations": setup.group,
            "per_device_train_batch_size": setup.group * setup.tasks_per_step,
            "max_steps": setup.steps,
            "learning_rate": setup.learning_rate,
            "beta": setup.beta,
            "lr_scheduler_type": "constant",
            "warmup_steps": 0,
        },
        lora={
            "r": setup.lora_r,
            "lora_alpha": setup.lora_alpha,
            "layers_to_transform": list(range(max(0, layers - setup.lora_last_layers), layers)),
        },
    )
