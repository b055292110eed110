from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage, messages_from_dict

from podium.graph import Context, TrajectoryStore, graph
from podium.graph.render import render
from podium.graph.testing import calc_tool, expert_tool
from podium.training.grpo.samples import (
    BatchError,
    chat_messages,
    group_samples,
    template_ids,
    trajectory_sample,
    turn_samples,
)

CALL = '<tool_call>\n{"name": "calc", "arguments": {"expression": "2+2"}}\n</tool_call>'
ANSWER = '<tool_call>\n{"name": "answer", "arguments": {"text": "4"}}\n</tool_call>'


@pytest.fixture(scope="module")
def tokenizer(tiny_policy_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_policy_dir)


def _run(fake_graph, script, verdict=True, tools=None, **ctx_kwargs):
    tools = tools or [calc_tool()]
    policy, ctx = fake_graph(script, tools)
    graph.invoke({"question": "What is 2+2?"}, context=Context(**ctx, **ctx_kwargs))
    store = TrajectoryStore(ctx["trajectory_db"])
    record = store.latest(1)[0]
    record["training"] = {"verdict": {"correct": verdict, "score": float(verdict)}}
    return record, policy, {t.name: t for t in tools}


def _decode(tokenizer, sample, trained=True):
    pairs = zip(sample.completion_ids, sample.env_mask, strict=True)
    return tokenizer.decode([t for t, m in pairs if bool(m) == trained])


def test_retokenising_reproduces_what_the_policy_saw(fake_graph, tokenizer):
    record, policy, _ = _run(fake_graph, [CALL, ANSWER])
    assert len(policy.prompts) == 2
    # Per turn: the prompt rebuilt from the stored record alone is exactly what the graph sent,
    # with exactly the tool schemas the policy was bound with.
    samples = turn_samples(record, tokenizer, advantage=1.0)
    for sample, sent, bound in zip(samples, policy.prompts, policy.schemas, strict=True):
        assert sample.prompt_ids == template_ids(tokenizer, sent, bound, generation_prompt=True)
    assert [tokenizer.decode(s.completion_ids) for s in samples] == [
        CALL + "<|im_end|>",
        ANSWER + "<|im_end|>",
    ]
    # Whole trajectory: the token sequence equals the tokenizer's own chat template over the
    # full conversation (which closes with "<|im_end|>\n"; the policy stopped at <|im_end|>).
    sample = trajectory_sample(record, tokenizer, advantage=0.5)
    messages = render(messages_from_dict(record["messages"]))
    full = tokenizer.apply_chat_template(
        chat_messages(messages), tools=policy.schemas[0], tokenize=True
    )["input_ids"]
    assert sample.prompt_ids + sample.completion_ids == full[:-1]
    assert tokenizer.decode(full[-1:]) == "\n"
    assert sample.exact
    # The trainable tokens are exactly the two completions; the tool result is masked.
    assert _decode(tokenizer, sample) == CALL + "<|im_end|>" + ANSWER + "<|im_end|>"
    assert "<tool_response>\n4\n</tool_response>" in _decode(tokenizer, sample, trained=False)
    assert sample.token_advantages == [0.5 * m for m in sample.env_mask]


def test_a_rewritten_turn_conditions_the_next_on_the_canonical_text(fake_graph, tokenizer):
    bare = '{"name": "calc", "arguments": {"expression": "2+2"}}'  # bare JSON, as Qwen 0.5B does
    record, policy, _ = _run(fake_graph, [bare, ANSWER])
    sample = trajectory_sample(record, tokenizer)
    # The sequence is the conversation as the policy was shown it: its bare call re-rendered.
    shown = template_ids(tokenizer, policy.prompts[1], policy.schemas[1], generation_prompt=True)
    assert (sample.prompt_ids + sample.completion_ids)[: len(shown)] == shown
    assert bare + "<|im_end|>" not in tokenizer.decode(sample.completion_ids)
    # The policy did not write the canonical call: context, not trained; exact says so.
    assert _decode(tokenizer, sample) == ANSWER + "<|im_end|>"
    assert not sample.exact
    assert CALL in _decode(tokenizer, sample, trained=False)
    # Supervised fine-tuning trains the canonical form instead (same tokens, wider mask).
    taught = trajectory_sample(record, tokenizer, train_rewritten=True)
    assert taught.completion_ids == sample.completion_ids
    assert _decode(tokenizer, taught) == CALL + "<|im_end|>" + ANSWER + "<|im_end|>"
    # Per turn, each sample is what the policy saw and wrote: exact.
    per_turn = turn_samples(record, tokenizer)
    assert all(s.exact for s in per_turn)
    assert tokenizer.decode(per_turn[0].completion_ids) == bare + "<|im_end|>"


def test_online_logprobs_follow_the_trained_tokens(fake_graph, tokenizer):
    bare = '{"name": "calc", "arguments": {"expression": "2+2"}}'
    record, _, _ = _run(fake_graph, [bare, ANSWER])
    written = [tokenizer(t, add_special_tokens=False)["input_ids"] for t in (bare, ANSWER)]
    # The last turn was cut at max_new_tokens (no EOS): no prompt shows it, so it stays as written.
    generated = [[*written[0], tokenizer.eos_token_id], written[1][:-2]]
    logps = [[-float(i + 1)] * len(g) for i, g in enumerate(generated)]
    sample = trajectory_sample(record, tokenizer, generated=generated, logprobs=logps)
    assert len(sample.logprobs) == len(sample.completion_ids)
    assert sample.completion_ids[-len(generated[1]) :] == generated[1]
    trained = [lp for lp, m in zip(sample.logprobs, sample.env_mask, strict=True) if m]
    assert trained == logps[1]  # the answer's own log-probs; the rewritten call has none
    assert set(sample.logprobs) == {0.0, -2.0}


def test_a_forced_turn_is_rendered_with_the_answer_tool_alone(fake_graph, tokenizer):
    again = CALL.replace("2+2", "1+3")
    record, policy, _ = _run(fake_graph, [CALL, again, ANSWER], max_turns=3)
    assert policy.bound[-1] == ["answer"] and record["stopped_by"] == "max_turns"
    assert [t["tools"] for t in record["policy_turns"]] == [["answer", "calc"]] * 2 + [["answer"]]
    samples = turn_samples(record, tokenizer)
    for sample, sent, bound in zip(samples, policy.prompts, policy.schemas, strict=True):
        assert sample.prompt_ids == template_ids(tokenizer, sent, bound, generation_prompt=True)
    # One sequence states the first turn's tools: the forced turn is context there, not trained.
    sample = trajectory_sample(record, tokenizer)
    assert not sample.exact
    assert _decode(tokenizer, sample) == CALL + "<|im_end|>" + again + "<|im_end|>"


def test_samples_use_the_tools_the_run_offered_not_the_pool_at_training(fake_graph, tokenizer):
    from podium.graph.resources import tools_override

    own = [expert_tool()]  # what a suite that brings its own functions (fc) offers
    call = '<tool_call>\n{"name": "oracle", "arguments": {"question": "2+2?"}}\n</tool_call>'
    policy, ctx = fake_graph([call, ANSWER], [calc_tool()])
    with tools_override(own):
        graph.invoke({"question": "What is 2+2?"}, context=Context(**ctx))
    record = TrajectoryStore(ctx["trajectory_db"]).latest(1)[0]
    assert record["tools"] == ["oracle"] and policy.bound[0] == ["answer", "oracle"]
    assert record["tool_schemas"] == policy.schemas[0]
    wrong_pool = {"calc": calc_tool()}  # the profile's pool at training time: ignored
    for sample, sent, bound in zip(
        turn_samples(record, tokenizer, wrong_pool), policy.prompts, policy.schemas, strict=True
    ):
        assert sample.prompt_ids == template_ids(tokenizer, sent, bound, generation_prompt=True)
    assert trajectory_sample(record, tokenizer, wrong_pool).exact


def test_a_record_without_stored_schemas_needs_the_pool(fake_graph, tokenizer):
    record, policy, pool = _run(fake_graph, [CALL, ANSWER])
    del record["tool_schemas"]
    with pytest.raises(BatchError, match="no stored tool schemas"):
        turn_samples(record, tokenizer)
    sample = turn_samples(record, tokenizer, pool)[0]
    bound = policy.schemas[0]
    assert sample.prompt_ids == template_ids(
        tokenizer, policy.prompts[0], bound, generation_prompt=True
    )


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
