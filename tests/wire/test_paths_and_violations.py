"""Contract paths and violation values."""

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
