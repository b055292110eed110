"""RFT (``podium train`` mode ``rft``): which run each task keeps, and what the loss covers."""

from __future__ import annotations

import json

import pytest

from podium.graph import TrajectoryStore
from podium.graph.testing import calc_tool
from podium.training.grpo.config import TrainConfigError
from podium.training.grpo.rft import best_run, driven_route, select_best

CALL = '<tool_call>\n{"name": "calc", "arguments": {"expression": "%s"}}\n</tool_call>'
CALC = '[{"name": "calc", "arguments": {"expression": "2+2"}}]'
ANSWER_4 = '[{"name": "answer", "arguments": {"text": "4"}}]'  # as the policy writes calls


def _answer(text: str) -> str:
    call = json.dumps({"name": "answer", "arguments": {"text": text}})
    return f"<tool_call>\n{call}\n</tool_call>"


def _run(task: str, sample: int, correct: bool, cost: float, calls=(), latency=1.0, pref=None):
    """A judged record as ``collect`` stores it (only the fields selection reads)."""
    return {
        "id": f"{task}-{sample}",
        "answer": "4",
        "tools": ["calc", "local_search"],
        "cost_usd": cost,
        "latency_s": latency,
        "policy_turns": [{"raw": "", "calls": [{"tool": t} for t in calls]}],
        "messages": [{"type": "ai", "data": {"content": ""}}],
        "training": {
            "task_id": task,
            "group_id": f"{task}@0",
            "sample": sample,
            "preference_vector": pref,
            "verdict": {"correct": correct, "score": float(correct), "detail": ""},
        },
    }


def test_a_correct_run_beats_any_cheaper_wrong_one():
    runs = [_run("t", 0, False, 0.0), _run("t", 1, True, 0.5), _run("t", 2, False, 0.01)]
    assert best_run(runs)["id"] == "t-1"


def test_among_correct_runs_the_cheapest_wins_then_the_preferred_tools_then_the_fastest():
    runs = [_run("t", 0, True, 0.02), _run("t", 1, True, 0.01), _run("t", 2, True, 0.03)]
    assert best_run(runs)["id"] == "t-1"
    pref = {"local_search": 1.0, "calc": 0.0}  # "prefer local_search", same cost
    runs = [
        _run("t", 0, True, 0.01, calls=["calc"], pref=pref),
        _run("t", 1, True, 0.01, calls=["local_search"], pref=pref),
    ]
    assert best_run(runs)["id"] == "t-1"
    runs = [_run("t", 0, True, 0.01, latency=3.0), _run("t", 1, True, 0.01, latency=2.0)]
    assert best_run(runs)["id"] == "t-1"
    runs = [_run("t", 0, True, 0.01), _run("t", 1, True, 0.01)]  # a full tie: the first
    assert best_run(runs)["id"] == "t-0"


def test_no_correct_run_keeps_nothing_and_selection_is_per_task_across_groups():
    assert best_run([_run("t", 0, False, 0.0), _run("t", 1, False, 0.1)]) is None
    records = [
        _run("a", 0, False, 0.0),
        _run("a", 1, True, 0.2),
        _run("b", 0, False, 0.0),
        {**_run("a", 2, True, 0.1), "training": {**_run("a", 2, True, 0.1)["training"]}},
        {"id": "untagged", "tools": []},  # a run `collect` did not judge
    ]
    records[3]["training"]["group_id"] = "a@explore"  # another group of the same task
    selection = select_best(records)
    assert {t: r["id"] for t, r in selection.best.items()} == {"a": "a-2"}
    assert selection.without_correct == ["b"]
    assert (selection.runs, selection.tasks) == (4, 2)


@pytest.mark.parametrize(
    ("raw", "answer"),
    [
        ("", "4"),  # a native call the engine parsed
        (_answer("4"), "4"),
        ('answer({"text": "4"})', "4"),  # a call written as code is still a call
        ("4", "4"),  # plain text the graph took as the answer
        ("answer: 4", "4"),  # a label before it is dropped
        ('answer = "4"', "4"),
        ("answer", None),  # a malformed last turn is no answer
        ('{"name": "calc", "arguments": {"expression": "2+2"}}', None),  # nor another call
    ],
)
def test_rft_trains_runs_that_ended_on_an_answer_as_that_answer_in_plain_text(raw, answer):
    from podium.training.grpo.rft import trainable

    run = _run("t", 0, True, 0.01) | {"answer": "answer: 4" if "answer:" in raw else "4"}
    run["policy_turns"] = [{"raw": raw, "calls": []}]
    made = trainable(run)
    assert (made and made["answer"]) == answer
    if made:
        last = made["messages"][-1]["data"]
        assert (last["content"], last["tool_calls"]) == ("4", [])
    assert (best_run([run]) is not None) is (answer is not None)
    tidy = _run("t", 1, True, 0.05)  # dearer, but it answered: it wins over a run that did not
    assert best_run([run, tidy])["id"] == ("t-0" if answer else "t-1")


def test_a_teachers_answer_from_memory_comes_after_every_other_correct_run():
    search = _run("t", 0, True, 0.02, calls=["local_search"]) | {"context": {"policy_model": "p"}}
    memory = _run("t", 1, True, 0.01) | {"context": {"policy_model": "teacher"}}
    assert best_run([search, memory])["id"] == "t-1"  # no student named: the cheapest
    assert best_run([search, memory], student="p")["id"] == "t-0"
    own = _run("t", 2, True, 0.01) | {"context": {"policy_model": "p"}}  # the student's own
    assert best_run([search, memory, own], student="p")["id"] == "t-2"
    wrong = {**search, "training": _run("t", 0, False, 0.02)["training"]}
    assert best_run([wrong, memory], student="p")["id"] == "t-1"  # nothing else is correct
    assert select_best([search, memory], student="p").best["t"]["id"] == "t-0"


def test_a_run_that_copies_a_tool_description_into_its_call_is_not_trained():
    from podium.training.grpo.rft import trainable

    schema = {"function": {"name": "local_search", "description": "Search Wikipedia.",
                           "parameters": {"properties": {"query": {
                               "description": "What to look up, as a short query."}}}}}  # fmt: skip
    run = _run("t", 0, True, 0.01) | {"tool_schemas": [schema]}
    query = {"tool": "local_search", "args": {"query": "What to look up, as a short query."}}
    call = {"name": "local_search", "args": query["args"], "id": "c1", "type": "tool_call"}
    first = {"type": "ai", "data": {"content": "", "tool_calls": [call]}}
    run["messages"] = [first, {"type": "tool", "data": {}}, run["messages"][0]]
    run["policy_turns"] = [{"raw": "", "calls": [query]}, {"raw": "4", "calls": []}]
    assert trainable(run) is None
    query["args"]["query"] = "capital of Honduras"
    last = trainable(run)["messages"][-1]["data"]
    assert last["content"] == ANSWER_4  # after a tool call: the answer call, as it writes it


def test_an_answer_the_graph_would_read_as_a_call_is_trained_as_the_answer_call():
    from podium.training.grpo.rft import trainable

    run = _run("t", 0, True, 0.01) | {"answer": "answer(4)"}  # plain, it would call answer(4)
    run["policy_turns"] = [{"raw": "", "calls": []}]
    last = trainable(run)["messages"][-1]["data"]
    assert last["content"] == '[{"name": "answer", "arguments": {"text": "answer(4)"}}]'
    assert [c["name"] for c in last["tool_calls"]] == ["answer"]


def test_the_loss_covers_the_policys_tokens_and_not_the_tool_output(
    fake_graph, tmp_path, tiny_policy_dir, calc_pool, judged_runs, train_config
):
    from podium.graph.render import policy_tools
    from podium.training.grpo.rft import build_rft_trainer
    from podium.training.grpo.samples import template_ids, tool_schemas

    store = tmp_path / "runs.sqlite"
    prompts = judged_runs(store, [[_answer("5")], [CALL % "2+2", _answer("4")]])
    cfg = train_config(
        f'mode = "rft"\nmodel = "{tiny_policy_dir}"\noutput_dir = "{tmp_path / "out"}"\n'
        f'store = "{store}"\n',
    )
    trainer, selection, skipped = build_rft_trainer(cfg)
    assert list(selection.best) == ["q1"] and skipped == []
    assert selection.best["q1"]["answer"] == "4"  # the wrong, cheaper run is not kept
    call_row, answer_row = trainer.train_dataset
    tok = trainer.processing_class
    # The first row starts with exactly the prompt the policy was shown at its first turn.
    tools = tool_schemas(list(policy_tools({"calc": calc_tool()}, forced=False).values()))
    first = template_ids(tok, prompts[1][0], tools, generation_prompt=True)
    assert call_row["input_ids"][: len(first)] == first
    # TRL's labels (from our completion_mask): each turn's completion, nothing else.
    for row, wrote in ((call_row, CALC), (answer_row, ANSWER_4)):
        ids, labels = row["input_ids"], row["labels"]
        trained = [t for t, label in zip(ids, labels, strict=True) if label != -100]
        assert tok.decode(trained) == wrote + "<|im_end|>"
    hidden = tok.decode(
        [
            t
            for t, lab in zip(answer_row["input_ids"], answer_row["labels"], strict=True)
            if lab == -100
        ]
    )
    assert "<tool_response>\n4\n</tool_response>" in hidden
    # The CPU preset: r=16 on the last layers (the tiny model has 2; the last 4 = both).
    lora = trainer.model.peft_config["default"]
    assert (lora.r, lora.lora_alpha, trainer.args.learning_rate) == (16, 32, 2e-4)
    assert trainer.args.completion_only_loss


@pytest.mark.parametrize(
    "script",
    [
        ['{"name": "calc", "arguments": {"expression": "2+2"}}', _answer("4")],
        [CALL % "2+2", "4"],
        [CALL % "2+2", "answer(4)"],
        ["answer", CALL % "2+2", "answer: 4"],  # a malformed detour is cut out
    ],
)
def test_every_turn_is_trained_on_its_prompt_in_the_form_the_policy_writes(
    fake_graph, tmp_path, tiny_policy_dir, calc_pool, judged_runs, script
):
    from transformers import AutoTokenizer

    from podium.graph.render import policy_tools
    from podium.training.grpo.rft import record_rows, trainable
    from podium.training.grpo.samples import template_ids, tool_schemas

    store = tmp_path / "runs.sqlite"
    (prompts,) = judged_runs(store, [script])
    (record,) = TrajectoryStore(store).records("training")
    assert trainable(record)["answer"] == "4"
    tok = AutoTokenizer.from_pretrained(tiny_policy_dir)
    pool = {"calc": calc_tool()}
    rows = record_rows(record, tok, pool)
    tools = tool_schemas(list(policy_tools(pool, forced=False).values()))
    first = template_ids(tok, prompts[0], tools, generation_prompt=True)
    assert len(rows) == 2 and rows[0]["input_ids"][: len(first)] == first
    for row, wrote in zip(rows, [CALC, ANSWER_4], strict=True):
        ids, mask = row["input_ids"], row["completion_mask"]
        assert mask == sorted(mask)  # the prompt, then the trained completion
        assert tok.decode([t for t, m in zip(ids, mask, strict=True) if m]) == wrote + "<|im_end|>"
    second = tok.decode(rows[1]["input_ids"])
    assert "<tool_response>\n4\n</tool_response>" in second  # what the call returned
    assert "could not be run" in str(prompts[-1]) or len(script) == 2
    assert "could not be run" not in second


def test_missing_store_and_store_without_a_correct_run(
    fake_graph, tmp_path, tiny_policy_dir, calc_pool, judged_runs, train_config
):
    from podium.training.grpo.rft import build_rft_trainer

    store = tmp_path / "runs.sqlite"
    body = f'mode = "rft"\nmodel = "{tiny_policy_dir}"\noutput_dir = "o"\nstore = "{store}"\n'
    with pytest.raises(TrainConfigError, match=f"store {store} does not exist: run podium collect"):
        build_rft_trainer(train_config(body))
    judged_runs(store, [[_answer("5")], [_answer("six")]])
    with pytest.raises(TrainConfigError, match="no correct run to learn from") as err:
        build_rft_trainer(train_config(body))
    assert "\n" not in str(err.value) and "(2 judged runs of 1 tasks)" in str(err.value)


def test_rft_preset_last_layers_and_config_checks(tmp_path, train_config):
    model = tmp_path / "m"
    model.mkdir()
    (model / "config.json").write_text('{"num_hidden_layers": 24}')
    head = f'mode = "rft"\nmodel = "{model}"\noutput_dir = "o"\nstore = "s"\n'
    cfg = train_config(head)
    lora, args = cfg.lora_config(), cfg.sft_args()
    assert lora.layers_to_transform == [20, 21, 22, 23] and (lora.r, lora.lora_alpha) == (16, 32)
    assert (args.learning_rate, args.lr_scheduler_type) == (2e-4, "constant")
    assert args.completion_only_loss and not args.gradient_checkpointing
    assert train_config(head + "last_layers = 0\n").lora_config().layers_to_transform is None
    paper = train_config(head + 'preset = "paper"\n[sft]\nmax_steps = 3\n')
    assert (paper.lora_config().r, paper.sft_args().learning_rate) == (64, 1e-6)
    assert paper.sft_args().max_steps == 3
    with pytest.raises(TrainConfigError, match=r"unknown key 'lr' in \[sft\]"):
        train_config(head + "[sft]\nlr = 1\n")
    with pytest.raises(TrainConfigError, match="rft training needs store"):
        train_config('mode = "rft"\nmodel = "m"\noutput_dir = "o"\n')
    with pytest.raises(TrainConfigError, match=r"init_adapter .* is not a PEFT adapter folder"):
        train_config(head + f'init_adapter = "{tmp_path}"\n')
    with pytest.raises(TrainConfigError, match="nor a packaged model"):
        train_config('mode = "rft"\nmodel = "m"\noutput_dir = "o"\nstore = "s"\n').model_dir()


def test_by_route_the_route_right_most_often_wins_over_a_cheaper_lucky_one():
    lucky = [_run("t", i, i == 0, 0.01) for i in range(3)]  # answered at once: right 1 in 3
    steady = [_run("t", 3 + i, True, 0.03, calls=["calc"]) for i in range(2)]
    assert best_run([*lucky, *steady])["id"] == "t-0"  # the single best run: the lucky one
    assert best_run([*lucky, *steady], by_route=True)["id"] == "t-3"
    search = [_run("t", 5, True, 0.02, calls=["local_search"])]  # same rate, cheaper in the mean
    assert best_run([*lucky, *steady, *search], by_route=True)["id"] == "t-5"
    wrong = [_run("t", 6, False, 0.0, calls=["local_search"]) for _ in range(3)]
    assert best_run([*search, *wrong], by_route=True)["id"] == "t-5"  # 1 in 4: still its best
    assert select_best([*lucky, *steady], by_route=True).best["t"]["id"] == "t-3"


def test_a_demonstrations_unbilled_policy_turns_are_priced_as_the_policys():
    from podium.training.grpo.rft import priced, route

    def ledger(policy_usd: float, tool_usd: float) -> list[dict]:
        turn = {"kind": "policy", "cost_usd": policy_usd}
        return [turn, {"kind": "tool", "cost_usd": tool_usd}, turn]

    own = _run("t", 0, True, 0.025, calls=["local_search"])
    own |= {"ledger": ledger(0.01, 0.005), "context": {"policy_model": "p"}}
    demo = _run("t", 1, True, 0.002, calls=["oracle"])
    demo |= {"ledger": ledger(0.0, 0.002), "context": {"policy_model": "router:strongest"}}
    assert priced([own, demo]) == pytest.approx([0.025, 0.022])  # two turns at $0.01
    assert best_run([own, demo])["id"] == "t-1"
    demo["ledger"][1]["cost_usd"] = demo["cost_usd"] = 0.01  # now dearer than the search
    assert best_run([own, demo])["id"] == "t-0"
    assert (route(own), route(demo), route(_run("t", 2, True, 0.0))) == (
        "local_search",
        "oracle",
        "answer",
    )


@pytest.mark.parametrize(("tokens", "plain"), [(50, True), (0, False)])
def test_an_experts_reply_passed_on_word_for_word_is_trained_as_plain_text(tokens, plain):
    from podium.training.grpo.rft import trainable

    reply = '```python\ndef f():\n    """Doc."""\n    return 42\n```'
    call = {"name": "oracle", "args": {"question": "f?"}, "id": "c1", "type": "tool_call"}
    run = _run("t", 0, True, 0.01, calls=["oracle"]) | {"answer": reply}
    run["policy_turns"] = [{"raw": "", "calls": [{"tool": "oracle"}]}, {"raw": "", "calls": []}]
    run["ledger"] = [{"kind": "policy"}, {"kind": "tool", "output_tokens": tokens}]
    run["messages"] = [
        {"type": "human", "data": {"content": "f?"}},
        {"type": "ai", "data": {"content": "", "tool_calls": [call]}},
        {"type": "tool", "data": {"content": reply}},
        {"type": "ai", "data": {"content": "", "tool_calls": []}},
    ]
    last = trainable(run)["messages"][-1]["data"]
    if plain:  # another model's reply: relayed as it is, no JSON string to escape it into
        assert (last["content"], last["tool_calls"]) == (reply, [])
    else:  # a program's output: the answer call, as after any other tool
        assert [c["args"]["text"] for c in last["tool_calls"]] == [reply]
        assert json.loads(last["content"])[0]["name"] == "answer"


def test_pooled_each_tasks_route_rate_leans_on_the_routes_rate_in_its_suite():
    def task(name: str, own_right: bool) -> list[dict]:
        own = _run(name, 0, own_right, 0.01)  # answered at once: cheap
        calc = _run(name, 1, True, 0.03, calls=["calc"])
        return [own, calc]

    runs = [*task("a", True), *task("b", False), *task("c", False)]
    for r in runs:
        r["training"]["suite"] = "chat"
    per_task = select_best(runs, by_route=True)
    assert per_task.best["a"]["id"] == "a-0"  # both right once: the cheaper wins
    pooled = select_best(runs, by_route=True, pooled=True)
    # answering at once is right on 1 of the suite's 3 tasks, calc on all 3: calc
    assert [pooled.best[t]["id"] for t in "abc"] == ["a-1", "b-1", "c-1"]
    other = [*task("d", True)]
    for r in other:
        r["training"]["suite"] = "wiki"  # a suite of its own: its own rates
    assert select_best([*runs, *other], by_route=True, pooled=True).best["d"]["id"] == "d-0"


def test_a_route_is_judged_per_model_that_drove_it():
    def by(model: str, run: dict) -> dict:
        return {**run, "context": {"policy_model": model}}

    runs = [
        by("policy", _run("t", 0, False, 0.01, calls=["calc"])),
        by("policy", _run("t", 1, False, 0.01, calls=["calc"])),
        by("teacher", _run("t", 2, True, 0.01, calls=["calc"])),
        by("policy", _run("t", 3, True, 0.02, calls=["local_search"])),
        by("policy", _run("t", 4, False, 0.02, calls=["local_search"])),
    ]
    # calc is right 1 time in 3 and local_search 1 in 2; the teacher's calc, 1 in 1, is copied
    assert driven_route(runs[2]) == "calc@teacher"
    assert best_run(runs, student="policy", by_route=True)["id"] == "t-2"
