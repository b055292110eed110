"""Stored trajectories → GRPO samples for the policy's tokenizer.

What the policy saw at turn k is the chat template (with the tools bound that turn) applied to
``render(messages before turn k)`` with a generation prompt — exactly what ``graph/policy.py``
sends. Two layouts:

* **per turn** (the paper's): one sample per policy turn — that prompt, and the turn's raw
  completion as the trainable tokens; every turn shares its trajectory's advantage. Exact.
* **per trajectory** (TRL's multi-turn layout): the first prompt, then every turn's raw
  completion (``env_mask`` 1) interleaved with the template's tool results and notes
  (``env_mask`` 0), with a per-token advantage. Turn k+1's prompt in that sequence is what the
  policy saw whenever its turn-k completion was already in the canonical ``<tool_call>`` form
  ``render`` writes back and the turn offered the same tools (``exact`` says so).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import (
    AIMessage,
    AnyMessage,
    HumanMessage,
    SystemMessage,
    messages_from_dict,
)
from langchain_core.tools import BaseTool
from langchain_core.utils.function_calling import convert_to_openai_tool

from podium.graph import prompts
from podium.graph.render import policy_tools, render

from .rewards import TRAINING_KEY, RewardConfig, combined_rewards, group_advantages, measure

_ROLES = {SystemMessage: "system", HumanMessage: "user", AIMessage: "assistant"}
_FINAL_NOTES = {prompts.FINAL.format(reason=r) for r in prompts.REASONS.values()}


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


def tool_schemas(tools: Sequence[BaseTool | dict[str, Any]]) -> list[dict[str, Any]]:
    """OpenAI tool schemas, as ``bind_tools`` sends them to the model."""
    return [convert_to_openai_tool(t) for t in tools]


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
    """One policy turn of a trajectory: what it was shown and what it wrote."""

    prompt: list[AnyMessage]
    raw: str
    forced: bool
    said: list[AnyMessage]  # the prompt and the turn as later prompts render it back


def turns_of(record: Mapping[str, Any]) -> list[Turn]:
    """The policy turns of a stored record, each with the rendered prompt the policy saw."""
    messages = messages_from_dict(record["messages"])
    ai_at = [i for i, m in enumerate(messages) if isinstance(m, AIMessage)]
    ai_at = ai_at[len(ai_at) - len(record.get("policy_turns", ai_at)) :]  # this run's turns
    turns = []
    for i in ai_at:
        before = messages[:i]
        last = before[-1] if before else None
        forced = isinstance(last, HumanMessage) and str(last.content) in _FINAL_NOTES
        raw = str(messages[i].content)
        turns.append(Turn(render(before), raw, forced, render(messages[: i + 1])))
    return turns


@dataclass
class GRPOSample:
    """One GRPO sample: prompt and completion ids, which completion tokens the model wrote."""

    prompt_ids: list[int]
    completion_ids: list[int]
    env_mask: list[int]
    advantage: float
    token_advantages: list[float]
    trajectory_id: str
    turn: int | None
    exact: bool


def _completion(tokenizer: Any, raw: str) -> list[int]:
    return [*tokenizer(raw, add_special_tokens=False)["input_ids"], tokenizer.eos_token_id]


def _is_prefix(prefix: list[int], ids: list[int]) -> bool:
    return ids[: len(prefix)] == prefix


def turn_samples(
    record: Mapping[str, Any], tokenizer: Any, pool: Mapping[str, BaseTool], advantage: float
) -> list[GRPOSample]:
    """The paper's layout: one exact sample per policy turn, sharing ``advantage``."""
    out = []
    for k, t in enumerate(turns_of(record)):
        tools = tool_schemas(list(policy_tools(dict(pool), forced=t.forced).values()))
        prompt = template_ids(tokenizer, t.prompt, tools, generation_prompt=True)
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


def trajectory_sample(
    record: Mapping[str, Any],
    tokenizer: Any,
    pool: Mapping[str, BaseTool],
    advantage: float = 0.0,
    generated: Sequence[Sequence[int]] | None = None,
) -> GRPOSample:
    """The whole trajectory as one sample: completions trainable, everything else masked.

    ``generated`` are the token ids the policy produced at each turn, when known (online
    training); otherwise each raw completion is encoded and closed with the EOS token.

    Raises:
        BatchError: the record has no policy turn, or the chat template is not
            prefix-consistent (a later prompt does not extend the earlier conversation).
    """
    turns = turns_of(record)
    if not turns:
        raise BatchError(f"trajectory {record.get('id')} has no policy turn to train on")
    if generated is not None and len(generated) != len(turns):
        raise BatchError(f"{len(generated)} generations for {len(turns)} turns")
    tools = tool_schemas(list(policy_tools(dict(pool), forced=False).values()))
    eos = tokenizer.eos_token_id
    prompt = template_ids(tokenizer, turns[0].prompt, tools, generation_prompt=True)
    completion: list[int] = []
    mask: list[int] = []
    exact = not any(t.forced for t in turns)
    for k, t in enumerate(turns):
        gen = list(generated[k]) if generated is not None else _completion(tokenizer, t.raw)
        completion += gen
        mask += [1] * len(gen)
        if k + 1 == len(turns):
            break
        seen = template_ids(tokenizer, t.prompt, tools, generation_prompt=True)
        after = template_ids(tokenizer, turns[k + 1].prompt, tools, generation_prompt=True)
        said = template_ids(tokenizer, t.said, tools, generation_prompt=False)
        if not (_is_prefix(seen, said) and _is_prefix(said, after)):
            raise BatchError("the chat template is not prefix-consistent across turns")
        canonical = said[len(seen) :]
        cut = max((i for i, tok in enumerate(canonical) if tok == eos), default=-1) + 1
        exact = exact and canonical[:cut] == gen
        rest = canonical[cut:] + after[len(said) :]  # e.g. "\n" + the next user turn
        completion += rest
        mask += [0] * len(rest)
    return GRPOSample(
        prompt,
        completion,
        mask,
        advantage,
        [advantage * m for m in mask],
        record["id"],
        None,
        exact,
    )


def group_samples(
    records: Sequence[Mapping[str, Any]],
    tokenizer: Any,
    pool: Mapping[str, BaseTool],
    cfg: RewardConfig | None = None,
    *,
    per_turn: bool = False,
) -> list[GRPOSample]:
    """GRPO samples of one group of trajectories (same task and preference).

    Rewards are the group's combined rewards (``rewards.py``); a group whose reward spread is
    below ``cfg.min_group_std`` yields no sample (it is dropped).
    """
    cfg = cfg or RewardConfig()
    if not records:
        return []
    info = records[0].get(TRAINING_KEY, {})
    pref = info.get("preference_vector") or cfg.default_preference
    rewards = combined_rewards([measure(r, cfg) for r in records], list(pool), pref)
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
