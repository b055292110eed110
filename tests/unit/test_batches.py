from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, messages_from_dict

from podium.graph import Context, TrajectoryStore, graph
from podium.graph.render import policy_tools, render
from podium.graph.testing import calc_tool
from podium.training.grpo.samples import (
    BatchError,
    chat_messages,
    group_samples,
    template_ids,
    tool_schemas,
    trajectory_sample,
    turn_samples,
)

CALL = '<tool_call>\n{"name": "calc", "arguments": {"expression": "2+2"}}\n</tool_call>'
ANSWER = '<tool_call>\n{"name": "answer", "arguments": {"text": "4"}}\n</tool_call>'


@pytest.fixture(scope="module")
def tokenizer(tiny_policy_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_policy_dir)


def _run(fake_graph, script, verdict=True):
    tools = [calc_tool()]
    policy, ctx = fake_graph(script, tools)
    graph.invoke({"question": "What is 2+2?"}, context=Context(**ctx))
    store = TrajectoryStore(ctx["trajectory_db"])
    record = store.latest(1)[0]
    record["training"] = {"verdict": {"correct": verdict, "score": float(verdict)}}
    return record, policy, {t.name: t for t in tools}


def test_retokenising_reproduces_what_the_policy_saw(fake_graph, tokenizer):
    record, policy, pool = _run(fake_graph, [CALL, ANSWER])
    assert len(policy.prompts) == 2
    # Per turn: the prompt rebuilt from the stored record is exactly the one the graph sent.
    samples = turn_samples(record, tokenizer, pool, advantage=1.0)
    for sample, sent in zip(samples, policy.prompts, strict=True):
        tools = tool_schemas(list(policy_tools(pool, forced=False).values()))
        assert sample.prompt_ids == template_ids(tokenizer, sent, tools, generation_prompt=True)
    assert [tokenizer.decode(s.completion_ids) for s in samples] == [
        CALL + "<|im_end|>",
        ANSWER + "<|im_end|>",
    ]
    # Whole trajectory: the token sequence equals the tokenizer's own chat template over the
    # full conversation (which closes with "<|im_end|>\n"; the policy stopped at <|im_end|>).
    sample = trajectory_sample(record, tokenizer, pool, advantage=0.5)
    messages = render(messages_from_dict(record["messages"]))
    full = tokenizer.apply_chat_template(
        chat_messages(messages),
        tools=tool_schemas(list(policy_tools(pool, forced=False).values())),
        tokenize=True,
    )["input_ids"]
    assert sample.prompt_ids + sample.completion_ids == full[:-1]
    assert tokenizer.decode(full[-1:]) == "\n"
    assert sample.exact
    # The trainable tokens are exactly the two completions; the tool result is masked.
    trained = [t for t, m in zip(sample.completion_ids, sample.env_mask, strict=True) if m]
    assert tokenizer.decode(trained) == CALL + "<|im_end|>" + ANSWER + "<|im_end|>"
    pairs = zip(sample.completion_ids, sample.env_mask, strict=True)
    hidden = tokenizer.decode([t for t, m in pairs if not m])
    assert "<tool_response>\n4\n</tool_response>" in hidden
    assert sample.token_advantages == [0.5 * m for m in sample.env_mask]


def test_non_canonical_completion_is_flagged_not_exact(fake_graph, tokenizer):
    bare = '{"name": "calc", "arguments": {"expression": "2+2"}}'  # bare JSON, as Qwen 0.5B does
    record, _, pool = _run(fake_graph, [bare, ANSWER])
    sample = trajectory_sample(record, tokenizer, pool)
    trained = [t for t, m in zip(sample.completion_ids, sample.env_mask, strict=True) if m]
    assert tokenizer.decode(trained) == bare + "<|im_end|>" + ANSWER + "<|im_end|>"
    assert not sample.exact  # the next prompt showed the call re-rendered in <tool_call> form
    assert all(s.exact for s in turn_samples(record, tokenizer, pool, 0.0))


def test_group_samples_drop_equal_groups_and_split_turns(fake_graph, tokenizer):
    right, _, pool = _run(fake_graph, [CALL, ANSWER], verdict=True)
    five = '<tool_call>\n{"name": "answer", "arguments": {"text": "5"}}\n</tool_call>'
    wrong, _, _ = _run(fake_graph, [five], verdict=False)
    group = [right, wrong]
    samples = group_samples(group, tokenizer, pool)
    assert [s.advantage for s in samples] == pytest.approx([1.0, -1.0])
    per_turn = group_samples(group, tokenizer, pool, per_turn=True)
    assert [(s.turn, s.advantage) for s in per_turn] == [(0, 1.0), (1, 1.0), (0, -1.0)]
    assert group_samples([right, right], tokenizer, pool) == []  # equal rewards: dropped


def test_record_without_turns_is_refused(tokenizer):
    record = {"id": "x", "messages": [], "policy_turns": []}
    with pytest.raises(BatchError, match="no policy turn"):
        trajectory_sample(record, tokenizer, {})


def test_chat_messages_refuses_unrendered_tool_messages():
    from langchain_core.messages import ToolMessage

    with pytest.raises(BatchError, match="render"):
        chat_messages([AIMessage("x"), ToolMessage("y", tool_call_id="1")])
