"""GRPO training, fast parts: config errors, paper defaults, `podium collect` (fakes)."""

from __future__ import annotations

import json

import pytest

from podium.graph import TrajectoryStore
from podium.graph.testing import calc_tool, text_tool_call
from podium.training.eval import suites as suites
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


def test_paper_defaults(tmp_path, train_config):
    cfg = train_config('model = "m"\noutput_dir = "o"\nstore = "s"\n')
    args, lora = cfg.grpo_args(), cfg.lora_config()
    assert (args.num_generations, args.learning_rate, args.beta) == (8, 1e-6, 1e-4)
    assert (args.epsilon, args.epsilon_high) == (0.2, 0.28)
    assert (lora.r, lora.lora_alpha) == (64, 128)
    assert set(lora.target_modules) == {"q_proj", "k_proj", "v_proj", "o_proj"}


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
