"""Offline GRPO starting from an RFT adapter, on the tiny policy."""

from __future__ import annotations

import json

import pytest

from podium.graph import Context, TrajectoryStore, graph
from podium.graph.testing import calc_tool
from podium.training.eval import suites
from podium.training.grpo.collect import finish_record
from podium.training.grpo.config import TrainConfigError, load_train_config
from podium.training.grpo.preferences import Preference

CALL = '<tool_call>\n{"name": "calc", "arguments": {"expression": "%s"}}\n</tool_call>'


def _answer(text: str) -> str:
    call = json.dumps({"name": "answer", "arguments": {"text": text}})
    return f"<tool_call>\n{call}\n</tool_call>"


def _exact(task, answer, record):
    ok = answer.strip() == task.gold
    return suites.Verdict(ok, float(ok), "exact")


def _store(fake_graph, path, scripts):
    """Judged runs of one task through the real graph and the jsonl checker; returns prompts."""
    task = suites.Task("q1", "rft-exact", "What is 2+2?", gold="4")
    suites.register_suite("rft-exact", lambda limit=None, seed=0: [task], _exact)
    pref = Preference("Be accurate.", {"outcome": 1.0}, "accuracy")
    store = TrajectoryStore(path)
    prompts = []
    for i, script in enumerate(scripts):
        policy, ctx = fake_graph(script, [calc_tool()])
        ctx["trajectory_db"] = str(path)
        state = graph.invoke({"question": task.question}, context=Context(**ctx))
        finish_record(store, state["trajectory_id"], task, "q1@0", i, pref)
        prompts.append(policy.prompts)
    return prompts


def _config(tmp_path, body):
    path = tmp_path / "train.toml"
    path.write_text(body)
    return load_train_config(path)


@pytest.mark.integration
def test_offline_grpo_starts_from_an_rft_adapter(fake_graph, tmp_path, tiny_policy_dir, calc_pool):
    from safetensors.torch import load_file

    from podium.training.grpo.tiny import build_tiny_lora
    from podium.training.grpo.trainer import build_trainer

    start = build_tiny_lora(tiny_policy_dir, tmp_path / "rft-adapter", r=8)
    store = tmp_path / "runs.sqlite"
    _store(fake_graph, store, [[_answer("4")], [_answer("5")]])
    cfg = _config(
        tmp_path,
        f'model = "{tiny_policy_dir}"\noutput_dir = "{tmp_path / "out"}"\nstore = "{store}"\n'
        f'init_adapter = "{start}"\n[grpo]\nnum_generations = 2\n'
        "per_device_train_batch_size = 2\nmax_steps = 1\nlearning_rate = 0.01\n",
    )
    trainer, _ = build_trainer(cfg)
    saved = load_file(str(start / "adapter_model.safetensors"))
    params = trainer.model.named_parameters()
    live = {
        k: v.detach().clone() for k, v in params if ".default." in k
    }  # TRL adds "ref": the KL anchor
    assert len(live) == len(saved)
    for key, value in saved.items():  # the run starts from the adapter's weights
        name = key.replace(".weight", ".default.weight")
        assert (live[name] == value).all(), key
    trainer.train()
    after = {k: v.detach() for k, v in trainer.model.named_parameters() if ".default." in k}
    assert any(not (after[k] == live[k]).all() for k in live)
    bad = build_tiny_lora(tiny_policy_dir, tmp_path / "r4", r=4)
    (bad / "adapter_config.json").write_text(
        (bad / "adapter_config.json").read_text().replace('"r": 4', '"r": 2')
    )
    cfg.init_adapter = str(bad)
    with pytest.raises(TrainConfigError, match="does not fit model"):
        build_trainer(cfg)
