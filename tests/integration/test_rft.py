"""Offline GRPO starting from an RFT adapter, on the tiny policy."""

from __future__ import annotations

import json

import pytest

from podium.training.grpo.config import TrainConfigError

CALL = '<tool_call>\n{"name": "calc", "arguments": {"expression": "%s"}}\n</tool_call>'


def _answer(text: str) -> str:
    call = json.dumps({"name": "answer", "arguments": {"text": text}})
    return f"<tool_call>\n{call}\n</tool_call>"


@pytest.mark.integration
def test_offline_grpo_starts_from_an_rft_adapter(
    fake_graph, tmp_path, tiny_policy_dir, calc_pool, judged_runs, train_config
):
    from safetensors.torch import load_file

    from podium.training.grpo.tiny import build_tiny_lora
    from podium.training.grpo.trainer import build_trainer

    start = build_tiny_lora(tiny_policy_dir, tmp_path / "rft-adapter", r=8)
    store = tmp_path / "runs.sqlite"
    judged_runs(store, [[_answer("4")], [_answer("5")]])
    cfg = train_config(
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
