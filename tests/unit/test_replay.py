"""Counterfactual replay: a stored run forked before a turn, finished another way."""

from __future__ import annotations

import asyncio
import json
import sys

import pytest
from langchain_core.messages import AIMessage

from podium.graph import Context, TrajectoryStore
from podium.graph.testing import calc_tool, expert_tool
from podium.graph.trajectory import FORK_KEY
from podium.studio.durable import checkpoint_db, durable_graph, run_thread
from podium.studio.replay import ReplayError, fork_thread
from podium.studio.variants import Variant, VariantError, parse_variant


def call(name, **args):
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": f"c_{name}"}])


@pytest.fixture
def stored_run(fake_graph, tmp_path, monkeypatch):
    """A finished three-turn run on thread ``t`` (calc, calc, answer); the policy has two more
    replies scripted for a fork from turn 2: a calc call (swapped or not) and an answer."""
    monkeypatch.setenv("PODIUM_CHECKPOINT_DB", str(tmp_path / "cp.sqlite"))
    script = [
        call("calc", expression="6*7"),
        call("calc", expression="42*2"),
        "84",
        call("calc", expression="2*42"),
        "eighty-four",
    ]
    policy, base = fake_graph(script, [calc_tool(0.001), expert_tool()])
    ctx = Context(**base)
    state, _ = asyncio.run(run_thread("t", "What is 6 * 7 * 2?", ctx, None, lambda _: None))
    assert state["answer"] == "84" and len(policy.prompts) == 3
    return policy, TrajectoryStore(base["trajectory_db"]), state


async def _head(thread):
    async with durable_graph(checkpoint_db()) as graph:
        snap = await graph.aget_state({"configurable": {"thread_id": thread}})
        return snap.config["configurable"]["checkpoint_id"], snap.values


def test_a_fork_at_turn_2_reuses_the_prefix_and_leaves_the_original_untouched(stored_run):
    policy, store, state = stored_run
    original = store.get(state["trajectory_id"])
    head = asyncio.run(_head("t"))

    fork = asyncio.run(fork_thread("t", 2, Variant(swap=("calc", "oracle"))))

    assert len(policy.prompts) == 5  # only turns 2 and 3 ran again
    branch = fork.branch
    assert branch["id"] != original["id"] and len(store) == 2
    # The prefix (turn 1 and its calc call) is carried over, not billed again.
    prefix = original["ledger"][:2]
    assert [e["turn"] for e in prefix] == [1, 1] and fork.prefix_entries == 2
    assert branch["ledger"][:2] == prefix
    assert all(e["turn"] >= 2 for e in branch["ledger"][2:])
    assert [e["name"] for e in branch["ledger"] if e["kind"] == "tool"] == ["calc", "oracle"]
    assert branch["answer"] == "eighty-four"
    assert branch["cost_usd"] == pytest.approx(sum(e["cost_usd"] for e in branch["ledger"]))
    link = store.get(branch["id"])[FORK_KEY]
    assert link["trajectory_id"] == original["id"] and link["from_turn"] == 2
    assert link["thread_id"] == "t" and link["fork_thread_id"] == fork.fork_thread_id
    # The original: same record, same thread head.
    assert store.get(original["id"]) == original
    assert asyncio.run(_head("t")) == head
    assert asyncio.run(_head(fork.fork_thread_id))[1]["trajectory_id"] == branch["id"]


def test_a_fork_under_a_fixed_router_answers_with_the_last_observation(stored_run):
    fork = asyncio.run(fork_thread("t", 2, Variant(router="cheapest")))
    tools = [e["name"] for e in fork.branch["ledger"] if e["kind"] == "tool"]
    assert tools == ["calc"] and fork.branch["answer"] == "42"  # the calc result it saw
    assert fork.branch[FORK_KEY]["variant"] == "router=cheapest"


@pytest.mark.parametrize(
    ("turn", "variant", "error", "match"),
    [
        (4, Variant(router="cheapest"), ReplayError, "turns 1..3, not 4"),
        (0, Variant(router="cheapest"), ReplayError, "--from-turn between 1 and 3"),
        (2, Variant(router="smartest"), VariantError, "unknown router 'smartest'"),
        (2, Variant(swap=("calc", "abacus")), VariantError, "unknown tool 'abacus'"),
    ],
)
def test_impossible_replays_fail_before_forking(stored_run, turn, variant, error, match):
    _, store, _ = stored_run
    with pytest.raises(error, match=match):
        asyncio.run(fork_thread("t", turn, variant))
    assert len(store) == 1


def test_an_unknown_thread_is_refused(stored_run):
    with pytest.raises(ReplayError, match="no thread 'nope'"):
        asyncio.run(fork_thread("nope", 1, Variant(router="cheapest")))


def test_the_flags_name_exactly_one_choice():
    with pytest.raises(VariantError, match="exactly one"):
        parse_variant("cheapest", "", "calc=oracle")
    with pytest.raises(VariantError, match="expected TOOL=OTHER"):
        parse_variant("", "", "calc")
    assert parse_variant("", "", "calc = oracle").swap == ("calc", "oracle")


def test_the_cli_prints_both_branches_and_fails_in_one_line(stored_run, monkeypatch, capsys):
    from podium.studio import cli

    def podium(*args):
        monkeypatch.setattr(sys, "argv", ["podium", *args])
        with pytest.raises(SystemExit) as exit_:
            cli.main()
        return exit_.value.code

    assert podium("replay", "t", "--from-turn", "2", "--swap", "calc=oracle", "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["original"]["tool_calls"] == ["calc", "calc"]
    assert shown["branch"]["tool_calls"] == ["calc", "oracle"]
    assert podium("replay", "t", "--from-turn", "9", "--router", "cheapest") == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "not 9" in err


def test_eval_replay_asks_every_stored_question_again_beside_what_was_served(
    fake_graph, tmp_path, monkeypatch, capsys
):
    from podium.graph import graph
    from podium.studio import cli

    script = [call("calc", expression="6*7"), "42", "hello"]
    _, base = fake_graph(script, [calc_tool(0.001), expert_tool()])
    for question in ("What is 6 * 7?", "Say hello"):
        graph.invoke({"question": question}, context=Context(**base))
    monkeypatch.setenv("PODIUM_POLICY_BASE_URL", base["policy_base_url"])
    monkeypatch.setenv("PODIUM_TRAJECTORY_DB", str(tmp_path / "replayed.sqlite"))
    out = tmp_path / "ev"
    argv = ["podium", "eval", "--replay", base["trajectory_db"], "--router", "cheapest",
            "--out", str(out), "--quiet"]  # fmt: skip
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code == 0, capsys.readouterr().err
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary["routers"]) == {"cheapest", "stored"}
    assert summary["routers"]["stored"]["tool_calls"] == {"calc": 1}
    assert summary["routers"]["cheapest"]["tool_calls"] == {"oracle": 2}
    assert summary["routers"]["stored"]["accuracy"] == 1.0  # agrees with itself
    assert summary["routers"]["cheapest"]["accuracy"] == 0.0  # "the oracle says 42" differs
    assert len(TrajectoryStore(base["trajectory_db"])) == 2  # the replayed store is untouched


def test_a_policy_adapter_loads_on_its_base_model_and_bad_ones_are_one_line(
    tiny_policy_dir, tmp_path
):
    from peft import PeftModel

    from podium.studio.variants import adapter_policy
    from podium.training.grpo.tiny import build_tiny_lora

    lora = build_tiny_lora(tiny_policy_dir, tmp_path / "lora")
    policy = adapter_policy(lora)
    assert isinstance(policy.model, PeftModel) and policy.temperature == 0.0
    with pytest.raises(VariantError, match=r"no adapter_config\.json"):
        adapter_policy(tmp_path)
    config = json.loads((lora / "adapter_config.json").read_text())
    (lora / "adapter_config.json").write_text(json.dumps(config | {"base_model_name_or_path": "x"}))
    with pytest.raises(VariantError, match="base model 'x' is not a local directory"):
        adapter_policy(lora)
