"""Headless Chromium opens report.html and a trajectory page: key elements render.

Screenshots are kept for a person to look at in ``$PODIUM_SCREENSHOTS`` (default:
``~/.cache/podium/screenshots``, i.e. podium's cache dir); the test prints where.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from podium.graph import Context, graph
from podium.graph.testing import calc_tool
from podium.graph.trajectory import TrajectoryStore
from podium.studio.reports import write_report, write_view
from podium.tools.paths import cache_dir
from podium.training.eval.runner import EvalConfig, evaluate

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="Debian 'chromium' is not installed (make system-deps installs it)"
)
# Runs after load: records on <body> what rendered, for --dump-dom to show.
PROBE = """<script>addEventListener('load', () => {
  const imgs = [...document.images].map(i => i.id + ':' + i.naturalWidth + 'x' + i.naturalHeight);
  document.body.setAttribute('data-probe', imgs.join(','));
  document.body.setAttribute('data-rows', document.querySelectorAll('tr').length);
});</script>"""


def _shots_dir() -> Path:
    path = Path(os.environ.get("PODIUM_SCREENSHOTS") or cache_dir("screenshots"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def _chromium(*args: str) -> str:
    argv = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--virtual-time-budget=5000", "--window-size=1200,1600", *args]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _open(page: Path, name: str) -> str:
    """The rendered DOM of ``page`` (with the probe), and a screenshot saved as ``name``."""
    probed = page.with_name(f"probed-{page.name}")
    probed.write_text(page.read_text().replace("</body>", PROBE + "</body>"))
    shot = _shots_dir() / name
    _chromium(f"--screenshot={shot}", page.resolve().as_uri())
    assert shot.stat().st_size > 10_000, "blank screenshot"
    print(f"screenshot: {shot}")
    return _chromium("--dump-dom", probed.resolve().as_uri())


def test_report_renders_in_chromium(fake_graph, toy_expert, tmp_path):
    calls: list[str] = []
    tools = [toy_expert("cheap", 0.1, {"42"}, calls),
             toy_expert("pricey", 10.0, {"42", "4"}, calls)]  # fmt: skip
    _, ctx = fake_graph(["42", "Paris", "5"], tools)
    cfg = EvalConfig("toy", tmp_path, routers=["policy", "strongest", "cheapest", "oracle"],
                     context=ctx, progress=False)  # fmt: skip
    evaluate(cfg)
    dom = _open(write_report(tmp_path), "report.png")
    probe = dom.split('data-probe="')[1].split('"')[0]
    sizes = dict(item.split(":") for item in probe.split(","))
    assert set(sizes) == {"pareto", "tool-usage"}
    assert all(int(s.split("x")[0]) > 300 for s in sizes.values()), sizes  # decoded PNGs
    assert 'data-rows="18"' in dom  # router table and task table rows are in the DOM
    assert "Cost vs accuracy" in dom and "strongest" in dom


def test_viewer_renders_in_chromium(fake_graph, tmp_path):
    call = '<think>Compute it.</think>{"name": "calc", "arguments": {"expression": "6*7"}}'
    _, base = fake_graph([call, "The answer is 42"], [calc_tool(0.001)])
    state = graph.invoke({"question": "What is 6*7?"}, context=Context(**base))
    record = TrajectoryStore(base["trajectory_db"]).get(state["trajectory_id"])
    dom = _open(write_view(record, tmp_path / "view.html"), "trajectory.png")
    assert dom.count('class="step policy') == 2 and dom.count('class="step tool') == 1
    assert 'id="stop"' in dom and "the policy answered" in dom
    assert 'id="answer">The answer is 42<' in dom
