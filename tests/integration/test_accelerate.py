"""GRPO on 2 processes (``accelerate launch --multi_gpu --num_processes 2``: gloo on CPU) vs one.

The tiny random policy trains offline on stored groups. Two processes with 4 samples each
make the same global batch as one process with 8, so both must finish, score each stored run
once per step between them (never the same run on both), and save the adapter the
single-process :func:`train` saves.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from podium.graph import Context, TrajectoryStore, graph
from podium.graph.testing import text_tool_call
from podium.training.eval import suites
from podium.training.grpo.collect import finish_record
from podium.training.grpo.config import load_train_config
from podium.training.grpo.preferences import NO_PREFERENCE

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

GROUP, STEPS = 4, 2
LAUNCH = [sys.executable, "-m", "accelerate.commands.launch"]  # `accelerate launch`, PATH or not


def _store(fake_graph, path: Path) -> list[str]:
    """Two judged groups of 4 runs (2 right, 2 wrong answers each); their trajectory ids."""
    store = TrajectoryStore(path)
    for task in suites.load_suite("math", limit=2, seed=0):
        for i, text in enumerate([task.gold, "no idea", task.gold, "-1"]):
            _, ctx = fake_graph([text_tool_call("answer", text=text)], [])
            ctx |= {"trajectory_db": str(path), "profile": "environment"}
            state = graph.invoke({"question": task.question}, context=Context(**ctx))
            finish_record(store, state["trajectory_id"], task, f"{task.id}@0", i, NO_PREFERENCE)
    return [r["id"] for r in store.records("training")]


def _config(out: Path, model: Path, store: Path, batch: int) -> dict[str, Any]:
    """The training config of one run writing its adapter to ``out``."""
    # Plain SGD: Adam's first steps divide each gradient by its own size, so a last-bit difference
    # in a near-zero gradient (the all-reduce sums in another order) becomes a full-size step.
    grpo = {"num_generations": GROUP, "per_device_train_batch_size": batch, "max_steps": STEPS,
            "learning_rate": 0.5, "optim": "sgd", "logging_steps": 1}  # fmt: skip
    return {"model": str(model), "output_dir": str(out), "store": str(store),
            "profile": "environment", "grpo": grpo,
            "lora": {"r": 8, "lora_alpha": 16, "lora_dropout": 0.0}}  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _weights(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(folder / "adapter_model.safetensors")


def test_two_processes_train_the_adapter_one_process_trains(
    fake_graph, tmp_path, tiny_policy_dir, write_config
):
    from podium.training.grpo.trainer import train

    ids = _store(fake_graph, tmp_path / "runs.sqlite")
    assert len(ids) == 2 * GROUP
    runs = tmp_path / "runs.sqlite"
    single_cfg = _config(tmp_path / "one", tiny_policy_dir, runs, 2 * GROUP)
    single = train(load_train_config(write_config(tmp_path / "one.toml", single_cfg)))
    multi = _config(tmp_path / "two", tiny_policy_dir, runs, GROUP)
    multi_cfg = write_config(tmp_path / "two.toml", multi)
    proc = subprocess.run(
        [*LAUNCH, "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
         "--mixed_precision", "no", "--dynamo_backend", "no",
         "--main_process_port", str(_free_port()),
         "-m", "podium.training.grpo.trainer", "--config", str(multi_cfg)],
        capture_output=True, text=True, timeout=800,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    ranks = [json.loads(line) for line in lines if line.startswith('{"adapter_dir"')]
    assert sorted(r["rank"] for r in ranks) == [0, 1], proc.stdout[-4000:]  # both finished
    assert all(r["steps"] == STEPS == single.steps for r in ranks)
    # Each step, the two ranks scored disjoint halves that together are every stored run.
    for step in range(STEPS):
        halves = [set(r["trajectories"][step * GROUP : (step + 1) * GROUP]) for r in ranks]
        assert len(halves[0]) == len(halves[1]) == GROUP and not halves[0] & halves[1]
        assert halves[0] | halves[1] == set(ids)
        assert set(single.trajectories[step * 2 * GROUP : (step + 1) * 2 * GROUP]) == set(ids)
    assert sum(r["groups"] for r in ranks) == single.groups == 2 * STEPS
    # The saved adapter is the single-process one: same files, config and weights.
    one, two = tmp_path / "one", tmp_path / "two"
    names = {"adapter_config.json", "adapter_model.safetensors"}
    assert names <= {p.name for p in one.iterdir()} and names <= {p.name for p in two.iterdir()}
    configs = [json.loads((d / "adapter_config.json").read_text()) for d in (one, two)]
    for c in configs:  # PEFT writes the module set in hash order, which differs per process
        c["target_modules"] = sorted(c["target_modules"])
    assert configs[0] == configs[1]
    a, b = _weights(one), _weights(two)
    assert a.keys() == b.keys()
    moved = max(float(v.abs().max()) for k, v in a.items() if "lora_B" in k)  # B starts at 0
    assert moved > 0  # it trained
    worst = max(float((a[k] - b[k]).abs().max()) for k in a)
    assert worst < 1e-3 * moved, f"adapters differ by {worst} of a {moved} update"


def test_accelerate_cpu_flag_alone_is_refused_as_one_line(tmp_path):
    """``--cpu`` starts ONE process without an MPI hostfile: said, not silently trained on."""
    proc = subprocess.run(
        [*LAUNCH, "--num_processes", "2", "--cpu", "--num_machines", "1",
         "--mixed_precision", "no", "--dynamo_backend", "no",
         "--main_process_port", str(_free_port()),
         "-m", "podium.training.grpo.trainer", "--config", str(tmp_path / "none.toml")],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    errors = [line for line in proc.stderr.splitlines() if line.startswith("podium: error:")]
    assert proc.returncode != 0 and len(errors) == 1, proc.stderr[-2000:]
    assert "--multi_gpu --num_processes N" in errors[0]
    # The trainer exits 2 without a traceback; accelerate then reports its child's status.
    assert "grpo/trainer.py" not in proc.stderr and "exit status 2" in proc.stderr
