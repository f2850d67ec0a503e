"""The known-types table: every row's label, Python types and null rule, and its levels."""

from dataclasses import FrozenInstanceError

import pytest

from chatcontract.wire.known_types import KNOWN_TYPES, JsonType, level, strict_label

NONE = type(None)
STRING = ("string", (str, NONE), False)
STRING_OR_NULL = ("string or null", (str, NONE), True)
INTEGER = ("integer", (int, NONE), False)
OBJECT = ("object", (dict, NONE), False)
COUNT = ("non-negative integer", (int, NONE), False)

ROWS = {
    "id": STRING,
    "object": STRING,
    "model": STRING,
    "created": INTEGER,
    "system_fingerprint": STRING_OR_NULL,
    "choices": ("non-empty array", (list,), False),
    "choices[]": OBJECT,
    "choices[].index": INTEGER,
    "choices[].finish_reason": STRING,
    "choices[].message": OBJECT,
    "choices[].message.role": STRING,
    "choices[].message.content": STRING,
    "choices[].message.refusal": STRING_OR_NULL,
    "choices[].message.reasoning_content": STRING_OR_NULL,
    "choices[].message.tool_calls": ("array or null", (list, NONE), True),
    "choices[].message.tool_calls[]": OBJECT,
    "choices[].message.tool_calls[].id": STRING,
    "choices[].message.tool_calls[].type": STRING,
    "choices[].message.tool_calls[].function": OBJECT,
    "choices[].message.tool_calls[].function.name": STRING,
    "choices[].message.tool_calls[].function.arguments": STRING,
    "usage": ("object or null", (dict, NONE), True),
    "usage.prompt_tokens": COUNT,
    "usage.completion_tokens": COUNT,
    "usage.total_tokens": COUNT,
}


def test_the_table_knows_exactly_these_paths_in_this_order():
    assert list(KNOWN_TYPES) == list(ROWS)


@pytest.mark.parametrize(("path", "row"), ROWS.items(), ids=list(ROWS))
def test_each_known_path_has_its_label_types_and_null_rule(path, row):
    label, types, null_ok = row
    kind = KNOWN_TYPES[path]
    assert (kind.label, kind.types, kind.null_ok) == (label, types, null_ok)


@pytest.mark.parametrize(
    ("prefix", "names"),
    [
        ("", ["id", "object", "model", "created", "system_fingerprint"]),
        ("choices[]", ["index", "finish_reason"]),
        ("choices[].message", ["role", "content", "refusal", "reasoning_content"]),
        ("choices[].message.tool_calls[]", ["id", "type"]),
        ("choices[].message.tool_calls[].function", ["name", "arguments"]),
        ("usage", []),
    ],
    ids=["top", "choice", "message", "tool-call", "function", "usage-counts-are-walked"],
)
def test_a_level_gives_the_scalar_rows_directly_under_it_in_table_order(prefix, names):
    rows = level(prefix)
    assert [name for name, _ in rows] == names
    prefix_dot = f"{prefix}." if prefix else ""
    assert [kind for _, kind in rows] == [KNOWN_TYPES[prefix_dot + name] for name in names]


@pytest.mark.parametrize(
    ("kind", "label"),
    [
        (JsonType("string or null", (str,), null_ok=True), "string"),
        (JsonType("array or null", (list,), null_ok=True), "array"),
        (JsonType("non-empty array", (list,)), "non-empty array"),
        (JsonType("null or string", (str,)), "null or string"),
    ],
    ids=["string-or-null", "array-or-null", "no-suffix", "prefix-kept"],
)
def test_a_strict_label_drops_only_a_trailing_or_null(kind, label):
    assert strict_label(kind) == label


def test_a_json_type_is_frozen_and_not_null_ok_by_default():
    kind = JsonType("string", (str,))
    assert kind.null_ok is False
    with pytest.raises(FrozenInstanceError):
        kind.label = "other"  # type: ignore[misc]
