"""Contract paths and violation values."""

from dataclasses import FrozenInstanceError

import pytest

from chatcontract.wire import Violation, ViolationKind
from chatcontract.wire.paths import json_path, parse_path, path_pattern, resolve
from chatcontract.wire.violation import MISSING, describe


@pytest.mark.parametrize(
    ("path", "steps"),
    [
        ("id", ("id",)),
        ("choices[0].message.content", ("choices", 0, "message", "content")),
        ("usage.total_tokens", ("usage", "total_tokens")),
        ("a[12].b[3]", ("a", 12, "b", 3)),
    ],
    ids=["top", "choices", "usage", "indexes"],
)
def test_parse_path(path, steps):
    assert parse_path(path) == steps


@pytest.mark.parametrize(
    "path",
    ["", "choices[x]", ".id", "a..b", "[0]"],
    ids=["empty", "bad-index", "leading-dot", "double-dot", "index-first"],
)
def test_a_malformed_path_is_a_programming_error(path):
    with pytest.raises(ValueError, match="not a response path"):
        parse_path(path)


def test_json_path_and_pattern():
    steps = ("choices", 0, "message", "content")
    assert json_path(steps) == "$.choices[0].message.content"
    assert path_pattern(steps) == "choices[].message.content"


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        (("a", 0, "b"), 1),
        (("a", 1, "b"), MISSING),
        (("a", 0, "c"), MISSING),
        (("a", "b"), MISSING),
        (("n",), None),
    ],
    ids=["found", "index-past-end", "key-absent", "wrong-container", "null"],
)
def test_resolve(steps, expected):
    assert resolve({"a": [{"b": 1}], "n": None}, steps) == expected


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (MISSING, "missing"),
        (None, "null"),
        (True, "true"),
        (False, "false"),
        (42, "42"),
        (-1.5, "-1.5"),
        (10**40, "10000000000000000000000…"),
        ("secret text", "string"),
        ("", "empty string"),
        ([1], "array"),
        ([], "empty array"),
        ({"a": 1}, "object"),
        ({}, "empty object"),
        (b"x", "bytes"),
    ],
    ids=[
        "missing",
        "null",
        "true",
        "false",
        "int",
        "float",
        "huge",
        "string",
        "empty-string",
        "array",
        "empty-array",
        "object",
        "empty-object",
        "other",
    ],
)
def test_describe_never_echoes_strings(value, text):
    assert describe(value) == text


def test_violation_str():
    violation = Violation(
        kind=ViolationKind.TYPE, path="$.choices[0].message.content", expected="string", got="42"
    )
    assert str(violation) == "$.choices[0].message.content: expected string, got 42"


_KINDS = {
    "EMPTY_BODY": "empty_body",
    "INVALID_JSON": "invalid_json",
    "NOT_OBJECT": "not_object",
    "ERROR_ENVELOPE": "error_envelope",
    "MISSING": "missing",
    "NULL": "null",
    "TYPE": "type",
    "EMPTY": "empty",
    "NOT_SSE": "not_sse",
    "CUT_CHUNK": "cut_chunk",
    "AFTER_DONE": "after_done",
    "MISSING_USAGE": "missing_usage",
    "INVALID_FIELD": "invalid_field",
}


def test_violation_kinds_are_stable_metric_label_strings():
    assert {kind.name: str(kind) for kind in ViolationKind} == _KINDS


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (10**23, "100000000000000000000000"),
        (-(10**22), "-10000000000000000000000"),
        (10**24, "10000000000000000000000…"),
        (-(10**23), "-1000000000000000000000…"),
        (1e300, "1e+300"),
    ],
    ids=["24-digits-shown", "24-chars-negative-shown", "25-digits-cut", "25-chars-cut", "float"],
)
def test_a_number_is_shown_up_to_24_characters_then_cut(value, text):
    assert describe(value) == text
    assert len(describe(value)) <= 24


def test_missing_is_a_named_sentinel_distinct_from_null():
    assert repr(MISSING) == "MISSING"
    assert MISSING is not None
    assert describe(MISSING) != describe(None)


def test_a_violation_is_frozen_and_built_by_keyword():
    violation = Violation(kind=ViolationKind.NULL, path="$.id", expected="string", got="null")
    with pytest.raises(FrozenInstanceError):
        violation.got = "x"  # type: ignore[misc]
    with pytest.raises(TypeError, match="positional"):
        Violation(ViolationKind.NULL, "$.id", "string", "null")  # type: ignore[misc]


@pytest.mark.parametrize(
    ("steps", "root", "path", "pattern"),
    [
        ((), "$", "$", ""),
        (("usage",), "$[chunk 3]", "$[chunk 3].usage", "usage"),
        ((0, "delta"), "$", "$[0].delta", "[].delta"),
        (("a", 10, 2, "b"), "$", "$.a[10][2].b", "a[][].b"),
    ],
    ids=["empty", "other-root", "leading-index", "nested-indexes"],
)
def test_json_path_and_pattern_of_any_steps(steps, root, path, pattern):
    assert json_path(steps, root=root) == path
    assert path_pattern(steps) == pattern


@pytest.mark.parametrize(
    ("doc", "steps", "expected"),
    [
        ([1, 2], (1,), 2),
        ([1, 2], (2,), MISSING),
        ([1, 2], (5,), MISSING),
        ({"0": 1}, (0,), MISSING),
        ([{"a": None}], (0, "a"), None),
        ({"a": {"b": {}}}, ("a", "b"), {}),
        ((1, 2), (0,), MISSING),
        ("abc", ("a",), MISSING),
    ],
    ids=[
        "last-index",
        "index-at-length",
        "index-well-past-the-end",
        "index-into-object",
        "null-leaf",
        "empty-object-leaf",
        "tuple-is-not-json",
        "string-is-not-a-container",
    ],
)
def test_resolve_follows_only_json_arrays_and_objects(doc, steps, expected):
    assert resolve(doc, steps) == expected


def test_the_root_of_a_json_path_is_given_by_keyword_only():
    with pytest.raises(TypeError, match="positional"):
        json_path(("id",), "$[chunk 1]")  # type: ignore[misc]
