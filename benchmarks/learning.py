"""Learning is demonstrated, not assumed: GRPO on a real policy, held-out before/after.

The packaged Qwen2.5-Coder-0.5B-Instruct (GGUF, converted once to a float32 Hugging Face folder
under the podium cache) is trained online — the LangGraph graph in the loop through the
trainer's ``rollout_func`` — on a routing task: arithmetic questions from reasoning-gym's
``basic_arithmetic``, two tools that both compute the exact answer, one cheap (``calculator``,
$0.0001 a call) and one expensive (``math_expert``, $0.02 a call), and the user preference
"keep the cost as low as possible" (reward: outcome and reversed cost, the paper's combined
reward). Held-out questions, disjoint from the training ones, are run by the untrained and the
trained policy; mean reward, accuracy, mean cost and the tool mix are printed side by side.

    .venv/bin/python benchmarks/learning.py           # full run, ~45 min on 2 CPU cores
    .venv/bin/python benchmarks/learning.py --quick   # end-to-end check, a few minutes
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from podium.tools.paths import atomic_path
from podium.training.grpo.routing import (
    FULL,
    QUICK,
    Setup,
    print_table,
    register_routing_suites,
    routing_tools,
    summarize,
    train_config,
)

# --- the policy ------------------------------------------------------------------------------


def policy_dir(alias: str) -> Path:
    """A packaged GGUF policy as a float32 Hugging Face folder, converted once and cached.

    SmolLM2's own template has no tools; it speaks ChatML, so it gets the Hermes-style tool
    template of ``training/grpo/tiny.py`` (the conventions the graph's parser reads).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from podium.tools.model_files import PACKAGED_MODELS
    from podium.tools.paths import cache_dir
    from podium.training.grpo.tiny import CHAT_TEMPLATE

    target = cache_dir("hf") / alias
    if (target / "config.json").is_file():
        return target
    gguf = PACKAGED_MODELS[alias].path()
    print(f"converting {gguf} to {target} (once, ~2 min)…", flush=True)
    tok = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32
    )
    if alias == "smollm2":
        tok.chat_template = CHAT_TEMPLATE
    model.hf_quantizer = None  # dequantised on load: plain float32 weights, saved as such
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        os.replace(tmp, target)  # never a half-written model folder
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


# --- held-out evaluation ---------------------------------------------------------------------


def run_heldout(model: Any, tok: Any, tasks: list[Any], setup: Setup, store: Any) -> list[Any]:
    """Run each held-out task once through the graph, greedy; returns judged records."""
    from podium.graph import graph
    from podium.graph.resources import policy_override
    from podium.training.grpo.collect import context_for, finish_record
    from podium.training.grpo.local_policy import LocalPolicy
    from podium.training.grpo.preferences import make_preference

    tools = {t.name: "local" for t in routing_tools()}
    pref = make_preference(setup.preference, tools)
    base = {
        "max_turns": setup.max_turns,
        "budget_usd": 1.0,
        "policy_base_url": "http://127.0.0.1:9/in-process",  # never called: overridden
        "trajectory_db": store.location,
    }
    records = []
    for task in tasks:
        policy = LocalPolicy(
            model=model, tokenizer=tok, temperature=0.0, max_new_tokens=setup.max_new_tokens
        )
        with tempfile.TemporaryDirectory(prefix="podium-task-") as workdir:
            ctx = context_for(base, task, pref, Path(workdir))
            with policy_override(policy):
                state = graph.invoke({"question": task.question}, context=ctx)
        records.append(finish_record(store, state["trajectory_id"], task, task.id, 0, pref))
    return records


# --- the run ---------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    """Train, evaluate before and after, print the table; ``--json FILE`` saves the numbers."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a few-minute end-to-end check")
    parser.add_argument("--out", type=Path, default=None, help="run folder (default: a temp dir)")
    parser.add_argument("--json", type=Path, default=None, help="write the numbers here")
    args = parser.parse_args(argv)
    setup = QUICK if args.quick else FULL
    start = time.perf_counter()

    import torch

    from podium.graph import TrajectoryStore
    from podium.graph.resources import tools_override
    from podium.training.eval import suites as suites
    from podium.training.grpo.trainer import build_trainer

    torch.manual_seed(setup.seed)
    out = args.out or Path(tempfile.mkdtemp(prefix="podium-learning-"))
    out.mkdir(parents=True, exist_ok=True)
    print(f"setup: {setup}\nrun folder: {out}", flush=True)
    train_suite, heldout_suite = register_routing_suites(setup)
    heldout = suites.load_suite(heldout_suite)
    train_qs = {t.question for t in suites.load_suite(train_suite)}
    assert not train_qs & {t.question for t in heldout}, "held-out questions leak into training"
    model_dir = policy_dir(setup.model)
    eval_store = TrajectoryStore(out / "heldout.sqlite")
    with tools_override(routing_tools()):
        trainer, reward = build_trainer(train_config(setup, model_dir, out, train_suite))
        model, tok = trainer.model, trainer.processing_class  # LoRA B = 0: the base policy
        t0 = time.perf_counter()
        before = run_heldout(model, tok, heldout, setup, eval_store)
        eval_s = time.perf_counter() - t0
        print(f"held-out before training: {eval_s:.0f} s ({eval_s / len(heldout):.0f} s a run)")
        t0 = time.perf_counter()
        trainer.train()
        train_s = time.perf_counter() - t0
        trainer.model.save_pretrained(out / "adapter")
        after = run_heldout(trainer.model, tok, heldout, setup, eval_store)
    summary = summarize(before, after, setup)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    result = {
        "setup": dataclasses.asdict(setup),
        "heldout": summary,
        "train": {
            "steps": trainer.state.global_step,
            "seconds": train_s,
            "groups": reward.groups,
            "dropped_groups": reward.dropped,
            "losses": losses,
            "rewards": [h.get("reward") for h in trainer.state.log_history if "reward" in h],
        },
        "wall_seconds": time.perf_counter() - start,
    }
    print_table(summary, len(heldout))
    print(
        f"trained {result['train']['steps']} steps in {train_s / 60:.1f} min "
        f"({reward.groups} groups, {reward.dropped} dropped for equal rewards); "
        f"total wall time {result['wall_seconds'] / 60:.1f} min",
        flush=True,
    )
    if args.json:
        with atomic_path(args.json) as tmp:
            tmp.write_text(json.dumps(result, indent=2))
    return 0


def cli(argv: list[str] | None = None) -> int:
    """:func:`main` with user mistakes (a model not installed, a bad config) as one line, exit 2."""
    from podium.tools import UserError

    try:
        return main(argv)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(cli())
