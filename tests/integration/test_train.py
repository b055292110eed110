"""GRPO training of the tiny policy: two offline and two online steps change the LoRA."""

from __future__ import annotations

import pytest

from podium.graph import Context, TrajectoryStore, graph
from podium.graph.testing import calc_tool, text_tool_call
from podium.training.eval import suites as suites
from podium.training.grpo.collect import finish_record, stored_groups
from podium.training.grpo.preferences import make_preference

POOL = {"calc": "local"}


def _collect_group(fake_graph, store_path, task, group_id, scripts):
    """Stored, judged trajectories of one group, run through the real graph and checker."""
    pref = make_preference("save_money", POOL)
    store = TrajectoryStore(store_path)
    for i, script in enumerate(scripts):
        _, ctx = fake_graph(script, [calc_tool()])
        ctx["trajectory_db"] = str(store_path)
        ctx |= {"preference": pref.instruction, "preference_vector": pref.vector}
        state = graph.invoke({"question": task.question}, context=Context(**ctx))
        finish_record(store, state["trajectory_id"], task, group_id, i, pref)


def _two_steps_that_move_the_lora(cfg):
    """Build the trainer, train two steps: finite losses, LoRA weights changed."""
    from podium.training.grpo.trainer import build_trainer

    trainer, reward = build_trainer(cfg)

    def lora() -> dict:
        return {k: v.detach().clone() for k, v in trainer.model.named_parameters() if "lora_" in k}

    before = lora()
    trainer.train()
    after = lora()
    assert trainer.state.global_step == 2
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert len(losses) == 2 and all(loss == loss and abs(loss) < 1e6 for loss in losses)
    assert any(not (before[k] == after[k]).all() for k in before)
    return trainer, reward


@pytest.mark.integration
def test_two_offline_grpo_steps_from_stored_trajectories(
    fake_graph, tmp_path, tiny_policy_dir, calc_pool, train_config
):
    store = tmp_path / "rollouts.sqlite"
    for task in suites.load_suite("math", limit=2, seed=0):
        gold = task.gold
        scripts = [
            [
                text_tool_call("calc", expression="1+1"),
                text_tool_call("answer", text=gold),
            ],  # right, with a tool call
            [text_tool_call("answer", text=gold)],  # right, cheaper
            [text_tool_call("answer", text="no idea")],  # wrong
            [
                text_tool_call("calc", expression="2*3"),
                text_tool_call("answer", text="-1"),
            ],  # wrong
        ]
        _collect_group(fake_graph, store, task, f"{task.id}@0", scripts)
    groups = stored_groups(TrajectoryStore(store))
    assert len(groups) == 2 and all(len(g) == 4 for g in groups.values())
    assert [r["training"]["verdict"]["correct"] for r in next(iter(groups.values()))] == [
        True,
        True,
        False,
        False,
    ]
    cfg = train_config(
        f'model = "{tiny_policy_dir}"\noutput_dir = "{tmp_path / "out"}"\nstore = "{store}"\n'
        "[grpo]\nnum_generations = 4\nper_device_train_batch_size = 4\nmax_steps = 2\n"
        "learning_rate = 0.01\n[lora]\nr = 8\nlora_alpha = 16\n",
    )
    trainer, reward = _two_steps_that_move_the_lora(cfg)
    assert reward.groups == 2 and reward.dropped == 0
    trainer.model.save_pretrained(cfg.output_dir)
    assert (tmp_path / "out" / "adapter_config.json").is_file()
    assert (tmp_path / "out" / "adapter_model.safetensors").is_file()


def _parity_check(task, answer, record):
    ok = len(answer.strip()) % 2 == 0
    return suites.Verdict(ok, float(ok), "even length")


@pytest.mark.integration
def test_two_online_grpo_steps_with_the_graph_in_the_loop(
    tmp_path, tiny_policy_dir, calc_pool, train_config
):
    # A suite whose checker the random tiny policy passes about half the time (even-length
    # answers), so groups have reward spread; everything else is the real loop.
    tasks = [suites.Task(f"even-{i}", "even", f"Say something, take {i}.") for i in range(2)]
    suites.register_suite("even", lambda limit=None, seed=0: tasks, _parity_check)
    store = tmp_path / "online.sqlite"
    cfg = train_config(
        f'mode = "online"\nmodel = "{tiny_policy_dir}"\noutput_dir = "{tmp_path / "out"}"\n'
        f'store = "{store}"\ntasks = "even"\nmax_turns = 2\nmax_new_tokens = 12\n'
        "[grpo]\nnum_generations = 4\nper_device_train_batch_size = 8\nmax_steps = 2\n"
        "learning_rate = 0.01\n[lora]\nr = 8\nlora_alpha = 16\n",
    )
    _, reward = _two_steps_that_move_the_lora(cfg)
    # Every rollout went through the graph and was judged and stored.
    records = TrajectoryStore(store).records("training")
    assert len(records) == 16
    assert all(r["turns"] >= 1 and r["training"]["verdict"] is not None for r in records)
    assert reward.groups == 4 and reward.dropped < 4
