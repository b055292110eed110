"""Property: over many random runs the ledger never exceeds the budget (a hard cap).

Each example draws a pool of fake tools priced with :class:`ToolCost` (per call, per token
with ``max_output_tokens``, per second with ``max_seconds``, mixtures, and uncapped ones the
guard must never admit), a policy script (single and parallel calls, native and text calls,
malformed calls, answers, endpoint errors), ``max_turns``, sync or async execution, and
budgets (0, dust, around a policy turn, around a few tool calls); the run is replayed under
each budget, with fresh per-turn usage of the policy and the tools, all within what the
guard assumes: input within the UTF-8 bound, output within ``max_tokens`` /
``max_output_tokens``, seconds billed up to ``max_seconds``.

Usage reports are untrusted: some are missing or lies (negative, NaN, infinite, fractional,
partial, huge counts; lying seconds). Each fake also writes what its request really cost to
a request log, as the provider would bill it, and the property holds by that count too: the
ledger covers every logged request and stays within the budget.

An endpoint that reports more output tokens than the cap it was sent (tested at the end of
the file) is billed the worst case it was admitted under, never what it reports: the
budget stays a hard cap, and the entry keeps the reported tokens (see ``graph.ledger.bill``).

A failing example is printed with its integer ``seed`` and a ``@reproduce_failure`` line
that replays it exactly.
"""

from __future__ import annotations

import asyncio
import functools
import json
import math
import random
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from langchain_core.messages import AIMessage, BaseMessage
from langchain_core.outputs import ChatResult
from langchain_core.tools import BaseTool, StructuredTool
from pydantic import BaseModel, Field

from podium.graph import Context, TrajectoryStore, graph
from podium.graph.ledger import policy_cost
from podium.graph.resources import resolve
from podium.graph.state import spent
from podium.graph.testing import FakePolicy, tool_call
from podium.graph.testing import expert_tool as fake_expert
from podium.graph.tool_calls import BLOCKED_ERROR, REPEATED_ERROR
from podium.tools import ToolCost, Usage, cost_of
from podium.tools.cost import PROMPT_OVERHEAD_TOKENS, token_bound, with_cost

EXAMPLES = 500
RUNS_PER_EXAMPLE = 4  # the same pool and script replayed under other budgets and usage
STOP_REASONS = {"answer", "budget", "max_turns", "error"}
RESERVE_USD = 2e-4  # roughly what the guard keeps back for the final policy turn
HUGE = 10**9  # what an uncapped tool reports if it ever runs: the cap check then fails loudly


pytestmark = pytest.mark.usefixtures("no_podium_env")


# --- the policy ---------------------------------------------------------------------------


@dataclass
class Knobs:
    """Per-run switches and records shared by the fake policy and tools."""

    greedy: bool = False  # report every cap: actual cost = the guard's worst case
    # The endpoints' request log: what each request really cost (what a provider bills),
    # whatever its usage report said. Tools run on threads: list.append is atomic.
    log: list[float] = field(default_factory=list)
    lies: int = 0  # usage reports that were lies (for the statistics)


def lie(rng: random.Random, honest: tuple[int, int]) -> dict[str, Any] | None:
    """A usage report an endpoint should not send: negative, NaN, huge, partial or missing."""
    kind = rng.choice(["negative", "nan", "inf", "huge", "missing field", "missing", "float"])
    in_tok, out_tok = honest
    if kind == "negative":
        return {"input_tokens": -rng.randint(1, 10**8), "output_tokens": out_tok}
    if kind == "nan":
        return {"input_tokens": in_tok, "output_tokens": math.nan}
    if kind == "inf":
        return {"input_tokens": math.inf, "output_tokens": out_tok}
    if kind == "huge":
        return {"input_tokens": 10**15, "output_tokens": 10**15}
    if kind == "missing field":
        return {"output_tokens": out_tok}
    if kind == "float":
        return {"input_tokens": in_tok + 0.5, "output_tokens": out_tok}
    return None


class MeteredPolicy(FakePolicy):
    """A FakePolicy whose real and reported usage are drawn per turn.

    The real usage stays within what the guard assumes: input within the UTF-8 bytes of the
    prompt plus the template overhead (a lower bound of the guard's ``prompt_bound``), output
    within ``max_tokens``; it goes into the request log. The report is honest, missing, or a
    lie (:func:`lie`); a turn that fails may have been billed in full.
    """

    rng: Any = None
    knobs: Knobs = Field(default_factory=Knobs)
    cost: Any = None  # the policy's ToolCost: what its endpoint really bills
    max_tokens: int = 384
    turns_seen: int = 0

    def reset(self, script: list[Any], rng: random.Random, knobs: Knobs) -> None:
        """Start a new run with ``script`` (one object serves many runs: see :func:`_policy`)."""
        self.script, self.rng, self.knobs, self.turns_seen = script, rng, knobs, 0
        self.prompts, self.bound, self.choices = [], [], []

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kwargs: Any
    ) -> ChatResult:
        self.turns_seen += 1
        prompt_bytes = sum(len(str(m.content).encode()) for m in messages)
        in_cap, out_cap = prompt_bytes + PROMPT_OVERHEAD_TOKENS, self.max_tokens
        try:
            result = super()._generate(messages, stop, run_manager, **kwargs)
        except Exception:
            self.knobs.log.append(self.cost.price(in_cap, out_cap))  # the reply was lost
            raise
        msg = result.generations[0].message
        assert isinstance(msg, AIMessage)
        mode = self.rng.random()
        if mode < 0.2 or self.knobs.greedy:  # the extremes the guard must still cover
            in_tok, out_tok = in_cap, out_cap
        else:
            in_tok, out_tok = self.rng.randint(0, in_cap), self.rng.randint(0, out_cap)
        self.knobs.log.append(self.cost.price(in_tok, out_tok))
        report = {"input_tokens": in_tok, "output_tokens": out_tok}
        if (roll := self.rng.random()) < 0.25:
            self.knobs.lies += 1
            report = lie(self.rng, (in_tok, out_tok)) if roll < 0.2 else None
        if report is not None:
            report["total_tokens"] = 0  # langchain requires it; podium never reads it
        msg.usage_metadata = report  # type: ignore[assignment]
        return result


# --- the tools ----------------------------------------------------------------------------


@dataclass(frozen=True)
class ToolSpec:
    """A fake tool: its price and how often a call fails."""

    name: str
    cost: ToolCost
    fail_rate: float


class QuestionArgs(BaseModel):
    """Arguments of every fake tool."""

    question: str


def priced_tool(spec: ToolSpec, seed: int, knobs: Knobs) -> BaseTool:
    """A fake tool drawing its real usage within its caps (``HUGE`` where it has none).

    What its provider would bill for the tokens and the flat price goes into the request
    log; the report is honest or, sometimes, a lie (:func:`lie`, or lying seconds). A call
    that raises lost its reply: the log counts it at its caps. Each call draws from its own
    stream, seeded by the call's argument: parallel calls run on threads, and a shared
    stream would make a failing example irreproducible.
    """
    cost = spec.cost

    def run(question: str) -> tuple[str, Usage]:
        rng = random.Random(f"{seed}:{question}")
        # The guard bounds input by the call's JSON arguments plus the tool's own prompt.
        in_cap = token_bound(json.dumps({"question": question})) + cost.prompt_tokens
        greedy = knobs.greedy
        in_tok, out_tok = in_cap if greedy else rng.randint(0, in_cap), 0
        if cost.output_usd_per_mtok:
            cap = cost.max_output_tokens
            out_tok = (
                HUGE
                if cap is None
                else cap
                if greedy
                else rng.choice([0, cap, rng.randint(0, cap)])
            )
        usage = Usage(input_tokens=in_tok, output_tokens=out_tok)
        if cost.per_second_usd:
            limit = cost.max_seconds
            # Over the limit is billed at the limit (a killed call); omitted = wall time.
            if limit is None:
                usage["compute_seconds"] = float(HUGE)
            elif greedy or rng.random() < 0.8:
                usage["compute_seconds"] = rng.uniform(0.5 if greedy else 0, 1.5) * limit
        roll = rng.random()
        if roll < spec.fail_rate / 2:
            knobs.log.append(cost.price(in_cap, cost.max_output_tokens or 0))
            raise RuntimeError(f"{spec.name} failed")
        knobs.log.append(cost.price(in_tok, out_tok))
        if roll < spec.fail_rate:
            usage["error"] = "partial failure"
        if (odd := rng.random()) < 0.2:  # a lying report
            knobs.lies += 1
            usage = Usage(
                **{k: v for k, v in usage.items() if k not in ("input_tokens", "output_tokens")}
            )  # type: ignore[typeddict-item]
            usage |= lie(rng, (in_tok, out_tok)) or {}  # type: ignore[arg-type]
            if odd < 0.05 and cost.per_second_usd:
                usage["compute_seconds"] = rng.choice([-1.0, math.nan, math.inf])
        return f"{spec.name} says {len(question)}", usage

    tool = StructuredTool.from_function(
        run,
        name=spec.name,
        description=f"Fake tool {spec.name}.",
        args_schema=QuestionArgs,  # inferring a schema per tool would cost ~10 ms
        response_format="content_and_artifact",
    )
    return with_cost(tool, cost)


def log_uniform(rng: random.Random, lo: float, hi: float) -> float:
    """A float spread evenly over the decades from ``lo`` to ``hi``."""
    return 10 ** rng.uniform(math.log10(lo), math.log10(hi))


# Weighted: the uncapped kinds (never admitted) would otherwise end most runs early.
TOOL_KINDS = [
    *("mixed", "token", "second", "call") * 2,
    *("free", "uncapped_token", "uncapped_second"),
]


def tool_cost(kind: str, rng: random.Random) -> ToolCost:
    """A ToolCost of one pricing kind (or a mix), with prices over several decades."""
    fields: dict[str, Any] = {"prompt_tokens": rng.randint(0, 300)}
    if kind in ("call", "mixed"):
        fields["per_call_usd"] = rng.choice([0.0, log_uniform(rng, 1e-7, 1e-2)])
    if kind in ("token", "mixed"):
        fields |= {
            "input_usd_per_mtok": rng.choice([0.0, log_uniform(rng, 1e-3, 30)]),
            "output_usd_per_mtok": log_uniform(rng, 1e-3, 30),
            "max_output_tokens": rng.randint(1, 4000),
        }
    if kind in ("second", "mixed"):
        fields |= {
            "per_second_usd": log_uniform(rng, 1e-8, 1e-3),
            "max_seconds": log_uniform(rng, 0.01, 120),
        }
    if kind == "uncapped_token":  # worst case infinite: the guard must never admit a call
        fields["output_usd_per_mtok"] = log_uniform(rng, 1e-3, 30)
    if kind == "uncapped_second":
        fields["per_second_usd"] = log_uniform(rng, 1e-8, 1e-3)
    return ToolCost(**fields)


# --- the policy script --------------------------------------------------------------------

QUESTIONS = st.text(max_size=30) | st.sampled_from(["", "x" * 2000, "é€😀" * 50])
MALFORMED = [
    '<tool_call>{"name": "t0", "argu',
    '{"arguments": {"question": "q"}}',
    '{"name": "nope", "arguments": {}}',
    "",
    "[]",
    "<tool_call>not json</tool_call>",
]


def _call(names: list[str]) -> st.SearchStrategy[tuple[str, dict[str, Any]]]:
    """One call: a pool tool, an unknown tool or bad arguments."""
    good = st.tuples(st.sampled_from(names), st.builds(lambda q: {"question": q}, QUESTIONS))
    odd = st.tuples(
        st.sampled_from([*names, "nope"]),
        st.sampled_from([{}, {"q": "x"}, {"question": 5}, {"question": None}]),
    )
    return st.one_of(good, good, good, odd)


@functools.cache
def script_items(n_tools: int) -> st.SearchStrategy[tuple[Any, ...]]:
    """One policy turn of the script, as data (ids are given when the message is built)."""
    names = [f"t{i}" for i in range(n_tools)]
    calls = st.lists(_call(names), min_size=1, max_size=3)
    call_turn = st.tuples(st.sampled_from(["native", "native", "text", "tagged"]), calls)
    other_turn = st.one_of(
        st.tuples(st.just("say"), st.text(max_size=20)),
        st.tuples(st.just("answer_tool"), st.text(max_size=20)),
        st.tuples(st.just("malformed"), st.sampled_from(MALFORMED)),
        st.tuples(st.just("invalid"), st.sampled_from([*names, "nope"])),
        st.tuples(st.just("raise"), st.just("")),
    )
    return st.sampled_from([1, 1, 1, 0]).flatmap(lambda k: call_turn if k else other_turn)


def to_reply(item: tuple[Any, ...], n: int) -> Any:
    """The policy's reply for one script item (unique call ids per run via ``n``)."""
    kind, body = item
    if kind == "native":
        tool_calls = [
            {"name": name, "args": args, "id": f"c{n}_{i}"} for i, (name, args) in enumerate(body)
        ]
        return AIMessage(content="", tool_calls=tool_calls)
    if kind == "text":
        return json.dumps([{"name": name, "arguments": args} for name, args in body])
    if kind == "tagged":
        blocks = [
            f"<tool_call>\n{json.dumps({'name': a, 'arguments': b})}\n</tool_call>" for a, b in body
        ]
        return "Let me check.\n" + "\n".join(blocks)
    if kind == "say":
        return body
    if kind == "answer_tool":
        return AIMessage(
            content="", tool_calls=[{"name": "answer", "args": {"text": body}, "id": f"a{n}"}]
        )
    if kind == "malformed":
        return body
    if kind == "invalid":
        bad = {"name": body, "args": '{"question": ', "id": f"i{n}", "error": "bad JSON"}
        return AIMessage(content="", invalid_tool_calls=[{**bad, "type": "invalid_tool_call"}])
    return ConnectionError("policy endpoint refused")


@dataclass(frozen=True)
class RunSpec:
    """Everything one example varies; ``seed`` is printed with a failing example."""

    seed: int
    budgets: list[float]
    tools: list[ToolSpec]
    script: list[tuple[Any, ...]]
    max_turns: int
    use_async: bool
    rng: random.Random = field(repr=False)  # seeded with ``seed``, then drawn from by the run


def budget(rng: random.Random, tools: list[ToolSpec]) -> float:
    """A budget: 0, dust, around the policy's first turns, or around a few tool calls."""
    roll = rng.random()
    if roll < 0.03:
        return 0.0
    if roll < 0.08:
        return log_uniform(rng, 1e-15, 1e-5)
    if roll < 0.23:  # a policy turn costs ~$5e-5 at worst: the policy's own guard
        return log_uniform(rng, 1e-5, 3e-4)
    if roll < 0.75:  # a few tool calls, then blocked: the tools' guard mid-run
        finite = [b for t in tools if math.isfinite(b := t.cost.worst_case(100))]
        if finite:
            return rng.uniform(0.3, 3) * (RESERVE_USD + max(finite))
    return log_uniform(rng, 3e-4, 1.0)


@st.composite
def run_specs(draw: st.DrawFn) -> RunSpec:
    """A random pool, script, budgets and turn limit.

    Hypothesis draws the structure (pricing kinds, the script), which shrinks well; the
    scalars come from a random stream seeded with a drawn integer, since Hypothesis skews
    floats to their ends. The seed is part of the example, so a failure replays exactly.
    """
    seed = draw(st.integers(min_value=0, max_value=2**32 - 1))
    rng = random.Random(seed)
    kinds = draw(st.lists(st.sampled_from(TOOL_KINDS), min_size=1, max_size=4))
    fail_rates = st.sampled_from([0.0, 0.0, 0.2, 1.0])
    # Names in random order: Hypothesis favours the first name, which is then any kind.
    names = rng.sample([f"t{i}" for i in range(len(kinds))], len(kinds))
    tools = [
        ToolSpec(name, tool_cost(kind, rng), draw(fail_rates))
        for name, kind in zip(names, kinds, strict=True)
    ]
    body = draw(st.lists(script_items(len(names)), min_size=1, max_size=6))
    return RunSpec(
        seed=seed,
        budgets=[budget(rng, tools) for _ in range(RUNS_PER_EXAMPLE)],
        tools=tools,
        script=[*body, ("say", "final answer")],  # a plain answer always ends the script
        max_turns=rng.choice([1, 2, 3, 4, 6, 8, 12, 20]),
        use_async=rng.random() < 0.3,  # async runs cost 1.5x (threads): fewer of them
        rng=rng,
    )


# --- the property -------------------------------------------------------------------------


def check_run(
    out: dict[str, Any],
    spec: RunSpec,
    budget: float,
    store: TrajectoryStore,
    turns: int,
    log: list[float],
) -> None:
    """Every invariant of one finished run (``turns`` = replies the policy produced)."""
    ledger = out["ledger"]
    total = spent(ledger)
    assert total <= budget + 1e-12, f"spent ${total!r} of a ${budget!r} budget: {ledger}"
    by_kind = sum(e["cost_usd"] for e in ledger if e["kind"] == "policy") + sum(
        e["cost_usd"] for e in ledger if e["kind"] == "tool"
    )
    assert math.isclose(by_kind, total, rel_tol=1e-12, abs_tol=1e-18)
    assert all(e["cost_usd"] >= 0 and math.isfinite(e["cost_usd"]) for e in ledger)
    # The endpoints' own count: every request they may bill is in the ledger, at least at
    # what it really cost, whatever its usage report said; so their bill is within budget.
    real = sum(log)
    assert real <= total * (1 + 1e-9) + 1e-18, f"endpoints billed ${real!r}, ledger ${total!r}"
    assert real <= budget + 1e-12
    assert all(e["cost_usd"] == 0 for e in ledger if e["error"] in (BLOCKED_ERROR, REPEATED_ERROR))

    stopped, n_turns = out["stopped_by"], out.get("turns", 0)  # unset channels are left out
    assert stopped in STOP_REASONS
    assert 0 <= n_turns <= spec.max_turns
    policy_entries = [e for e in ledger if e["kind"] == "policy"]
    assert len(policy_entries) == n_turns == turns  # one billed entry per policy reply
    assert (stopped == "error") == any(not e["ok"] for e in policy_entries)
    if budget == 0:
        assert ledger == [] and stopped == "budget"

    ran = [e for e in ledger if e["kind"] == "tool" and e["error"] != BLOCKED_ERROR]
    event(f"stopped_by={stopped}")
    event(f"tool calls run: {min(len(ran), 3)}{'+' if len(ran) >= 3 else ''}")
    event(f"budget used: {'>=' if total >= budget / 2 else '<'} half")
    if any(e["error"] == BLOCKED_ERROR for e in ledger):
        event("a call was blocked by the guard")

    record = store.get(out["trajectory_id"])
    assert record is not None
    assert record["cost_usd"] == total
    assert record["ledger"] == [dict(e) for e in ledger]
    assert (record["stopped_by"], record["turns"]) == (stopped, n_turns)


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    print_blob=True,  # a failure prints @reproduce_failure(...) to replay it exactly
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(spec=run_specs())
def test_ledger_never_exceeds_the_budget(fake_graph, spec: RunSpec) -> None:
    knobs = Knobs()
    tools = [priced_tool(t, spec.rng.getrandbits(32), knobs) for t in spec.tools]
    _, base = fake_graph(None, tools)
    policy = _policy(resolve(Context(**base)).max_tokens)
    policy.cost = _policy_cost(base)
    fake_graph(policy, tools)
    store = TrajectoryStore(base["trajectory_db"])
    for n, budget in enumerate(spec.budgets):
        knobs.greedy = spec.rng.random() < 0.3
        knobs.log.clear()
        knobs.lies = 0
        policy.reset([to_reply(item, n) for item in spec.script], spec.rng, knobs)
        ctx = Context(**base, budget_usd=budget, max_turns=spec.max_turns)
        question = {"question": "What is 6 * 7?"}
        if spec.use_async:
            out = asyncio.run(graph.ainvoke(question, context=ctx))
        else:
            out = graph.invoke(question, context=ctx)
        check_run(out, spec, budget, store, policy.turns_seen, knobs.log)
        event(f"lying usage reports: {min(knobs.lies, 1)}+")


_POLICIES: dict[int, MeteredPolicy] = {}


def _policy(max_tokens: int) -> MeteredPolicy:
    """One policy object reused across examples (a fresh chat model costs ~10 ms to trace)."""
    if max_tokens not in _POLICIES:
        _POLICIES[max_tokens] = MeteredPolicy(max_tokens=max_tokens)
    return _POLICIES[max_tokens]


# --- an endpoint that ignores its cap ----------------------------------------------------


@pytest.mark.parametrize("honest", [True, False])
def test_a_policy_reporting_more_than_max_tokens_is_billed_its_admitted_worst_case(
    fake_graph, caplog: pytest.LogCaptureFixture, honest: bool
) -> None:
    """The guard admits a policy turn at its worst case (output = ``max_tokens``). One whose
    endpoint reports 100x that is billed the worst case, keeps its reported tokens, and is
    named in a warning; the run then goes on within the budget."""
    policy, base = fake_graph([tool_call("calc", question="6*7"), "42"], [_calc()])
    max_tokens = resolve(Context(**base)).max_tokens
    policy.usage = (100, max_tokens if honest else 100 * max_tokens)
    budget = 2e-4  # a turn and a call at worst case fit; 100x the output would not
    out = graph.invoke({"question": "6*7?"}, context=Context(**base, budget_usd=budget))
    assert [e["ok"] for e in out["ledger"]] == [True, True, True]
    assert spent(out["ledger"]) <= budget and out["stopped_by"] == "answer"
    first = out["ledger"][0]
    assert first["kind"] == "policy" and first["output_tokens"] == policy.usage[1]
    price = _policy_cost(base).price(100, policy.usage[1])
    warned = [r for r in caplog.records if "over the $" in r.getMessage()]
    if honest:
        assert first["cost_usd"] == price and not warned
        return
    assert first["cost_usd"] < price / 10  # the worst case, not 100x the output
    assert len(warned) == 2 and "policy" in warned[0].getMessage()  # both turns overran


def test_a_tool_reporting_more_than_max_output_tokens_is_billed_its_worst_case(fake_graph):
    """Same for a token-priced tool whose endpoint ignores ``max_output_tokens``."""
    liar = fake_expert(in_price=1.0, out_price=10.0, max_out=100, used=(300, 100_000))
    budget = 0.01  # the call's worst case (100 output tokens) fits; 100,000 tokens do not
    _, base = fake_graph([tool_call("oracle", question="q"), "42"], [liar])
    out = graph.invoke({"question": "q"}, context=Context(**base, budget_usd=budget))
    kinds = [(e["kind"], e["name"]) for e in out["ledger"]]
    assert kinds == [("policy", "policy"), ("tool", "oracle"), ("policy", "policy")]
    tool = out["ledger"][1]
    assert tool["output_tokens"] == 100_000 and tool["ok"]
    worst = cost_of(liar).worst_case(token_bound(json.dumps({"question": "q"})))
    assert tool["cost_usd"] == worst < cost_of(liar).price(300, 100_000)
    assert spent(out["ledger"]) <= budget
    assert out["stopped_by"] == "answer" and out["answer"] == "42"


def _policy_cost(base: dict[str, Any]) -> ToolCost:
    """The policy's price as the graph bills it."""
    return policy_cost(resolve(Context(**base)))


def _calc() -> BaseTool:
    """A per-call tool named ``calc`` (any question)."""
    spec = ToolSpec("calc", ToolCost(per_call_usd=1e-6), 0.0)
    return priced_tool(spec, 0, Knobs())
