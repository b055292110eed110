"""Stored trajectories → training samples for the policy's tokenizer.

What the policy saw at turn k is the chat template, with the tools that turn was offered (the
record's ``tool_schemas``, named per turn: ``answer`` alone on a forced turn), applied to
``render(messages before turn k)`` with a generation prompt — exactly what ``graph/policy.py``
sends. Two layouts:

* **per turn** (the paper's): one sample per policy turn — that prompt, and the turn's raw
  completion as the trainable tokens; every turn shares its trajectory's advantage. Exact.
* **per trajectory** (TRL's multi-turn layout): the first prompt, then every turn as later
  prompts render it back (the canonical ``<tool_call>`` form), interleaved with the template's
  tool results and notes (``env_mask`` 0), with a per-token advantage. Turn k+1 is therefore
  conditioned on the text the policy was shown, not on what it wrote. A turn is trained as
  written (``env_mask`` 1) when its written tokens are that canonical text (the last turn, which
  no prompt shows, always is) and it was offered the sequence's tools; otherwise (a bare-JSON
  call re-rendered, a forced turn offered only ``answer``) it is context only — ``exact`` is
  then False — unless ``train_rewritten`` asks to train the canonical form of every turn
  (supervised fine-tuning: teach the form the graph writes back).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    HumanMessage,
    SystemMessage,
    messages_from_dict,
)
from langchain_core.tools import BaseTool

from podium.graph import prompts
from podium.graph.render import (
    ANSWER,
    OFFERED_KEY,
    offered_schemas,
    policy_tools,
    render,
    tool_schemas,
)

from .rewards import TRAINING_KEY, RewardConfig, combined_rewards, group_advantages, measure

_ROLES = {SystemMessage: "system", HumanMessage: "user", AIMessage: "assistant"}
_FINAL_NOTES = {prompts.FINAL.format(reason=r) for r in prompts.REASONS.values()}
Schemas = list[dict[str, Any]]


class BatchError(ValueError):
    """A trajectory cannot be turned into samples for this tokenizer (one line)."""


def chat_messages(messages: Sequence[AnyMessage]) -> list[dict[str, str]]:
    """Rendered LangChain messages as chat-template dicts (``role``, ``content``)."""
    out = []
    for m in messages:
        role = next((r for t, r in _ROLES.items() if isinstance(m, t)), None)
        if role is None:
            raise BatchError(f"cannot template a {type(m).__name__}: render() the messages first")
        out.append({"role": role, "content": str(m.content)})
    return out


def template_ids(
    tokenizer: Any,
    messages: Sequence[AnyMessage],
    tools: list[dict[str, Any]],
    *,
    generation_prompt: bool,
) -> list[int]:
    """Token ids of rendered ``messages`` under the tokenizer's chat template with ``tools``.

    The template is applied to text, which is then encoded without extra special tokens — what
    an inference server (vLLM, llama.cpp) does with a chat request.
    """
    text = tokenizer.apply_chat_template(
        chat_messages(messages),
        tools=tools or None,
        add_generation_prompt=generation_prompt,
        tokenize=False,
    )
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


@dataclass(frozen=True)
class Turn:
    """One policy turn of a trajectory: what it was shown and offered, and what it wrote."""

    prompt: list[AnyMessage]
    raw: str
    forced: bool
    said: list[AnyMessage]  # the prompt and the turn as later prompts render it back
    tools: Schemas = field(default_factory=list)  # the schemas the turn was offered


def _offered(
    record: Mapping[str, Any], msg: AIMessage, forced: bool, pool: Mapping[str, BaseTool] | None
) -> Schemas:
    """The tool schemas one turn was offered: stored with the record, else rebuilt from ``pool``.

    Raises:
        BatchError: the record predates stored schemas and no ``pool`` was given, or a turn
            names a tool the record has no schema of.
    """
    stored = record.get("tool_schemas")
    if stored is None:
        if pool is None:
            raise BatchError(
                f"trajectory {record.get('id')} has no stored tool schemas: collect it again, "
                "or pass the pool it ran with"
            )
        return tool_schemas(policy_tools(dict(pool), forced=forced).values())
    names = msg.response_metadata.get(OFFERED_KEY)
    if names is None:  # a turn stored without its offer: the run's tools, or answer if forced
        names = [ANSWER] if forced else [s["function"]["name"] for s in stored]
    try:
        return offered_schemas(stored, names)
    except KeyError as exc:
        raise BatchError(f"trajectory {record.get('id')}: {exc.args[0]}") from None


def turns_of(record: Mapping[str, Any], pool: Mapping[str, BaseTool] | None = None) -> list[Turn]:
    """The policy turns of a stored record, each with the rendered prompt and tools it saw.

    ``pool`` is only for records stored before runs kept their tool schemas.
    """
    messages = messages_from_dict(record["messages"])
    ai_at = [i for i, m in enumerate(messages) if isinstance(m, AIMessage)]
    ai_at = ai_at[len(ai_at) - len(record.get("policy_turns", ai_at)) :]  # this run's turns
    turns = []
    for i in ai_at:
        before, msg = messages[:i], messages[i]
        last = before[-1] if before else None
        forced = isinstance(last, HumanMessage) and str(last.content) in _FINAL_NOTES
        tools = _offered(record, msg, forced, pool)
        turns.append(
            Turn(render(before), str(msg.content), forced, render(messages[: i + 1]), tools)
        )
    return turns


@dataclass
class GRPOSample:
    """One sample: prompt and completion ids, which completion tokens are trained, how much."""

    prompt_ids: list[int]
    completion_ids: list[int]
    env_mask: list[int]
    advantage: float
    token_advantages: list[float]
    trajectory_id: str
    turn: int | None
    exact: bool
    logprobs: list[float] | None = None  # per completion token, when the generation's are known


def _completion(tokenizer: Any, raw: str) -> list[int]:
    return [*tokenizer(raw, add_special_tokens=False)["input_ids"], tokenizer.eos_token_id]


def _is_prefix(prefix: list[int], ids: list[int]) -> bool:
    return ids[: len(prefix)] == prefix


def turn_samples(
    record: Mapping[str, Any],
    tokenizer: Any,
    pool: Mapping[str, BaseTool] | None = None,
    advantage: float = 0.0,
) -> list[GRPOSample]:
    """The paper's layout: one exact sample per policy turn, sharing ``advantage``."""
    out = []
    for k, t in enumerate(turns_of(record, pool)):
        prompt = template_ids(tokenizer, t.prompt, t.tools, generation_prompt=True)
        completion = _completion(tokenizer, t.raw)
        out.append(
            GRPOSample(
                prompt,
                completion,
                [1] * len(completion),
                advantage,
                [advantage] * len(completion),
                record["id"],
                k,
                True,
            )
        )
    return out


def _said(tokenizer: Any, t: Turn, tools: Schemas, seen: list[int]) -> tuple[list[int], int]:
    """The sequence through turn ``t`` (whose prompt is ``seen``), and where its own text ends.

    Raises:
        BatchError: the template is not prefix-consistent, or does not close the turn with EOS.
    """
    said = template_ids(tokenizer, t.said, tools, generation_prompt=False)
    if not _is_prefix(seen, said):
        raise BatchError("the chat template is not prefix-consistent across turns")
    eos = [i for i in range(len(seen), len(said)) if said[i] == tokenizer.eos_token_id]
    if not eos:
        raise BatchError("the chat template does not end an assistant turn with the EOS token")
    return said, eos[-1] + 1


def trajectory_sample(
    record: Mapping[str, Any],
    tokenizer: Any,
    pool: Mapping[str, BaseTool] | None = None,
    advantage: float = 0.0,
    generated: Sequence[Sequence[int]] | None = None,
    *,
    logprobs: Sequence[Sequence[float]] | None = None,
    train_rewritten: bool = False,
) -> GRPOSample:
    """The whole trajectory as one sample: the policy's turns trainable, everything else masked.

    ``generated`` are the token ids the policy produced at each turn and ``logprobs`` theirs,
    when known (online training); otherwise each raw completion is encoded and closed with the
    EOS token. ``pool`` is only for records stored before runs kept their tool schemas.

    Raises:
        BatchError: the record has no policy turn, or the chat template is not
            prefix-consistent (a later prompt does not extend the earlier conversation).
    """
    turns = turns_of(record, pool)
    if not turns:
        raise BatchError(f"trajectory {record.get('id')} has no policy turn to train on")
    for given in (generated, logprobs):
        if given is not None and len(given) != len(turns):
            raise BatchError(f"{len(given)} generations for {len(turns)} turns")
    tools = turns[0].tools  # the sequence states its tools once: those of the first turn
    ids = template_ids(tokenizer, turns[0].prompt, tools, generation_prompt=True)
    start, mask, logps, exact = len(ids), [], [], True
    for k, t in enumerate(turns):
        said, cut = _said(tokenizer, t, tools, ids)
        own = said[len(ids) : cut]  # the turn as every later prompt shows it
        written = list(generated[k]) if generated is not None else _completion(tokenizer, t.raw)
        last = k + 1 == len(turns)
        if last and not train_rewritten:
            own = written  # no later prompt shows the last turn: it stays as written
        as_written = own == written and t.tools == tools
        exact = exact and as_written
        mask += [int(as_written or train_rewritten)] * len(own)
        logps += list(logprobs[k]) if logprobs is not None and as_written else [0.0] * len(own)
        if last:
            ids = ids + own
            break
        ids = template_ids(tokenizer, turns[k + 1].prompt, tools, generation_prompt=True)
        if not _is_prefix(said, ids):
            raise BatchError("the chat template is not prefix-consistent across turns")
        mask += [0] * (len(ids) - cut)  # the turn's closing text and the next user turn
        logps += [0.0] * (len(ids) - cut)
    return GRPOSample(
        ids[:start],
        ids[start:],
        mask,
        advantage,
        [advantage * m for m in mask],
        record["id"],
        None,
        exact,
        logps if logprobs is not None else None,
    )


def group_samples(
    records: Sequence[Mapping[str, Any]],
    tokenizer: Any,
    pool: Mapping[str, BaseTool] | None = None,
    cfg: RewardConfig | None = None,
    *,
    per_turn: bool = False,
) -> list[GRPOSample]:
    """GRPO samples of one group of trajectories (same task and preference).

    Rewards are the group's combined rewards (``rewards.py``) over the tools the runs were
    offered; a group whose reward spread is below ``cfg.min_group_std`` yields no sample.
    """
    cfg = cfg or RewardConfig()
    if not records:
        return []
    info = records[0].get(TRAINING_KEY, {})
    pref = info.get("preference_vector") or cfg.default_preference
    names = records[0].get("tools") or list(pool or {})
    rewards = combined_rewards([measure(r, cfg) for r in records], names, pref)
    advantages = group_advantages(rewards, cfg.min_group_std)
    if advantages is None:
        return []
    out: list[GRPOSample] = []
    for record, adv in zip(records, advantages, strict=True):
        if per_turn:
            out += turn_samples(record, tokenizer, pool, adv)
        else:
            out.append(trajectory_sample(record, tokenizer, pool, adv))
    return out
