"""Rejection-sampling fine-tuning (ReST-EM, RAFT): keep each task's best run, fine-tune on it.

From a trajectory store (``podium collect``, with or without ``--explore``), every task keeps
its best run by the paper's reward order — a correct run first, then the cheapest, then the
one that best follows the user's tool preference (``rewards.py``: :func:`measure`,
:func:`preference_rewards`), then the fastest. Tasks with no correct run teach nothing and
are left out. Each kept run is trained turn by turn (``samples.turn_samples``: each turn's prompt
exactly as the policy saw it, with the tool results and notes before it), every turn written in the
one form the policy itself writes calls in — a JSON list of ``{"name", "arguments"}`` — the last
turn as the run's final answer (plain text when the run answered at once, the ``answer`` call after
tools), and malformed detours cut out (:func:`trainable`). Trained as written, the form is learned
with the choice: a 0.5B trained so went on to answer with a whole passage
(docs/learning.md#results). Trained on the chat template's ``<tool_call>`` token instead, which the
packaged 0.5B never writes, it lost its language (measured: answers in stray Chinese and Cyrillic
tokens). The loss covers the policy's tokens only: TRL's ``SFTTrainer`` builds the labels from the
``completion_mask`` column (``completion_only_loss``) and trains a PEFT LoRA. No optimiser loop of
ours. RAFT (arXiv 2504.11343) reports this competitive with GRPO; ReST-EM gets most of its gain in
one round.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from podium.graph import TrajectoryStore

from .base_model import load_policy
from .config import TrainConfig, TrainConfigError
from .rewards import (
    ROUTER_MODEL,
    TRAINING_KEY,
    Measure,
    RewardConfig,
    measure,
    preference_rewards,
)
from .samples import BatchError, turn_samples

RECIPE_FILE = "podium_rft.json"
"""Written beside the adapter: the store, the runs kept, the settings and the step times."""


@dataclass
class Selection:
    """The best run of each task, and the tasks that had none to learn from."""

    best: dict[str, dict[str, Any]]
    runs: int
    without_correct: list[str] = field(default_factory=list)

    @property
    def tasks(self) -> int:
        """Tasks seen in the store."""
        return len(self.best) + len(self.without_correct)


def _offered_tools(runs: Iterable[Mapping[str, Any]]) -> list[str]:
    return sorted({t for r in runs for t in r.get("tools", [])})


_LABEL = re.compile(r"^\s*answer\s*(?:[:=]|\n)\s*", re.IGNORECASE)
"""A label written before a plain-text answer: "answer: 1759", 'answer = "1907"'."""


def written(calls: Sequence[Mapping[str, Any]]) -> str:
    """Tool calls as the packaged 0.5B writes them: a JSON list of ``{"name", "arguments"}``.

    The graph parses this form and renders it back as the chat template's ``<tool_call>``
    blocks in later prompts; only what the policy writes is in this form.
    """
    return json.dumps([{"name": c["name"], "arguments": c["args"]} for c in calls])


def trainable(record: Mapping[str, Any]) -> dict[str, Any] | None:
    """The run as RFT trains it, or None when it did not end on an answer.

    Three edits, none of which changes what the run chose, found or answered:

    * every turn is written as its calls in the policy's own form (:func:`written`); the last
      becomes the run's final answer, the text the checker judged (:func:`_final_turn`: plain
      text when the run answered at once or relayed the last tool result, else the ``answer``
      call; the policy and a teacher end runs in several forms the graph accepts: a native
      call, bare JSON, ``answer(4)``, plain text);
    * a label written before a plain-text answer ("answer: 1759") is dropped from it;
    * a turn that made no call yet did not end the run — a malformed call — is cut out with
      the graph's reply to it, so the run is trained as if the policy had gone straight on
      (measured: most of the 1.5B teacher's correct runs had such a detour).

    A last turn that is a call to another tool, or a malformed one, is no answer: None. So is a
    run whose call copies a tool's description as its argument (:func:`_copies_a_description`).
    """
    from langchain_core.messages import AIMessage

    from podium.graph.delegation import delegate_of
    from podium.graph.parsing import parse_tool_calls
    from podium.graph.render import ANSWER, answer_tool

    turns = list(record.get("policy_turns") or [])
    answer = str(record.get("answer") or "").strip()
    if not turns or not answer:
        return None
    raw = turns[-1].get("raw") or ""
    if isinstance(raw, str) and raw.strip():
        parsed = parse_tool_calls(AIMessage(content=raw), {ANSWER: answer_tool})
        names = [c["name"] for c in parsed.calls]
        if parsed.errors or names not in ([ANSWER], []):
            return None
        if not names:
            answer = _LABEL.sub("", answer, count=1).strip().strip("\"'").strip()
            if not answer:
                return None
    if _copies_a_description(record):
        return None
    messages = record["messages"]
    ai_at = [i for i, m in enumerate(messages) if m["type"] == "ai"][-len(turns) :]
    cut: set[int] = set()
    for k, turn in enumerate(turns[:-1]):
        if not turn.get("calls"):  # a malformed turn: it and the graph's reply go
            cut.update(range(ai_at[k], ai_at[k + 1]))
    last = ai_at[-1]
    handed = [c for c in messages[last]["data"].get("tool_calls") or [] if delegate_of(c)]
    if handed:  # answer(model=X): the call is the final turn, as written
        final = {"tool_calls": handed, "content": written(handed)}
    else:
        after_tools = _called_a_tool(record) and not _relayed(record, messages[:last], answer)
        final = _final_turn(answer, str(record["id"]), after_tools=after_tools)
    kept = []
    for i, m in enumerate(messages[: last + 1]):
        if i in cut:
            continue
        if i == last:
            m = {"type": "ai", "data": {**m["data"], **final}}
        elif i in ai_at:  # the turn's text: its calls as the policy writes them
            m = {"type": "ai", "data": {**m["data"], "content": written(m["data"]["tool_calls"])}}
        kept.append(m)
    return {
        **record,
        "answer": answer,
        "messages": kept,
        "policy_turns": [t for k, t in enumerate(turns) if ai_at[k] not in cut],
        "malformed_calls": 0,
    }


def _relayed(record: Mapping[str, Any], messages: Sequence[Mapping[str, Any]], answer: str) -> bool:
    """Whether the answer is another model's reply passed on word for word.

    That is: the last tool result, from a call that billed output tokens (an LLM expert; a
    program's printed ``4`` answered as ``4`` is no relay).
    """
    results = [str(m["data"].get("content", "")).strip() for m in messages if m["type"] == "tool"]
    calls = [e for e in record.get("ledger") or [] if e.get("kind") == "tool"]
    wrote = bool(calls) and (calls[-1].get("output_tokens") or 0) > 0
    return wrote and bool(results) and results[-1] == answer.strip()


def _final_turn(answer: str, run_id: str, *, after_tools: bool) -> dict[str, Any]:
    """The last turn's text, in the form the untrained 0.5B itself ends runs in there.

    Answering at once, it writes plain text (code, chat, facts from memory; the graph takes it
    as the answer); after tool calls it calls ``answer`` — unless the answer is the last tool
    result word for word (:func:`_relayed`), which is passed on as plain text: copied into the
    JSON string of an ``answer`` call, the code an expert wrote lost its quotes (run 8).
    Trained on the ``answer`` call everywhere, it wrote code as prose inside the JSON string
    (run 3); trained on plain text everywhere, it copied the search passage it had just read
    as its answer (run 5; docs/learning.md). An answer that itself reads as a call
    (``answer(4)``) keeps the call.
    """
    from langchain_core.messages import AIMessage

    from podium.graph.parsing import parse_tool_calls
    from podium.graph.render import ANSWER, answer_tool

    parsed = parse_tool_calls(AIMessage(content=answer), {ANSWER: answer_tool})
    plain = not (parsed.calls or parsed.errors) and parsed.text == answer
    if plain and not after_tools:
        return {"tool_calls": [], "content": answer}
    calls = [
        {"name": ANSWER, "args": {"text": answer}, "id": f"{run_id}-answer", "type": "tool_call"}
    ]
    return {"tool_calls": calls, "content": written(calls)}


_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def _copies_a_description(record: Mapping[str, Any]) -> bool:
    """Whether a call's argument repeats a sentence of the tool descriptions the run was shown.

    The untrained 0.5B often searches for "What to look up, as a short natural-language
    query." — its tool's own parameter description. Trained on, it learns the copy (run 5).
    """
    texts: list[str] = []
    for schema in record.get("tool_schemas") or []:
        fn = schema.get("function", {})
        texts.append(fn.get("description", ""))
        texts += [
            p.get("description", "")
            for p in fn.get("parameters", {}).get("properties", {}).values()
        ]
    sentences = {x.strip() for t in texts for x in _SENTENCE.split(t) if len(x.strip()) >= 20}
    args = [
        v
        for t in record.get("policy_turns") or []
        for c in t.get("calls") or []
        for v in (c.get("args") or {}).values()
    ]
    return any(isinstance(v, str) and any(x in v for x in sentences) for v in args)


def _called_a_tool(run: Mapping[str, Any]) -> bool:
    """Whether the run called a tool before answering (a turn's ``calls`` never hold ``answer``)."""
    return any(t.get("calls") for t in run.get("policy_turns") or [])


def _driver(run: Mapping[str, Any]) -> str:
    """The model (or ``router:NAME``) that drove the run; ``""`` when it was not recorded."""
    return str((run.get("context") or {}).get("policy_model") or "")


def _from_memory(run: Mapping[str, Any], student: str | None) -> bool:
    """Whether another model than ``student`` answered this run at once, calling no tool."""
    model = (run.get("context") or {}).get("policy_model")
    if student is None or model in (None, student):
        return False
    return not _called_a_tool(run)


def route(run: Mapping[str, Any]) -> str:
    """The run's route: its first tool (``answer`` at once), and the model that wrote its answer.

    ``answer:X`` names X at once; ``local_search>answer:X`` searched, then X answered from
    what was found — a route apart from searching and answering oneself.
    """
    from podium.graph.delegation import ANSWER, delegate_of

    calls = [c for t in run.get("policy_turns") or [] for c in t.get("calls") or []]
    if not calls:
        return ANSWER
    first, last = (
        delegate_of({"name": c["tool"], "args": c.get("args")}) for c in (calls[0], calls[-1])
    )
    head = f"{ANSWER}:{first}" if first else str(calls[0]["tool"])
    return f"{head}>{ANSWER}:{last}" if last and len(calls) > 1 else head


def driven_route(run: Mapping[str, Any]) -> str:
    """The run's :func:`route` and the model (or fixed router) that drove it: what RFT copies.

    Routes are judged per driver: the student is trained on one run's calls, so whether a
    teacher's route is worth copying shows in the teacher's runs of it, not in the untrained
    student's. Measured: the coder teacher's ``python`` runs were right on 47% of arithmetic
    tasks and the 0.5B's on 13%; pooled as one ``python`` route (30%), they lost every
    arithmetic task to the strongest expert's 40%, and the trained policy stopped using python.
    """
    return f"{route(run)}@{_driver(run)}"


def _is_demonstration(run: Mapping[str, Any]) -> bool:
    """Whether a fixed router drove the run (``podium collect --router``)."""
    return _driver(run).startswith(ROUTER_MODEL)


def priced(runs: Sequence[Mapping[str, Any]]) -> list[float]:
    """Each run's dollars, a demonstration's unbilled policy turns priced as the policy's.

    A fixed router is no model, so its turns cost nothing; the policy that learns its route
    pays for every turn. They are priced at the mean billed policy turn of the other runs.
    """
    billed = [
        e["cost_usd"]
        for r in runs
        if not _is_demonstration(r)
        for e in r.get("ledger") or []
        if e.get("kind") == "policy"
    ]
    per_turn = sum(billed) / len(billed) if billed else 0.0
    out = []
    for r in runs:
        cost = float(r.get("cost_usd", 0.0))
        if _is_demonstration(r):
            cost += per_turn * sum(e.get("kind") == "policy" for e in r.get("ledger") or [])
        out.append(cost)
    return out


PRIOR_RUNS = 1.0
"""Weight, in runs, of a route's suite-wide success rate in a task's (``select = "pooled"``)."""


def _best_route(
    runs: Sequence[Mapping[str, Any]],
    correct: Sequence[bool],
    cost: Sequence[float],
    student: str | None,
    prior: Mapping[str, float] | None = None,
) -> set[int]:
    """The runs of the driven route with the best expected reward: success, then mean dollars.

    The best single run favours a cheap route that was right once by luck over one that is
    right every time (measured: the 0.5B's own answer beat the strongest expert's route on
    tasks it gets right one time in three). A teacher's answers from memory found no route.
    ``cost``: each run's dollars (:func:`priced`). ``prior``: each route's success rate on
    the task's suite; a task's rate is shrunk toward it by :data:`PRIOR_RUNS` runs (empirical
    Bayes), so that of two routes each right in the one run a task has of them, the one right
    more often on such tasks wins, not the cheaper.
    """
    groups: dict[str, list[int]] = {}
    for i, run in enumerate(runs):
        if not _from_memory(run, student):
            groups.setdefault(driven_route(run), []).append(i)
    if not groups:
        return set(range(len(runs)))

    def expected(item: tuple[str, list[int]]) -> tuple[float, float]:
        name, ids = item
        hits, n = float(sum(correct[i] for i in ids)), float(len(ids))
        if prior is not None and name in prior:
            hits, n = hits + PRIOR_RUNS * prior[name], n + PRIOR_RUNS
        return hits / n, -sum(cost[i] for i in ids) / len(ids)

    return set(max(groups.items(), key=expected)[1])


def _correct(run: Mapping[str, Any], cfg: RewardConfig) -> Measure:
    """The run's measure, correct only when :func:`trainable` can also train it."""
    m = measure(run, cfg)
    return replace(m, correct=m.correct and trainable(run) is not None)


def best_run(
    runs: Sequence[Mapping[str, Any]],
    cfg: RewardConfig | None = None,
    student: str | None = None,
    by_route: bool = False,
    prior: Mapping[str, float] | None = None,
) -> Mapping[str, Any] | None:
    """The run RFT keeps of one task's runs, or None when none is correct and trainable.

    Only runs that :func:`trainable` accepts count as correct here. Order: correct, then
    cheaper (dollars), then a higher preference reward (tool calls min-max normalised among
    these runs, weighted by the task's preference vector), then faster; a remaining tie keeps
    the earliest run. With ``student`` (the model being trained), a teacher's answer from its
    own knowledge comes after every other correct run: it is cheaper than a search, but the
    student lacks that knowledge, and trained on it answered facts from a memory it does not
    have (run 4, docs/learning.md). It is kept when nothing else is correct (code the teacher
    wrote at once). With ``by_route``, the run is chosen among the runs of the route, as one
    model drove it (:func:`driven_route`), with the best success rate, then the lowest mean cost
    (:func:`_best_route`, with ``prior``), when that route has a correct one.
    """
    cfg = cfg or RewardConfig()
    measures = [_correct(run, cfg) for run in runs]
    pref = runs[0].get(TRAINING_KEY, {}).get("preference_vector") or cfg.default_preference
    prefs = preference_rewards(measures, _offered_tools(runs), pref)
    cost = priced(runs)
    among = set(range(len(runs)))
    if by_route:
        best = _best_route(runs, [m.correct for m in measures], cost, student, prior)
        among = best if any(measures[i].correct for i in best) else among

    def rank(i: int) -> tuple[bool, bool, bool, float, float, float, int]:
        m = measures[i]
        mine = not _from_memory(runs[i], student)
        return (i in among, m.correct, mine, -cost[i], prefs[i], -m.latency_s, -i)

    top = max(range(len(runs)), key=rank)
    return runs[top] if measures[top].correct else None


def suite_rates(
    by_task: Mapping[str, Sequence[Mapping[str, Any]]], cfg: RewardConfig, student: str | None
) -> dict[str, dict[str, float]]:
    """Each driven route's success rate on a suite: suite → :func:`driven_route` → rate."""
    hits: dict[tuple[str, str], list[int]] = {}
    for runs in by_task.values():
        for run in runs:
            if not _from_memory(run, student):
                key = ((run.get(TRAINING_KEY) or {}).get("suite", ""), driven_route(run))
                hits.setdefault(key, []).append(bool(_correct(run, cfg).correct))
    rates: dict[str, dict[str, float]] = {}
    for (suite, name), seen in hits.items():
        rates.setdefault(suite, {})[name] = sum(seen) / len(seen)
    return rates


def select_best(
    records: Iterable[Mapping[str, Any]],
    cfg: RewardConfig | None = None,
    student: str | None = None,
    by_route: bool = False,
    pooled: bool = False,
) -> Selection:
    """Each task's best run (:func:`best_run`) among judged records, by task id.

    ``pooled`` (with ``by_route``): each task's route rates shrunk toward the suite's.
    """
    cfg = cfg or RewardConfig()
    by_task: dict[str, list[Mapping[str, Any]]] = {}
    for record in records:
        info = record.get(TRAINING_KEY) or {}
        if info.get("task_id"):
            by_task.setdefault(info["task_id"], []).append(record)
    rates = suite_rates(by_task, cfg, student) if by_route and pooled else {}
    out = Selection(best={}, runs=sum(len(v) for v in by_task.values()))
    for task_id, runs in by_task.items():
        suite = (runs[0].get(TRAINING_KEY) or {}).get("suite", "")
        prior = rates.get(suite) if rates else None
        chosen = best_run(runs, cfg, student, by_route, prior)
        if chosen is None:
            out.without_correct.append(task_id)
        else:
            out.best[task_id] = dict(chosen)
    return out


def _row(prompt: list[int], completion: list[int], mask: list[int]) -> dict[str, Any]:
    return {"input_ids": prompt + completion, "completion_mask": [0] * len(prompt) + mask}


def record_rows(
    record: Mapping[str, Any], tokenizer: Any, pool: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Pre-tokenised ``SFTTrainer`` rows of one kept run, one per turn; loss on the turn only.

    Each row is a turn of the :func:`trainable` run: its exact prompt, then its calls as the
    policy writes them.

    Raises:
        BatchError: the run has no policy turn, or did not end on an answer.
    """
    run = trainable(record)
    if run is None:
        raise BatchError(f"trajectory {record.get('id')} did not end on an answer")
    return [
        _row(s.prompt_ids, s.completion_ids, s.env_mask)
        for s in turn_samples(run, tokenizer, pool, 0.0)
    ]


def sft_rows(
    best: Mapping[str, Mapping[str, Any]], tokenizer: Any, pool: Mapping[str, Any], max_length: int
) -> tuple[list[dict[str, Any]], list[str]]:
    """Rows of the kept runs, task order; runs that cannot be rendered or are too long skipped.

    A run longer than ``max_length`` is skipped whole rather than truncated: truncation would
    cut its final answer, the part that made it worth keeping.
    """
    rows, skipped = [], []
    for task_id in sorted(best):
        try:
            mine = record_rows(best[task_id], tokenizer, pool)
        except BatchError:
            skipped.append(task_id)
            continue
        if max_length and max(len(r["input_ids"]) for r in mine) > max_length:
            skipped.append(task_id)
            continue
        rows += mine
    return rows, skipped


@dataclass
class RFTResult:
    """What an RFT run did."""

    adapter_dir: str
    steps: int
    tasks: int
    runs: int
    kept: int
    without_correct: int
    skipped: int
    tokens: int
    trained_tokens: int
    seconds: float
    losses: list[float] = field(default_factory=list)

    def summary(self) -> str:
        """One line for the CLI."""
        rate = self.tokens / self.seconds if self.seconds else 0.0
        loss = f"{self.losses[-1]:.4f}" if self.losses else "n/a"
        return (
            f"rft: kept the best run of {self.kept}/{self.tasks} tasks ({self.runs} runs; "
            f"{self.without_correct} without a correct run, {self.skipped} skipped) · "
            f"{self.steps} steps · {self.tokens} tokens ({self.trained_tokens} trained) in "
            f"{self.seconds:.0f} s, {rate:.0f} tokens/s · final loss {loss} · "
            f"adapter → {self.adapter_dir}"
        )


def _selection(cfg: TrainConfig) -> Selection:
    store = Path(cfg.store)
    if not store.is_file():
        raise TrainConfigError(
            f"store {store} does not exist: run podium collect --out {store} first"
        )
    records = TrajectoryStore(store).records(TRAINING_KEY)
    selection = select_best(
        records, cfg.reward, cfg.model, by_route=cfg.select != "run", pooled=cfg.select == "pooled"
    )
    if not selection.best:
        raise TrainConfigError(
            f"store {store} has no correct run to learn from ({selection.runs} judged runs of "
            f"{selection.tasks} tasks): collect more (podium collect --explore) or easier tasks"
        )
    return selection


def build_rft_trainer(cfg: TrainConfig) -> tuple[Any, Selection, list[str]]:
    """TRL's ``SFTTrainer`` over the best runs of ``cfg.store``, with the adapter to train.

    Returns:
        The trainer, the selection and the task ids whose run was skipped.

    Raises:
        TrainConfigError: a missing store, no correct run, bad ``[sft]`` values, no run that fits.
    """
    from datasets import Dataset
    from trl import SFTTrainer

    from .trainer import _pool

    selection = _selection(cfg)
    try:
        args = cfg.sft_args()
    except ValueError as exc:
        raise TrainConfigError(f"bad [sft] values: {' '.join(str(exc).split())}") from None
    try:
        model, tokenizer = load_policy(cfg.model_dir(), cfg.init_adapter)
    except ValueError as exc:
        raise TrainConfigError(str(exc)) from None
    rows, skipped = sft_rows(selection.best, tokenizer, _pool(cfg), args.max_length or 0)
    if not rows:
        raise TrainConfigError(
            f"none of the {len(selection.best)} kept runs fits max_length {args.max_length}: "
            "raise [sft] max_length"
        )
    trainer = SFTTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=None if cfg.init_adapter else cfg.lora_config(),
    )
    return trainer, selection, skipped


def train_rft(cfg: TrainConfig) -> RFTResult:
    """Fine-tune on the store's best runs; save the PEFT adapter and its recipe.

    The adapter (``output_dir``) loads with PEFT and vLLM's ``--lora-modules``;
    ``podium export`` turns it into a GGUF LoRA for the embedded llama.cpp server.
    """
    trainer, selection, skipped = build_rft_trainer(cfg)
    start = time.monotonic()
    trainer.train()
    seconds = time.monotonic() - start
    trainer.model.save_pretrained(cfg.output_dir)
    trainer.processing_class.save_pretrained(cfg.output_dir)
    data, args = trainer.train_dataset, trainer.args
    if args.max_steps > 0:
        rows_seen = trainer.state.global_step * args.gradient_accumulation_steps
        rows_seen *= args.per_device_train_batch_size
    else:
        rows_seen = len(data) * args.num_train_epochs
    per_row = sum(len(ids) for ids in data["input_ids"]) / len(data)
    result = RFTResult(
        adapter_dir=cfg.output_dir,
        steps=trainer.state.global_step,
        tasks=selection.tasks,
        runs=selection.runs,
        kept=len(selection.best) - len(skipped),
        without_correct=len(selection.without_correct),
        skipped=len(skipped),
        tokens=round(per_row * rows_seen),
        trained_tokens=sum(sum(x != -100 for x in labels) for labels in data["labels"]),
        seconds=seconds,
        losses=[h["loss"] for h in trainer.state.log_history if "loss" in h],
    )
    recipe = {
        "store": str(Path(cfg.store).resolve()),
        "model": str(cfg.model),
        "select": cfg.select,
        "kept": {t: r["id"] for t, r in sorted(selection.best.items()) if t not in skipped},
        "without_correct": sorted(selection.without_correct),
        "skipped": sorted(skipped),
        "sft": {k: v for k, v in trainer.args.to_dict().items() if k in _RECIPE_ARGS},
        "lora": {k: _plain(v) for k, v in trainer.model.peft_config["default"].to_dict().items()},
        "result": asdict(result),
    }
    (Path(cfg.output_dir) / RECIPE_FILE).write_text(json.dumps(recipe, indent=2, default=str))
    return result


_RECIPE_ARGS = (
    "learning_rate",
    "lr_scheduler_type",
    "num_train_epochs",
    "max_steps",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "max_length",
    "seed",
)


def _plain(value: Any) -> Any:
    return sorted(value) if isinstance(value, set) else value
