"""The load harness (benchmarks/load.py) at N=8: every concurrent run stored, none mixed up."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from benchmarks.load import TOOL_TURNS, _use_calc_pool, measure, question, scripted_reply, verify
from podium.graph import Context, TrajectoryStore, graph

from .fake_openai import fake_openai

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(autouse=True)
def _no_podium_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Context fields and prices fall back to $PODIUM_*: keep the developer's env out."""
    for key in [k for k in os.environ if k.startswith("PODIUM_")]:
        monkeypatch.delenv(key)


@pytest.fixture(autouse=True)
def _restore_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    """The harness swaps the graph's pool for ``calc``; undo it after the test."""
    from podium.graph import resources

    monkeypatch.setattr(resources, "_pool", resources._pool)


def test_8_concurrent_runs_are_all_stored_with_their_own_answers(tmp_path: Path) -> None:
    result = measure(8, tmp_path)
    assert (result.stored, result.correct) == (8, 8)
    assert result.requests == 8 * (TOOL_TURNS + 1)  # every policy turn reached the server once
    assert len(result.latencies) == 8 and result.percentile(95) >= result.percentile(50) > 0


def test_the_check_sees_a_lost_or_swapped_trajectory(tmp_path: Path) -> None:
    _use_calc_pool()
    db = tmp_path / "t.sqlite"
    with fake_openai(reply=scripted_reply) as server:

        async def runs() -> list[dict]:
            ctx = Context(policy_base_url=server.base_url, trajectory_db=str(db), max_turns=4)
            return list(
                await asyncio.gather(
                    *(graph.ainvoke({"question": question(i)}, context=ctx) for i in range(3))
                )
            )

        outs = asyncio.run(runs())
    store = TrajectoryStore(db)
    questions = [question(i) for i in range(3)]
    assert verify(outs, questions, store) == 3
    swapped = [outs[1], outs[0], outs[2]]
    assert verify(swapped, questions, store) == 1
    with store._connect() as conn:
        conn.execute("DELETE FROM trajectories WHERE id = ?", (outs[2]["trajectory_id"],))
    assert verify(outs, questions, store) == 2
