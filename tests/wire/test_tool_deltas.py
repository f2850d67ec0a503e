"""Tool-call deltas of a stream: merged by index, first id/type/name kept, arguments joined."""

import pytest

from chatcontract.wire import ToolCall, Violation, ViolationKind
from chatcontract.wire._tool_deltas import ToolDraft, tool_call_fields


def test_a_draft_keeps_the_first_id_type_and_name_and_joins_the_arguments():
    draft = ToolDraft()
    draft.merge("call_1", "function", "get_weather", '{"city"')
    draft.merge("call_1", "function", "get_weather", None)
    draft.merge(None, None, None, "")
    draft.merge("call_2", "other", "other_name", ': "Paris"}')
    assert draft.build(3) == ToolCall(
        index=3, id="call_1", type="function", name="get_weather", arguments='{"city": "Paris"}'
    )


def test_a_draft_takes_id_type_and_name_from_a_later_delta_when_the_first_lacks_them():
    draft = ToolDraft()
    draft.merge(None, None, None, "{")
    draft.merge("call_1", "function", "f", "}")
    assert draft.build(0) == ToolCall(
        index=0, id="call_1", type="function", name="f", arguments="{}"
    )


def test_an_empty_draft_builds_a_call_with_empty_arguments():
    assert ToolDraft().build(1) == ToolCall(index=1, id=None, type=None, name=None, arguments="")


@pytest.mark.parametrize(
    ("call", "fields"),
    [
        (
            {
                "index": 2,
                "id": "c",
                "type": "function",
                "function": {"name": "f", "arguments": "{"},
            },
            (2, "c", "function", "f", "{"),
        ),
        ({"function": {"arguments": "}"}}, (None, None, None, None, "}")),
        ({"index": 0}, (0, None, None, None, None)),
        ({"index": 0, "function": None, "id": None}, (0, None, None, None, None)),
    ],
    ids=["first-delta", "argument-piece-without-index", "bare-index", "explicit-nulls"],
)
def test_tool_call_fields_reads_index_id_type_name_and_arguments(call, fields):
    assert tool_call_fields(call, "$.d") == fields


@pytest.mark.parametrize(
    ("call", "path", "expected", "got"),
    [
        ({"index": "0"}, "$.d.index", "integer", "string"),
        ({"index": True}, "$.d.index", "integer", "true"),
        ({"index": 1.0}, "$.d.index", "integer", "1.0"),
        ({"index": 0, "function": "f"}, "$.d.function", "object", "string"),
        ({"index": 0, "function": []}, "$.d.function", "object", "empty array"),
        ({"index": 0, "id": 7}, "$.d.id", "string", "7"),
        ({"index": 0, "type": {}}, "$.d.type", "string", "empty object"),
        ({"index": 0, "function": {"name": 1}}, "$.d.function.name", "string", "1"),
        (
            {"index": 0, "function": {"arguments": {}}},
            "$.d.function.arguments",
            "string",
            "empty object",
        ),
        ({"index": 0, "id": 7, "function": {"name": 1}}, "$.d.id", "string", "7"),
    ],
    ids=[
        "index-string",
        "index-bool",
        "index-float",
        "function-string",
        "function-array",
        "id-number",
        "type-object",
        "name-number",
        "arguments-object",
        "first-violation-only",
    ],
)
def test_tool_call_fields_reports_the_first_wrongly_typed_field(call, path, expected, got):
    assert tool_call_fields(call, "$.d") == Violation(
        kind=ViolationKind.TYPE, path=path, expected=expected, got=got
    )
