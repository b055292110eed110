"""Rewards of a GRPO group: outcome, efficiency and preference, combined as in ToolOrchestra.

Pure, batched functions over :class:`Measure` rows (one per trajectory, read from its stored
record with :func:`measure`). The combined reward is the paper's: per trajectory a vector
``M = [calls of each tool…, outcome, cost, latency]``, each dimension min-max normalised
within the group (0 where max = min), ``R = M_norm · P`` when the outcome is correct, else 0.
Unlike the original code, cost and latency enter *reversed* — ``(max - x) / (max - min)`` —
so the cheaper and faster run of a group scores higher. Advantages are group-relative,
``(R - mean) / std``, and groups whose reward spread is below ``min_group_std`` are dropped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .preferences import COST, LATENCY, OUTCOME, dimensions

TRAINING_KEY = "training"
"""Key of a stored record holding task id, group id, preference and verdict (``collect``)."""

ROUTER_MODEL = "router:"
"""Prefix of the ``policy_model`` a fixed router's runs are stored under (``collect --router``)."""


@dataclass
class RewardConfig:
    """How trajectories are scored; fields carry help text like TRL's configs."""

    min_group_std: float = field(
        default=0.1,
        metadata={"help": "Drop a group whose combined-reward std is below this (paper: 0.1)."},
    )
    correct_threshold: float = field(
        default=1.0,
        metadata={"help": "A verdict score at or above this counts as a correct outcome."},
    )
    default_preference: dict[str, float] = field(
        default_factory=lambda: {OUTCOME: 1.0, COST: 0.5, LATENCY: 0.5},
        metadata={"help": "Preference vector of trajectories stored without one."},
    )
    judge_model: str = field(
        default="",
        metadata={"help": "Model judging free-form answers (OpenAI-compatible); empty = off."},
    )
    judge_base_url: str = field(
        default="", metadata={"help": "Endpoint of the judge; empty = the policy's endpoint."}
    )
    judge_api_key_env: str = field(
        default="PODIUM_JUDGE_API_KEY", metadata={"help": "Environment variable of its key."}
    )


@dataclass(frozen=True)
class Measure:
    """What the reward needs of one trajectory."""

    calls: Mapping[str, int]
    correct: bool
    cost_usd: float
    latency_s: float
    score: float = 0.0


def tool_calls(record: Mapping[str, Any]) -> dict[str, int]:
    """How many times the policy called each tool in a record (the ``answer`` tool excluded)."""
    counts: dict[str, int] = {}
    for turn in record.get("policy_turns", []):
        for call in turn.get("calls", []):
            if call["tool"] != "answer":
                counts[call["tool"]] = counts.get(call["tool"], 0) + 1
    return counts


def measure(record: Mapping[str, Any], cfg: RewardConfig | None = None) -> Measure:
    """The :class:`Measure` of a stored record whose verdict ``collect`` attached."""
    cfg = cfg or RewardConfig()
    verdict = record.get(TRAINING_KEY, {}).get("verdict") or {}
    score = float(verdict.get("score", 0.0))
    correct = bool(verdict.get("correct", False)) and score >= cfg.correct_threshold
    return Measure(
        calls=tool_calls(record),
        correct=correct,
        cost_usd=float(record.get("cost_usd", 0.0)),
        latency_s=float(record.get("latency_s", 0.0)),
        score=score,
    )


def _minmax(values: Sequence[float], *, lower_is_better: bool = False) -> list[float]:
    lo, hi = min(values), max(values)
    if hi - lo <= 1e-12:
        return [0.0] * len(values)
    if lower_is_better:
        return [(hi - v) / (hi - lo) for v in values]
    return [(v - lo) / (hi - lo) for v in values]


def outcome_rewards(group: Sequence[Measure]) -> list[float]:
    """1 for a correct trajectory, else 0."""
    return [1.0 if m.correct else 0.0 for m in group]


def efficiency_rewards(group: Sequence[Measure]) -> list[float]:
    """Mean of the reversed min-max normalised cost and latency: 1 = cheapest and fastest."""
    cost = _minmax([m.cost_usd for m in group], lower_is_better=True)
    latency = _minmax([m.latency_s for m in group], lower_is_better=True)
    return [(c + t) / 2 for c, t in zip(cost, latency, strict=True)]


def preference_rewards(
    group: Sequence[Measure], tools: Sequence[str], preference: Mapping[str, float]
) -> list[float]:
    """Tool-call counts, min-max normalised in the group, dotted with the tool weights."""
    columns = {t: _minmax([float(m.calls.get(t, 0)) for m in group]) for t in tools}
    return [sum(preference.get(t, 0.0) * columns[t][i] for t in tools) for i in range(len(group))]


def normalised_matrix(group: Sequence[Measure], tools: Sequence[str]) -> list[list[float]]:
    """``M_norm``: per trajectory the normalised ``[calls of each tool…, outcome, cost, latency]``.

    Counts and outcome: ``(x - min) / (max - min)``; cost and latency reversed,
    ``(max - x) / (max - min)``, so cheaper and faster is higher. 0 where max = min.
    """
    cols = [_minmax([float(m.calls.get(t, 0)) for m in group]) for t in tools]
    cols.append(_minmax(outcome_rewards(group)))
    cols.append(_minmax([m.cost_usd for m in group], lower_is_better=True))
    cols.append(_minmax([m.latency_s for m in group], lower_is_better=True))
    return [list(row) for row in zip(*cols, strict=True)]


def combined_rewards(
    group: Sequence[Measure], tools: Sequence[str], preference: Mapping[str, float]
) -> list[float]:
    """The paper's reward: ``M_norm · P`` for a correct trajectory, 0 for a wrong one."""
    weights = [float(preference.get(d, 0.0)) for d in dimensions(list(tools))]
    rows = normalised_matrix(group, tools)
    return [
        sum(w * x for w, x in zip(weights, row, strict=True)) if m.correct else 0.0
        for m, row in zip(group, rows, strict=True)
    ]


def group_std(rewards: Sequence[float]) -> float:
    """Population standard deviation of a group's rewards."""
    mean = sum(rewards) / len(rewards)
    return math.sqrt(sum((r - mean) ** 2 for r in rewards) / len(rewards))


def group_advantages(rewards: Sequence[float], min_std: float) -> list[float] | None:
    """``(R - mean) / std`` of one group, or None when its spread is below ``min_std``."""
    std = group_std(rewards)
    if std < min_std or std == 0.0:
        return None
    mean = sum(rewards) / len(rewards)
    return [(r - mean) / std for r in rewards]


@dataclass
class GroupScores:
    """Rewards and advantages of a batch of groups, with the groups dropped for low spread."""

    rewards: dict[str, list[float]]
    advantages: dict[str, list[float]]
    dropped: list[str]


def score_groups(
    groups: Mapping[str, Sequence[Measure]],
    tools: Sequence[str],
    preferences: Mapping[str, Mapping[str, float]],
    cfg: RewardConfig,
) -> GroupScores:
    """Combined rewards and advantages of each group; low-spread groups are dropped, counted."""
    out = GroupScores({}, {}, [])
    for gid, group in groups.items():
        pref = preferences.get(gid) or cfg.default_preference
        rewards = combined_rewards(group, tools, pref)
        out.rewards[gid] = rewards
        adv = group_advantages(rewards, cfg.min_group_std)
        if adv is None:
            out.dropped.append(gid)
        else:
            out.advantages[gid] = adv
    return out


class GroupReward:
    """A TRL reward function: the combined reward, None for samples of dropped groups.

    TRL passes the rollout's extra fields as keyword lists; this reads ``podium_measure``
    (a :class:`Measure` as a dict), ``podium_group`` and ``podium_preference``. None marks a
    sample unscorable, which TRL turns into a zero advantage: the group is dropped. Groups
    must be whole within a process (the per-process batch a multiple of ``num_generations``).
    """

    __name__ = "podium_reward"

    def __init__(self, tools: Sequence[str], cfg: RewardConfig | None = None) -> None:
        self.tools = list(tools)
        self.cfg = cfg or RewardConfig()
        self.dropped = 0
        self.groups = 0
        self.trajectories: list[str] = []  # ids of the runs this process scored, in order

    def __call__(
        self,
        prompts: list[Any],
        completions: list[Any],
        podium_measure: list[dict[str, Any]],
        podium_group: list[str],
        podium_preference: list[dict[str, float]],
        log_metric: Callable[[str, float], None] | None = None,
        podium_trajectory: list[str] | None = None,
        **_: Any,
    ) -> list[float | None]:
        """Rewards of a batch, in order."""
        self.trajectories += podium_trajectory or []
        index: dict[str, list[int]] = {}
        for i, gid in enumerate(podium_group):
            index.setdefault(gid, []).append(i)
        groups = {g: [Measure(**podium_measure[i]) for i in ix] for g, ix in index.items()}
        prefs = {g: podium_preference[ix[0]] for g, ix in index.items()}
        scores = score_groups(groups, self.tools, prefs, self.cfg)
        out: list[float | None] = [None] * len(podium_group)
        for gid, ix in index.items():
            if gid in scores.dropped:
                continue
            for i, r in zip(ix, scores.rewards[gid], strict=True):
                out[i] = r
        self.groups += len(index)
        self.dropped += len(scores.dropped)
        if log_metric is not None:
            log_metric("podium/dropped_groups", float(len(scores.dropped)))
        return out


JUDGE_PROMPT = (
    "Question: {question}\nReference answer: {gold}\nCandidate answer: {answer}\n"
    "Does the candidate answer agree with the reference? Reply with one word: yes or no."
)


def judge_outcome(question: str, gold: str, answer: str, cfg: RewardConfig) -> bool:
    """Ask the configured judge model (OpenAI-compatible seam) whether a free-form answer is right.

    Raises:
        ValueError: no judge model is configured.
    """
    import os

    from podium.tools.endpoints import chat_model

    if not cfg.judge_model:
        raise ValueError("no judge configured: set judge_model (and judge_base_url)")
    llm = chat_model(
        base_url=cfg.judge_base_url,
        model=cfg.judge_model,
        api_key=os.environ.get(cfg.judge_api_key_env, ""),
        max_tokens=4,
    )
    reply = llm.invoke(JUDGE_PROMPT.format(question=question, gold=gold, answer=answer))
    return str(reply.content).strip().lower().startswith("yes")
