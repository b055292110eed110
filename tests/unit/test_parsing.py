"""Every form of tool call the policy may write."""

from __future__ import annotations

import pytest
from langchain_core.messages import AIMessage

from podium.graph.parsing import parse_tool_calls
from podium.graph.testing import calc_tool, expert_tool

TOOLS = {t.name: t for t in (calc_tool(), expert_tool())}
CALL = '{"name": "calc", "arguments": {"expression": "2+2"}}'


def parse(content, **kw):
    return parse_tool_calls(AIMessage(content=content, **kw), TOOLS)


@pytest.mark.parametrize(
    "content",
    [
        CALL,
        f"<tool_call>\n{CALL}\n</tool_call>",
        f"<tool_call>{CALL}",  # unclosed tag
        f"I will compute it.\n```json\n{CALL}\n```",
        f"```\n{CALL}\n```",
        '{"name": "calc", "parameters": {"expression": "2+2"}}',
        '{"type": "function", "function": {"name": "calc", '
        '"arguments": "{\\"expression\\": \\"2+2\\"}"}}',
        '{"name": "calc", "arguments": "2+2"}',  # bare string for a one-field tool
        f"<think>I need a tool.</think>{CALL}",
        CALL[:-1],  # a bare call missing its last brace (seen from the 0.5B policy)
        CALL[:-1] + "]}",  # ... or with a stray bracket: json-repair recovers both
        '```json\n{"name": "calc", "arguments": {"expression": """2+2"""}}\n```',  # Python quotes
        '{"name": "calc", "arguments": {"expression": """2+2"""}}',
        "I will compute.\n```json\n" + CALL[:-1] + "\n```",  # a broken call in a fence
        'calc({expression: "2+2"})',  # a call written as code (seen from the 0.5B policy)
        "calc({'expression': '2+2'})",
        'calc({"expression": "2+2"});',
        'calc(expression="2+2")',
        "calc('2+2')",  # one positional value for a one-field tool
    ],
)
def test_every_form_gives_the_same_call(content):
    parsed = parse(content)
    assert not parsed.errors
    assert [(c["name"], c["args"]) for c in parsed.calls] == [("calc", {"expression": "2+2"})]
    assert parsed.calls[0]["id"]


def test_bare_keys_are_quoted_outside_strings_only():
    parsed = parse('oracle({question: "x, note: y", })')
    assert [c["args"] for c in parsed.calls] == [{"question": "x, note: y"}]


def test_native_tool_calls_are_kept():
    msg = AIMessage(
        content="", tool_calls=[{"name": "calc", "args": {"expression": "1"}, "id": "abc"}]
    )
    parsed = parse_tool_calls(msg, TOOLS)
    assert parsed.calls[0]["id"] == "abc" and not parsed.errors


def test_parallel_calls_in_a_list_and_in_several_tags():
    two = f'[{CALL}, {{"name": "oracle", "arguments": {{"question": "q"}}}}]'
    assert [c["name"] for c in parse(two).calls] == ["calc", "oracle"]
    tags = f"<tool_call>{CALL}</tool_call>\n<tool_call>{CALL}</tool_call>"
    assert len(parse(tags).calls) == 2


@pytest.mark.parametrize(
    ("content", "error"),
    [
        ('{"name": "teleport", "arguments": {}}', "no tool named 'teleport'"),
        ('<tool_call>{"name": "calc", "arguments": {"expr', "not valid JSON"),
        ('{"arguments": {"expression": "1"}}', "no tool name"),
        ('{"name": "calc", "arguments": [1, 2]}', "must be a JSON object"),
        ("calc({expression: 2+2})", "does not hold literal arguments"),  # never a guess
        ("calc(expression=x)", "does not hold literal arguments"),
        ("calc(1, 2)", "does not hold literal arguments"),
        ("calc", "'calc' alone is not a tool call"),  # a tool's bare name (seen from the 1.5B)
        ("`calc`.", "'calc' alone is not a tool call"),
    ],
)
def test_malformed_calls_are_errors_not_answers(content, error):
    parsed = parse(content)
    assert not parsed.calls and error in parsed.errors[0]


def test_unknown_native_tool_is_an_error():
    msg = AIMessage(content="", tool_calls=[{"name": "x", "args": {}, "id": "1"}])
    assert "no tool named 'x'" in parse_tool_calls(msg, TOOLS).errors[0]


@pytest.mark.parametrize(
    "content",
    [
        "The answer is 7006652.",
        'The result as JSON: {"answer": 4, "unit": "m"}',
        "Paris is the capital of France.",
        "calc (a calculator)",  # prose in brackets after a tool's name
        "sqrt(2)",  # not a tool
    ],
)
def test_plain_answers_are_not_calls(content):
    parsed = parse(content)
    assert not parsed.calls and not parsed.errors and parsed.text == content


def test_no_tools_offered_means_no_calls():
    parsed = parse_tool_calls(AIMessage(content="42"), {})
    assert parsed.text == "42" and not parsed.calls
