"""What podium adds on top of the work itself, measured side by side in one run.

Prints three comparisons (medians; ratios are what to quote, absolute times drift here):

1. graph overhead per turn vs one raw call of the embedded policy model;
2. sandbox start (bubblewrap jail + rlimits) vs a plain ``python -c pass`` subprocess;
3. a ``local_search`` query (embedding + FAISS) vs the FAISS search alone.

Usage: ``python benchmarks/overhead.py [--repeats N] [--articles N]`` (``make bench``).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable


def median_s(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``fn`` over ``repeats`` calls, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def graph_overhead(repeats: int) -> tuple[float, float]:
    """(graph seconds per turn with an instant fake model, one raw embedded-model call)."""
    from langchain_openai import ChatOpenAI

    from podium.graph import Context, graph
    from podium.graph.resources import policy_override, tools_override
    from podium.graph.testing import FakePolicy, calc_tool, tool_call
    from podium.tools.llamacpp import embedded_base_url

    turns = 4
    tools = [calc_tool()]

    def fake_run() -> None:
        policy = FakePolicy(script=[tool_call("calc", expression="6*7")] * (turns - 1) + ["42"])
        with policy_override(policy), tools_override(tools):
            graph.invoke({"question": "6*7?"}, context=Context(trajectory_db="/tmp/bench.sqlite"))

    per_turn = median_s(fake_run, repeats) / turns
    llm = ChatOpenAI(
        base_url=embedded_base_url(),
        model="policy",
        api_key="embedded",
        max_tokens=8,
        temperature=0,
    )
    raw = median_s(lambda: llm.invoke("What is 6 * 7? Answer with the number."), repeats)
    return per_turn, raw


def sandbox_start(repeats: int) -> tuple[float, float]:
    """(sandboxed ``pass``, plain subprocess ``pass``)."""
    from podium.tools.sandbox import run_python

    jail = median_s(lambda: run_python("pass"), repeats)
    plain = median_s(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), repeats)
    return jail, plain


def search_latency(repeats: int, articles: int | None) -> tuple[float, float, int]:
    """(full query incl. embedding, FAISS search alone, passages indexed)."""
    from podium.tools import retrieval

    index = retrieval.WikiIndex.load_or_build(limit=articles)
    query = "Which river flows through Paris?"
    full = median_s(lambda: index.search(query, k=3), repeats)
    # Reaches into the index on purpose: the point is to split embedding from FAISS time.
    vector = retrieval._embed(index._model_dir, [query], threads=1)
    faiss_only = median_s(lambda: index._index.search(vector, 3), repeats)
    return full, faiss_only, len(index)


def main() -> None:
    """Run the three comparisons and print a table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--articles", type=int, default=0, help="0 = the whole corpus")
    args = parser.parse_args()

    per_turn, raw = graph_overhead(args.repeats)
    jail, plain = sandbox_start(args.repeats)
    full, faiss_only, n = search_latency(args.repeats * 5, args.articles or None)
    rows = [
        ("graph overhead per turn", per_turn, "raw policy call (8 tokens)", raw),
        ("sandbox start (bwrap)", jail, "plain subprocess", plain),
        (f"local_search query ({n} passages)", full, "FAISS search alone", faiss_only),
    ]
    print(f"{'measure':38} {'ms':>9}   {'baseline':28} {'ms':>9}   ratio")
    for name, value, base_name, base in rows:
        print(
            f"{name:38} {value * 1e3:9.2f}   {base_name:28} {base * 1e3:9.2f}   "
            f"{value / base:6.2f}x"
        )


if __name__ == "__main__":
    main()
