from __future__ import annotations

import json

import pytest

from podium.graph import Context, TrajectoryStore, graph, prompts
from podium.training.eval import suites as suites
from podium.training.eval.run_context import MAX_TURNS
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


def test_paper_preset_keeps_the_papers_values(tmp_path):
    cfg = _config(tmp_path, 'model = "m"\noutput_dir = "o"\nstore = "s"\npreset = "paper"\n')
    args, lora = cfg.grpo_args(), cfg.lora_config()
    assert (args.num_generations, args.learning_rate, args.beta) == (8, 1e-6, 1e-4)
    assert (args.epsilon, args.epsilon_high) == (0.2, 0.28)
    assert (lora.r, lora.lora_alpha, lora.layers_to_transform) == (64, 128, None)
    assert set(lora.target_modules) == {"q_proj", "k_proj", "v_proj", "o_proj"}


def test_cpu_preset_is_the_default_and_adapts_the_last_layers(tmp_path):
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    from podium.training.grpo.tiny import build_tiny_policy

    model_dir = build_tiny_policy(tmp_path / "deep", seed=0, num_layers=6)
    body = f'model = "{model_dir}"\noutput_dir = "o"\nstore = "s"\n'
    cfg = _config(tmp_path, body)
    args, lora = cfg.grpo_args(), cfg.lora_config()
    assert (args.learning_rate, args.beta, lora.r, lora.lora_alpha) == (2e-4, 1e-4, 16, 32)
    assert list(lora.layers_to_transform) == [2, 3, 4, 5]  # the last 4 of 6
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(model_dir), lora)
    adapted = {
        n.split(".layers.")[1].split(".")[0] for n, _ in model.named_parameters() if "lora_" in n
    }
    assert adapted == {"2", "3", "4", "5"}
    every = _config(tmp_path, body + "last_layers = 0\n[grpo]\nlearning_rate = 5e-5\n")
    assert every.lora_config().layers_to_transform is None
    assert every.grpo_args().learning_rate == 5e-5  # [grpo] still overrides the preset
    deep = _config(tmp_path, body + "last_layers = 9\n").lora_config()
    assert list(deep.layers_to_transform) == list(range(6))  # past the depth: every layer


def test_bad_preset_and_layer_count_are_one_line_errors(tmp_path):
    with pytest.raises(TrainConfigError, match="unknown preset 'gpu'"):
        _config(tmp_path, 'model = "m"\noutput_dir = "o"\nstore = "s"\npreset = "gpu"\n')
    cfg = _config(tmp_path, 'model = "m"\noutput_dir = "o"\nstore = "s"\nlast_layers = -1\n')
    with pytest.raises(TrainConfigError, match="last_layers must be 0"):
        cfg.lora_config()
    cfg = _config(tmp_path, 'model = "m"\noutput_dir = "o"\nstore = "s"\n')
    with pytest.raises(TrainConfigError, match="not a Hugging Face model folder"):
        cfg.lora_config()  # the cpu preset needs the model's depth


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
    # Runs are built as evaluation builds them: its turn limit, and no preference stated.
    assert all(r["context"]["max_turns"] == MAX_TURNS and r["preference"] == "" for r in group)
    assert {(i["preference"], i["preference_kind"]) for i in info} == {("", "none")}
    assert prompts.NO_PREFERENCE in policy.prompts[0][0].content


def test_collection_runs_the_prompt_and_tools_evaluation_runs(fake_graph, tmp_path, monkeypatch):
    import asyncio

    from podium.training.eval.runner import EvalConfig, evaluate
    from podium.training.grpo import collect

    monkeypatch.setattr(collect, "check_endpoint", lambda url: None)
    judged, ctx = fake_graph(["no call"], [calc_tool()])
    evaluate(EvalConfig("fc", tmp_path / "eval", limit=1, context=ctx, progress=False))
    rolled, ctx = fake_graph(["no call", "no call"], [calc_tool()])
    cfg = collect.CollectConfig(
        tasks="fc", out=str(tmp_path / "c.sqlite"), group_size=2, limit=1, concurrency=1,
        policy_base_url=ctx["policy_base_url"],
    )  # fmt: skip
    asyncio.run(collect.collect(cfg))

    # The same system prompt (preference, budget, turns) and the task's own functions.
    def text(policy):
        return [(m.type, m.content) for m in policy.prompts[0]]

    assert text(rolled) == text(judged) and rolled.schemas[0] == judged.schemas[0]
    assert judged.bound[0] == ["answer", "calculate_triangle_area"]
    sampled = collect.CollectConfig(**{**cfg.__dict__, "sample_preferences": True})
    sampled.out = str(tmp_path / "s.sqlite")
    rolled, _ = fake_graph(["no call", "no call"], [calc_tool()])
    asyncio.run(collect.collect(sampled))
    assert text(rolled)[0] != text(judged)[0]  # the paper's per-task preference


def test_collect_refuses_a_conversation_suite(tmp_path):
    import asyncio

    from podium.training.grpo.collect import CollectConfig, CollectError, collect

    cfg = CollectConfig(tasks="tau2", out=str(tmp_path / "c.sqlite"), limit=1)
    with pytest.raises(CollectError, match="conversation"):
        asyncio.run(collect(cfg))
