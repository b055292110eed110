"""GRPO training, fast parts: config errors, paper defaults, `podium collect` (fakes)."""

from __future__ import annotations

import json

import pytest

from podium.graph import TrajectoryStore, prompts
from podium.graph.testing import calc_tool, text_tool_call
from podium.training.eval import suites as suites
from podium.training.eval.run_context import MAX_TURNS
from podium.training.grpo.collect import stored_groups
from podium.training.grpo.config import TrainConfigError, load_train_config


def test_config_errors_are_one_line(tmp_path, train_config):
    with pytest.raises(TrainConfigError, match="does not exist"):
        load_train_config(tmp_path / "missing.toml")
    with pytest.raises(TrainConfigError, match="unknown key 'colour'"):
        train_config('model = "m"\noutput_dir = "o"\nstore = "s"\ncolour = 1\n')
    with pytest.raises(TrainConfigError, match=r"unknown key 'lr' in \[grpo\]"):
        train_config('model = "m"\noutput_dir = "o"\nstore = "s"\n[grpo]\nlr = 1\n')
    with pytest.raises(TrainConfigError, match="needs store"):
        train_config('model = "m"\noutput_dir = "o"\n')


def test_paper_preset_keeps_the_papers_values(tmp_path, train_config):
    cfg = train_config('model = "m"\noutput_dir = "o"\nstore = "s"\npreset = "paper"\n')
    args, lora = cfg.grpo_args(), cfg.lora_config()
    assert (args.num_generations, args.learning_rate, args.beta) == (8, 1e-6, 1e-4)
    assert (args.epsilon, args.epsilon_high) == (0.2, 0.28)
    assert (lora.r, lora.lora_alpha, lora.layers_to_transform) == (64, 128, None)
    assert set(lora.target_modules) == {"q_proj", "k_proj", "v_proj", "o_proj"}


def test_cpu_preset_is_the_default_and_adapts_the_last_layers(tmp_path, train_config):
    from peft import get_peft_model
    from transformers import AutoModelForCausalLM

    from podium.training.grpo.tiny import build_tiny_policy

    model_dir = build_tiny_policy(tmp_path / "deep", seed=0, num_layers=6)
    body = f'model = "{model_dir}"\noutput_dir = "o"\nstore = "s"\n'
    cfg = train_config(body)
    args, lora = cfg.grpo_args(), cfg.lora_config()
    assert (args.learning_rate, args.beta, lora.r, lora.lora_alpha) == (2e-4, 1e-4, 16, 32)
    assert list(lora.layers_to_transform) == [2, 3, 4, 5]  # the last 4 of 6
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(model_dir), lora)
    adapted = {
        n.split(".layers.")[1].split(".")[0] for n, _ in model.named_parameters() if "lora_" in n
    }
    assert adapted == {"2", "3", "4", "5"}
    every = train_config(body + "last_layers = 0\n[grpo]\nlearning_rate = 5e-5\n")
    assert every.lora_config().layers_to_transform is None
    assert every.grpo_args().learning_rate == 5e-5  # [grpo] still overrides the preset
    deep = train_config(body + "last_layers = 9\n").lora_config()
    assert list(deep.layers_to_transform) == list(range(6))  # past the depth: every layer


def test_bad_preset_and_layer_count_are_one_line_errors(tmp_path, train_config):
    with pytest.raises(TrainConfigError, match="unknown preset 'gpu'"):
        train_config('model = "m"\noutput_dir = "o"\nstore = "s"\npreset = "gpu"\n')
    cfg = train_config('model = "m"\noutput_dir = "o"\nstore = "s"\nlast_layers = -1\n')
    with pytest.raises(TrainConfigError, match="last_layers must be 0"):
        cfg.lora_config()
    cfg = train_config('model = "m"\noutput_dir = "o"\nstore = "s"\n')
    with pytest.raises(TrainConfigError, match="not a Hugging Face model folder"):
        cfg.lora_config()  # the cpu preset needs the model's depth


def test_missing_store_and_empty_store(tmp_path, tiny_policy_dir, calc_pool, train_config):
    from podium.training.grpo.trainer import build_trainer

    body = f'model = "{tiny_policy_dir}"\noutput_dir = "{tmp_path}/o"\nstore = "{tmp_path}/s.db"\n'
    with pytest.raises(TrainConfigError, match="run podium collect"):
        build_trainer(train_config(body))
    TrajectoryStore(tmp_path / "s.db")
    with pytest.raises(TrainConfigError, match="no group of 8"):
        build_trainer(train_config(body))


def test_podium_collect_stores_judged_groups(fake_graph, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from podium.studio.cli import app
    from podium.training.grpo import collect

    probed = []
    monkeypatch.setattr(collect, "check_endpoint", probed.append)  # the fake needs no server

    suite = tmp_path / "qs.jsonl"
    suite.write_text('{"id": "q1", "question": "What is 2+2?", "answer": "4"}\n')
    script = [
        text_tool_call("calc", expression="2+2"),
        text_tool_call("answer", text="4"),
        text_tool_call("answer", text="5"),
        text_tool_call("answer", text="4"),
    ]
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


def test_an_accelerate_cpu_launch_of_one_process_is_refused():
    """``accelerate launch --cpu --num_processes N`` sets MASTER_ADDR but starts one process."""
    from podium.training.grpo.trainer import check_launch

    cpu_alone = {"ACCELERATE_USE_CPU": "true", "MASTER_ADDR": "127.0.0.1"}
    with pytest.raises(TrainConfigError, match="--multi_gpu --num_processes N") as info:
        check_launch(cpu_alone)
    assert "\n" not in str(info.value) and "torchrun" in str(info.value)
    check_launch(cpu_alone | {"WORLD_SIZE": "2"})  # torchrun / --multi_gpu: N processes
    check_launch(cpu_alone | {"OMPI_COMM_WORLD_SIZE": "2"})  # --cpu with an MPI hostfile
    check_launch({"ACCELERATE_USE_CPU": "true"})  # one process, as asked
    check_launch({})  # plain python -m
