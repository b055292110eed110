"""The learning report's statistics on cases computed by hand: Wilson, McNemar, PGR, AIQ."""

from __future__ import annotations

import math
import sys

import pytest

from podium.training.eval.metrics import (
    aiq,
    binomial_two_sided,
    mcnemar,
    pgr,
    router_summary,
    upper_hull,
    wilson,
)


def test_wilson_five_of_ten():
    # p = .5, z = 1.96: centre .5, half-width 1.96·sqrt(.025 + z²/400)/(1 + z²/10) = .2634
    low, high = wilson(5, 10)
    assert math.isclose(low, 0.2366, abs_tol=1e-4)
    assert math.isclose(high, 0.7634, abs_tol=1e-4)


def test_mcnemar_counts_only_discordant_pairs():
    before = [True, True, False, False, False, False]
    after = [True, False, True, True, True, False]
    # gained 3, lost 1: p = 2·(C(4,0) + C(4,1))/2⁴ = 10/16
    assert mcnemar(before, after) == {"gained": 3, "lost": 1, "p_value": 0.625}


def test_mcnemar_six_gains_no_loss_is_significant():
    result = mcnemar([False] * 6, [True] * 6)
    assert math.isclose(result["p_value"], 2 / 64)  # 2·(1/2)⁶


def test_mcnemar_without_discordant_pairs_is_one():
    assert mcnemar([True, False], [True, False])["p_value"] == 1.0
    with pytest.raises(ValueError):
        mcnemar([True], [True, False])


def test_binomial_without_scipy_matches(monkeypatch):
    with_scipy = [binomial_two_sided(k, 9) for k in range(10)]
    monkeypatch.setitem(sys.modules, "scipy.stats", None)  # the import now fails
    without = [binomial_two_sided(k, 9) for k in range(10)]
    assert all(math.isclose(a, b) for a, b in zip(with_scipy, without, strict=True))
    assert math.isclose(without[1], 2 * (1 + 9) / 512)


def test_pgr_places_a_router_between_weak_and_strong():
    assert math.isclose(pgr(0.6, weak=0.4, strong=0.8), 0.5)
    assert math.isclose(pgr(0.3, weak=0.4, strong=0.8), -0.25)
    assert math.isclose(pgr(0.9, weak=0.4, strong=0.8), 1.25)
    assert pgr(0.6, weak=0.5, strong=0.5) is None


def test_upper_hull_drops_dominated_and_concave_points():
    points = [(0.0, 0.2), (0.5, 0.1), (1.0, 0.3), (2.0, 0.7)]
    # (0.5, .1) costs more for less; (1, .3) lies under the segment (0, .2)–(2, .7) (.45 there)
    assert upper_hull(points) == [(0.0, 0.2), (2.0, 0.7)]


def test_aiq_is_the_mean_height_of_the_hull():
    points = [(0.0, 0.2), (1.0, 0.6), (2.0, 0.7)]
    # trapezoids (.2+.6)/2 + (.6+.7)/2 = 1.05 over a width of 2
    assert math.isclose(aiq(points, 0.0, 2.0), 0.525)
    # dominated or concave points change nothing
    assert math.isclose(aiq([*points, (1.0, 0.3), (1.5, 0.2)], 0.0, 2.0), 0.525)
    # beyond the dearest point the hull stays flat at .7: (1.05 + .7·2) over a width of 4
    assert math.isclose(aiq(points, 0.0, 4.0), (1.05 + 1.4) / 4)


def test_aiq_counts_nothing_left_of_the_cheapest_point():
    # only (1, .5) and (2, .5) rising no further: 0 over [0, 1], .5 over [1, 2]
    assert math.isclose(aiq([(1.0, 0.5), (2.0, 0.5)], 0.0, 2.0), 0.25)
    assert aiq([], 0.0, 1.0) == 0.0


def test_router_summary_splits_cost_and_counts_malformed_calls():
    rows = [
        {"correct": True, "status": "ok", "cost_usd": 0.3, "policy_cost_usd": 0.1,
         "tool_cost_usd": 0.2, "latency_s": 1.0, "tool_calls": ["python"], "turns": 2,
         "malformed_calls": 1},
        {"correct": False, "status": "ok", "cost_usd": 0.1, "policy_cost_usd": 0.1,
         "tool_cost_usd": 0.0, "latency_s": 1.0, "tool_calls": [], "turns": 1,
         "malformed_calls": 2},
    ]  # fmt: skip
    s = router_summary(rows)
    assert math.isclose(s["mean_policy_cost_usd"], 0.1)
    assert math.isclose(s["mean_tool_cost_usd"], 0.1)
    assert s["malformed_calls"] == 3 and s["turns_per_task"] == 1.5


def _rows(correct, cost, tool="python"):
    return [
        {"task_id": f"{'wiki' if i % 2 else 'math'}-{i}", "correct": c, "status": "ok",
         "cost_usd": cost, "policy_cost_usd": cost / 2, "tool_cost_usd": cost / 2,
         "latency_s": 1.0, "tool_calls": [tool], "turns": 2, "malformed_calls": 0}
        for i, c in enumerate(correct)
    ]  # fmt: skip


def test_learning_report_compares_the_policies_and_places_them():
    from podium.studio.reports.evaluation import learning_markdown
    from podium.training.eval.compare import learning_report

    rows = {
        "untrained": _rows([True, False, False, False], 2.0),
        "trained": _rows([True, True, True, False], 1.0, "local_search"),
        "strongest": _rows([True, True, False, False], 4.0, "ask_big"),
        "cheapest": _rows([False, False, False, False], 1.0, "ask_small"),
    }
    report = learning_report(rows)
    assert report["mcnemar"] == {"tasks": 4, "gained": 2, "lost": 0, "p_value": 0.5}
    by = report["routers"]
    assert list(by) == ["untrained", "trained", "strongest", "cheapest"]
    assert math.isclose(by["trained"]["pgr"], 1.5)  # (.75 - 0)/(.5 - 0)
    assert math.isclose(by["untrained"]["pgr"], 0.5)
    # fixed hull over [1, 4]: (1, 0) → (4, .5): mean height .25; with trained (1, .75) flat: .75
    assert math.isclose(report["hull"]["aiq"]["fixed"], 0.25)
    assert math.isclose(report["hull"]["aiq"]["fixed+trained"], 0.75)
    assert report["hull"]["on_hull"] == ["trained"]
    assert report["per_suite"]["trained"] == {"math": {"n": 2, "correct": 2},
                                              "wiki": {"n": 2, "correct": 1}}  # fmt: skip
    text = learning_markdown(report)
    assert "| trained | 3/4 (75%, " in text and "2 gained, 0 lost, exact p = 0.5" in text
    assert "local_search 100%" in text


def test_learning_report_leaves_out_routers_without_rows():
    from podium.studio.reports.evaluation import learning_markdown
    from podium.training.eval.compare import learning_report

    report = learning_report({"untrained": _rows([True, False], 1.0), "trained": [],
                              "oracle": _rows([True, True], 2.0)})  # fmt: skip
    assert list(report["routers"]) == ["untrained", "oracle"] and report["mcnemar"] is None
    assert "needs both policies" in learning_markdown(report)


def test_direct_comparison_pairs_the_policy_with_the_bare_model():
    from podium.studio.reports.evaluation import learning_markdown
    from podium.training.eval.compare import direct_comparison, learning_report

    policy = [r | {"router": "policy"} for r in _rows([True, True, False], 1.0)]
    direct = [r | {"router": "direct"} for r in _rows([True, False, True], 1.0, "none")]
    assert direct_comparison(policy) is None  # the bare model's rows are missing
    cmp = direct_comparison(policy + direct)
    assert cmp["policy"]["correct"] == 2 and cmp["direct"]["correct"] == 2
    assert cmp["mcnemar"] == {"tasks": 3, "gained": 1, "lost": 1, "p_value": 1.0}
    report = learning_report({"untrained": _rows([True], 1.0)}) | {"direct": cmp}
    assert "through podium 2/3 against the same model asked directly 2/3" in learning_markdown(
        report
    )
    stopped = direct_comparison(policy + direct[:2])  # stopped before the bare model's third
    assert stopped["policy"]["n"] == stopped["direct"]["n"] == stopped["mcnemar"]["tasks"] == 2
