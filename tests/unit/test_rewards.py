from __future__ import annotations

import pytest

from podium.training.grpo.preferences import (
    as_list,
    make_preference,
    preference_kinds,
    sample_preference,
)
from podium.training.grpo.rewards import (
    GroupReward,
    Measure,
    RewardConfig,
    combined_rewards,
    efficiency_rewards,
    group_advantages,
    measure,
    normalised_matrix,
    outcome_rewards,
    preference_rewards,
    score_groups,
)

# The paper's example pool: web search, local search and four models (two local, two API).
PAPER_POOL = {
    "web_search": "remote",
    "local_search": "local",
    "qwen_math_7b": "local",
    "qwen_coder_32b": "local",
    "gpt5": "remote",
    "gpt5_mini": "remote",
}
TOOLS = list(PAPER_POOL)


def test_avoid_api_vector_is_the_papers_shape():
    pref = make_preference("avoid_api", PAPER_POOL)
    # [web, local, m1, m2, m3, m4, outcome, cost, latency]
    assert as_list(pref.vector, TOOLS) == [0, 1, 1, 1, 0, 0, 1, 0, 0]
    assert "local" in pref.instruction.lower()


def test_paper_example_ordering_avoid_api():
    pref = make_preference("avoid_api", PAPER_POOL).vector
    local_right = Measure({"local_search": 2, "qwen_math_7b": 1}, True, 0.0001, 3.0)
    api_right = Measure({"web_search": 1, "gpt5": 2}, True, 0.02, 9.0)
    local_wrong = Measure({"local_search": 3}, False, 0.0001, 2.0)
    no_tools_right = Measure({}, True, 0.00005, 1.0)
    r = combined_rewards([local_right, api_right, local_wrong, no_tools_right], TOOLS, pref)
    assert r[0] > r[1] > r[2] == 0.0
    assert r[0] > r[3]


def test_cheap_obedient_beats_expensive_beats_wrong():
    pool = {"python": "local", "ask_gpt5": "remote"}
    pref = make_preference("save_money", pool).vector | {"python": 1.0}
    cheap = Measure({"python": 1}, True, 0.0002, 2.0)
    expensive = Measure({"ask_gpt5": 1}, True, 0.05, 2.0)
    wrong = Measure({"python": 1}, False, 0.0001, 1.0)
    wrong_cheapest = Measure({}, False, 0.0, 0.5)
    r = combined_rewards([cheap, expensive, wrong, wrong_cheapest], list(pool), pref)
    assert r[0] > r[1] > r[2]
    assert r[2] == r[3] == 0.0


def test_cost_and_latency_enter_so_cheaper_and_faster_is_higher():
    # The original code rewarded *higher* cost; here the cheaper run of two correct ones wins.
    pref = {"cost": 1.0, "latency": 1.0}
    cheap_fast = Measure({}, True, 0.001, 1.0)
    dear_slow = Measure({}, True, 0.01, 10.0)
    assert combined_rewards([cheap_fast, dear_slow], [], pref) == [2.0, 0.0]
    assert efficiency_rewards([cheap_fast, dear_slow]) == [1.0, 0.0]


def test_normalisation_is_zero_where_max_equals_min():
    rows = normalised_matrix([Measure({"a": 1}, True, 1.0, 1.0)] * 3, ["a"])
    assert rows == [[0.0, 0.0, 0.0, 0.0]] * 3


def test_component_rewards():
    group = [Measure({"a": 0}, True, 1.0, 1.0), Measure({"a": 4}, False, 2.0, 3.0)]
    assert outcome_rewards(group) == [1.0, 0.0]
    assert preference_rewards(group, ["a"], {"a": 2.0}) == [0.0, 2.0]


def test_equal_reward_group_is_dropped_and_counted():
    same = [Measure({}, True, 0.001, 1.0)] * 4
    varied = [Measure({}, True, 0.001, 1.0), Measure({}, False, 0.001, 1.0)] * 2
    cfg = RewardConfig()
    scores = score_groups(
        {"g-same": same, "g-varied": varied}, [], {"g-same": {}, "g-varied": {}}, cfg
    )
    assert scores.dropped == ["g-same"]
    assert scores.advantages["g-varied"] == pytest.approx([1.0, -1.0, 1.0, -1.0])
    assert group_advantages([0.5, 0.5, 0.5], 0.1) is None
    assert group_advantages([0.0, 0.1], 0.1) is None  # std 0.05 < 0.1


def test_trl_reward_function_returns_none_for_dropped_groups():
    reward = GroupReward(["python"])
    right = Measure({"python": 1}, True, 0.001, 1.0).__dict__
    wrong = Measure({"python": 1}, False, 0.001, 1.0).__dict__
    logged = {}
    out = reward(
        prompts=["t1"] * 4,
        completions=[""] * 4,
        podium_measure=[right, wrong, right, right],
        podium_group=["a", "a", "b", "b"],
        podium_preference=[{"outcome": 1.0}] * 4,
        log_metric=lambda k, v: logged.setdefault(k, v),
    )
    assert out == [1.0, 0.0, None, None]
    assert reward.dropped == 1 and reward.groups == 2
    assert logged["podium/dropped_groups"] == 1.0


def test_measure_reads_the_stored_record():
    record = {
        "cost_usd": 0.25,
        "latency_s": 4.0,
        "policy_turns": [
            {"raw": "", "calls": [{"id": "1", "tool": "python", "args": {}}]},
            {"raw": "", "calls": [{"id": "2", "tool": "answer", "args": {"text": "4"}}]},
        ],
        "training": {"verdict": {"correct": True, "score": 1.0, "detail": ""}},
    }
    m = measure(record)
    assert m == Measure({"python": 1}, True, 0.25, 4.0, 1.0)
    assert not measure({**record, "training": {}}).correct


def test_preferences_are_seeded_per_task_and_valid():
    pool = {"python": "local", "ask_gpt5": "remote"}
    a = sample_preference("math-0001", pool, seed=3)
    assert a == sample_preference("math-0001", pool, seed=3)
    kinds = {sample_preference(f"t-{i}", pool).kind for i in range(60)}
    assert kinds == set(preference_kinds(pool))
    for i in range(20):
        pref = sample_preference(f"t-{i}", pool)
        assert set(pref.vector) == {"python", "ask_gpt5", "outcome", "cost", "latency"}
        assert pref.vector["outcome"] == 1.0
    with pytest.raises(ValueError, match="unknown preference kind"):
        make_preference("nope", pool)
