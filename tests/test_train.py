from __future__ import annotations

import json

import pytest

from podium.graph import Context, TrajectoryStore, graph
from podium.training.eval import suites as suites
from podium.training.grpo.collect import finish_record, stored_groups
from podium.training.grpo.config import TrainConfigError, load_train_config
from podium.training.grpo.preferences import make_preference

from .fakes import calc_tool

POOL = {"calc": "local"}


def _answer(text: str) -> str:
    call = json.dumps({"name": "answer", "arguments": {"text": text}})
    return f"<tool_call>\n{call}\n</tool_call>"


CALL = '<tool_call>\n{"name": "calc", "arguments": {"expression": "%s"}}\n</tool_call>'


@pytest.fixture
def calc_pool(monkeypatch):
    from podium.graph import resources

    tools = (calc_tool(),)
    monkeypatch.setattr(resources, "_pool", lambda *a, **k: tools)
    return tools


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


def _config(tmp_path, body: str):
    path = tmp_path / "train.toml"
    path.write_text(body)
    return load_train_config(path)


def _lora_weights(model):
    return {k: v.detach().clone() for k, v in model.named_parameters() if "lora_" in k}


@pytest.mark.integration
def test_two_offline_grpo_steps_from_stored_trajectories(
    fake_graph, tmp_path, tiny_policy_dir, calc_pool
):
    from podium.training.grpo.trainer import build_trainer

    store = tmp_path / "rollouts.sqlite"
    for task in suites.load_suite("math", limit=2, seed=0):
        gold = task.gold
        scripts = [
            [CALL % "1+1", _answer(gold)],  # right, with a tool call
            [_answer(gold)],  # right, cheaper
            [_answer("no idea")],  # wrong
            [CALL % "2*3", _answer("-1")],  # wrong
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
    cfg = _config(
        tmp_path,
        f'model = "{tiny_policy_dir}"\noutput_dir = "{tmp_path / "out"}"\nstore = "{store}"\n'
        "[grpo]\nnum_generations = 4\nper_device_train_batch_size = 4\nmax_steps = 2\n"
        "learning_rate = 0.01\n[lora]\nr = 8\nlora_alpha = 16\n",
    )
    trainer, reward = build_trainer(cfg)
    before = _lora_weights(trainer.model)
    trainer.train()
    after = _lora_weights(trainer.model)
    assert trainer.state.global_step == 2
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert len(losses) == 2 and all(loss == loss and abs(loss) < 1e6 for loss in losses)
    assert any(not (before[k] == after[k]).all() for k in before)
    assert reward.groups == 2 and reward.dropped == 0
    trainer.model.save_pretrained(cfg.output_dir)
    assert (tmp_path / "out" / "adapter_config.json").is_file()
    assert (tmp_path / "out" / "adapter_model.safetensors").is_file()


def _parity_check(task, answer, record):
    ok = len(answer.strip()) % 2 == 0
    return suites.Verdict(ok, float(ok), "even length")


@pytest.mark.integration
def test_two_online_grpo_steps_with_the_graph_in_the_loop(tmp_path, tiny_policy_dir, calc_pool):
    from podium.training.grpo.trainer import build_trainer

    # A suite whose checker the random tiny policy passes about half the time (even-length
    # answers), so groups have reward spread; everything else is the real loop.
    tasks = [suites.Task(f"even-{i}", "even", f"Say something, take {i}.") for i in range(2)]
    suites.register_suite("even", lambda limit=None, seed=0: tasks, _parity_check)
    store = tmp_path / "online.sqlite"
    cfg = _config(
        tmp_path,
        f'mode = "online"\nmodel = "{tiny_policy_dir}"\noutput_dir = "{tmp_path / "out"}"\n'
        f'store = "{store}"\ntasks = "even"\nmax_turns = 2\nmax_new_tokens = 12\n'
        "[grpo]\nnum_generations = 4\nper_device_train_batch_size = 8\nmax_steps = 2\n"
        "learning_rate = 0.01\n[lora]\nr = 8\nlora_alpha = 16\n",
    )
    trainer, reward = build_trainer(cfg)
    before = _lora_weights(trainer.model)
    trainer.train()
    after = _lora_weights(trainer.model)
    assert trainer.state.global_step == 2
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    assert len(losses) == 2 and all(loss == loss and abs(loss) < 1e6 for loss in losses)
    assert any(not (before[k] == after[k]).all() for k in before)
    # Every rollout went through the graph and was judged and stored.
    records = TrajectoryStore(store).records("training")
    assert len(records) == 16
    assert all(r["turns"] >= 1 and r["training"]["verdict"] is not None for r in records)
    assert reward.groups == 4 and reward.dropped < 4


def test_config_errors_are_one_line(tmp_path):
    with pytest.raises(TrainConfigError, match="does not exist"):
        load_train_config(tmp_path / "missing.toml")
    with pytest.raises(TrainConfigError, match="unknown key 'colour'"):
        _config(tmp_path, 'model = "m"\noutput_dir = "o"\nstore = "s"\ncolour = 1\n')
    with pytest.raises(TrainConfigError, match=r"unknown key 'lr' in \[grpo\]"):
        _config(tmp_path, 'model = "m"\noutput_dir = "o"\nstore = "s"\n[grpo]\nlr = 1\n')
    with pytest.raises(TrainConfigError, match="needs store"):
        _config(tmp_path, 'model = "m"\noutput_dir = "o"\n')


def test_paper_defaults(tmp_path):
    cfg = _config(tmp_path, 'model = "m"\noutput_dir = "o"\nstore = "s"\n')
    args, lora = cfg.grpo_args(), cfg.lora_config()
    assert (args.num_generations, args.learning_rate, args.beta) == (8, 1e-6, 1e-4)
    assert (args.epsilon, args.epsilon_high) == (0.2, 0.28)
    assert (lora.r, lora.lora_alpha) == (64, 128)
    assert set(lora.target_modules) == {"q_proj", "k_proj", "v_proj", "o_proj"}


def test_missing_store_and_empty_store(tmp_path, tiny_policy_dir, calc_pool):
    from podium.training.grpo.trainer import build_trainer

    body = f'model = "{tiny_policy_dir}"\noutput_dir = "{tmp_path}/o"\nstore = "{tmp_path}/s.db"\n'
    with pytest.raises(TrainConfigError, match="run podium collect"):
        build_trainer(_config(tmp_path, body))
    TrajectoryStore(tmp_path / "s.db")
    with pytest.raises(TrainConfigError, match="no group of 8"):
        build_trainer(_config(tmp_path, body))


def test_podium_collect_stores_judged_groups(fake_graph, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from podium.studio.cli import app
    from podium.training.grpo import collect

    probed = []
    monkeypatch.setattr(collect, "check_endpoint", probed.append)  # the fake needs no server

    suite = tmp_path / "qs.jsonl"
    suite.write_text('{"id": "q1", "question": "What is 2+2?", "answer": "4"}\n')
    script = [CALL % "2+2", _answer("4"), _answer("5"), _answer("4")]
    policy, ctx = fake_graph(script, [calc_tool()])
    store = tmp_path / "rollouts.sqlite"
    args = ["collect", "--tasks", f"jsonl:{suite}", "--group-size", "3", "--out", str(store)]
    args += ["--concurrency", "1", "--json", "--policy-base-url", ctx["policy_base_url"]]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    assert summary == {"tasks": 1, "runs": 3, "correct": 2, "errors": 0, "store": str(store)}
    groups = stored_groups(TrajectoryStore(store))
    (group,) = groups.values()
    info = [r["training"] for r in group]
    assert [i["sample"] for i in info] == [0, 1, 2]
    assert {i["task_id"] for i in info} == {"q1"}
    assert len({i["preference"] for i in info}) == 1  # one preference per group
    assert [i["verdict"]["correct"] for i in info] == [True, False, True]
    assert all(r["context"]["preference_vector"] == info[0]["preference_vector"] for r in group)
    assert len(policy.prompts) == 4 and probed == [ctx["policy_base_url"]]
