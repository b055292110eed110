"""The real graph (embedded Qwen 0.5B policy) on a few generated ToolScale tasks."""

from __future__ import annotations

import pytest

from podium.graph import Context, graph
from podium.graph.trajectory import TrajectoryStore
from podium.training.eval.suites import toolscale as toolscale_suite
from podium.training.synth import toolscale

pytestmark = pytest.mark.integration


def test_the_embedded_policy_solves_some_tasks_end_to_end(tmp_path):
    # The shared embedded server (a second one on 2 cores slows both ~8x).
    env = toolscale.build_env("basketball", 0, tmp_path / "basketball.sqlite")
    tasks, _ = toolscale.synthesize(env, 40, 0)
    easy = [t for t in tasks if t.data["difficulty"] == "easy"][:3]
    solved = []
    for task in easy:
        overrides = toolscale_suite.prepare(task, tmp_path / "work")
        ctx = Context(**overrides, max_turns=4, trajectory_db=str(tmp_path / "traj.sqlite"))
        out = graph.invoke({"question": task.question}, context=ctx)
        record = TrajectoryStore(ctx.trajectory_db).get(out["trajectory_id"])
        verdict = toolscale_suite.check(task, out["answer"], record)
        print(task.id, task.question, "->", out["answer"], verdict)
        solved.append(verdict.correct)
    print(f"solved {sum(solved)}/{len(solved)}")
    assert any(solved)
