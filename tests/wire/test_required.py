"""check_required: each required response path present, reported at its first absent step."""

from dataclasses import FrozenInstanceError

import pytest

from chatcontract.wire import Violation, ViolationKind
from chatcontract.wire.required import check_required, compile_required

M, T, E, N = ViolationKind.MISSING, ViolationKind.TYPE, ViolationKind.EMPTY, ViolationKind.NULL


def violations(doc, *paths):
    out: list[Violation] = []
    check_required(doc, compile_required(paths), out)
    return [(v.kind, v.path, v.expected, v.got) for v in out]


def answer(**message):
    return {"choices": [{"message": {"role": "assistant", **message}, "finish_reason": "stop"}]}


@pytest.mark.parametrize(
    ("doc", "path", "expected"),
    [
        ({"id": "x"}, "id", []),
        ({}, "id", [(M, "$.id", "string", "missing")]),
        ({}, "usage.total_tokens", [(M, "$.usage", "object", "missing")]),
        (
            {"usage": {}},
            "usage.total_tokens",
            [(M, "$.usage.total_tokens", "non-negative integer", "missing")],
        ),
        ({}, "choices[0].message.content", [(M, "$.choices", "non-empty array", "missing")]),
        (
            {"choices": [{}]},
            "choices[0].message.content",
            [(M, "$.choices[0].message", "object", "missing")],
        ),
        ({}, "extra.deep", [(M, "$.extra", "object", "missing")]),
        ({}, "extra[0]", [(M, "$.extra", "array", "missing")]),
        ({"extra": {}}, "extra.deep", [(M, "$.extra.deep", "a value", "missing")]),
    ],
    ids=[
        "present",
        "top-absent",
        "parent-absent",
        "leaf-absent",
        "array-absent",
        "known-intermediate-absent",
        "unknown-object-parent",
        "unknown-array-parent",
        "unknown-leaf",
    ],
)
def test_an_absent_path_is_reported_at_its_first_absent_step(doc, path, expected):
    assert violations(doc, path) == expected


@pytest.mark.parametrize(
    ("doc", "path", "expected"),
    [
        (
            {"choices": []},
            "choices[0].finish_reason",
            [(E, "$.choices", "non-empty array", "empty array")],
        ),
        ({"extra": [1]}, "extra[2]", [(E, "$.extra", "at least 3 items", "1 items")]),
        ({"extra": []}, "extra[0]", [(E, "$.extra", "at least 1 items", "empty array")]),
    ],
    ids=["known-array-empty", "unknown-array-short", "unknown-array-empty"],
)
def test_an_index_past_the_end_is_reported_at_the_array(doc, path, expected):
    assert violations(doc, path) == expected


@pytest.mark.parametrize(
    ("doc", "path", "expected"),
    [
        ({"usage": None}, "usage.total_tokens", [(T, "$.usage", "object", "null")]),
        ({"choices": "x"}, "choices[0].message", [(T, "$.choices", "non-empty array", "string")]),
        ({"choices": {"0": 1}}, "choices[0]", [(T, "$.choices", "non-empty array", "object")]),
        ({"extra": 3}, "extra[0]", [(T, "$.extra", "array", "3")]),
        ({"extra": [1]}, "extra.deep", [(T, "$.extra", "object", "array")]),
        ({"choices": [[1]]}, "choices[0].message", [(T, "$.choices[0]", "object", "array")]),
    ],
    ids=[
        "known-null-parent",
        "known-array-as-string",
        "known-array-as-object",
        "unknown-array-as-number",
        "unknown-object-as-array",
        "choice-as-array",
    ],
)
def test_a_parent_of_the_wrong_type_is_reported_at_the_parent(doc, path, expected):
    assert violations(doc, path) == expected


@pytest.mark.parametrize(
    ("doc", "path", "expected"),
    [
        ({"id": None}, "id", [(N, "$.id", "string", "null")]),
        ({"usage": None}, "usage", []),
        ({"system_fingerprint": None}, "system_fingerprint", []),
        ({"extra": None}, "extra", [(N, "$.extra", "a value", "null")]),
        (
            answer(content=None),
            "choices[0].message.content",
            [(N, "$.choices[0].message.content", "string", "null")],
        ),
        (answer(content=None, tool_calls=[{"id": "c"}]), "choices[0].message.content", []),
        (
            answer(content=None, tool_calls=[]),
            "choices[0].message.content",
            [(N, "$.choices[0].message.content", "string", "null")],
        ),
        (answer(content=None, refusal="no"), "choices[0].message.content", []),
        (
            answer(content=None, refusal=""),
            "choices[0].message.content",
            [(N, "$.choices[0].message.content", "string", "null")],
        ),
        (
            {"choices": [{"message": {"content": None}, "finish_reason": "content_filter"}]},
            "choices[0].message.content",
            [],
        ),
        (
            {"choices": [{"message": {"content": None}, "finish_reason": "length"}]},
            "choices[0].message.content",
            [(N, "$.choices[0].message.content", "string", "null")],
        ),
        (answer(refusal=None, tool_calls=[{"id": "c"}]), "choices[0].message.refusal", []),
    ],
    ids=[
        "required-null",
        "null-usage-is-allowed-by-its-type",
        "null-fingerprint-is-allowed-by-its-type",
        "unknown-null",
        "content-null",
        "content-null-with-tool-calls",
        "content-null-with-empty-tool-calls",
        "content-null-with-refusal",
        "content-null-with-empty-refusal",
        "content-null-filtered",
        "content-null-cut-by-length",
        "refusal-null-is-allowed-by-its-type",
    ],
)
def test_null_is_reported_unless_the_type_or_the_answer_allows_it(doc, path, expected):
    assert violations(doc, path) == expected


def test_null_content_of_the_second_choice_is_judged_by_that_choice():
    doc = {
        "choices": [
            {"message": {"content": "hi"}, "finish_reason": "stop"},
            {"message": {"content": None, "tool_calls": [{"id": "c"}]}, "finish_reason": "stop"},
            {"message": {"content": None}, "finish_reason": "stop"},
        ]
    }
    assert violations(doc, "choices[1].message.content", "choices[2].message.content") == [
        (N, "$.choices[2].message.content", "string", "null")
    ]


def test_a_path_under_one_already_reported_is_not_reported_again():
    assert violations({}, "usage", "usage.prompt_tokens", "usage.total_tokens") == [
        (M, "$.usage", "object", "missing")
    ]
    assert violations({"choices": []}, "choices", "choices[0].message") == [
        (E, "$.choices", "non-empty array", "empty array")
    ]


def test_a_sibling_whose_name_starts_like_a_reported_path_is_still_reported():
    assert violations({}, "usage", "usage_extra", "id", "ids") == [
        (M, "$.usage", "object", "missing"),
        (M, "$.usage_extra", "a value", "missing"),
        (M, "$.id", "string", "missing"),
        (M, "$.ids", "a value", "missing"),
    ]


def test_the_same_path_twice_is_reported_once():
    assert violations({}, "id", "id") == [(M, "$.id", "string", "missing")]


@pytest.mark.parametrize(
    ("doc", "path", "expected"),
    [
        ({"extra": []}, "extra[1]", [(E, "$.extra", "at least 2 items", "empty array")]),
        ({"extra": [0]}, "extra[1]", [(E, "$.extra", "at least 2 items", "1 items")]),
        ({"extra": [0, 1]}, "extra[3]", [(E, "$.extra", "at least 4 items", "2 items")]),
    ],
    ids=["index-one", "index-one-after-one-item", "index-three"],
)
def test_an_unknown_array_too_short_says_how_many_items_the_index_needs(doc, path, expected):
    assert violations(doc, path) == expected


@pytest.mark.parametrize(
    ("doc", "path", "expected"),
    [
        ({}, "extra[0].deep", [(M, "$.extra", "array", "missing")]),
        ({"a": {}}, "a.b[0]", [(M, "$.a.b", "array", "missing")]),
        ({"a": {}}, "a.b.c", [(M, "$.a.b", "object", "missing")]),
        ({"a": [{}]}, "a[0].b[0].c", [(M, "$.a[0].b", "array", "missing")]),
    ],
    ids=["array-then-name", "name-then-array", "name-then-name", "deeper"],
)
def test_an_absent_unknown_container_is_named_by_the_step_after_it(doc, path, expected):
    assert violations(doc, path) == expected


@pytest.mark.parametrize(
    ("finish_reason", "path"),
    [
        (None, "choices[0].message.content"),
        ("", "choices[0].message.content"),
        ("abort", "choices[0].message.content"),
        ("content_filtered", "choices[0].message.content"),
    ],
    ids=["null", "empty", "sorting-before", "longer"],
)
def test_null_content_is_allowed_only_by_the_content_filter_finish(finish_reason, path):
    doc = {"choices": [{"message": {"content": None}, "finish_reason": finish_reason}]}
    assert violations(doc, path) == [(N, "$.choices[0].message.content", "string", "null")]


def test_a_null_finish_reason_is_reported_even_beside_tool_calls():
    # Only a null *content* is an answer when tools were called; other paths stay required.
    doc = answer(content=None, tool_calls=[{"id": "c"}])
    doc["choices"][0]["finish_reason"] = None
    assert violations(doc, "choices[0].finish_reason") == [
        (N, "$.choices[0].finish_reason", "string", "null")
    ]


def test_a_null_message_is_reported_once_at_the_message_not_below_it():
    doc = {"choices": [{"message": None, "finish_reason": "stop"}]}
    assert violations(doc, "choices[0].message.content") == [
        (T, "$.choices[0].message", "object", "null")
    ]


def test_compiled_rules_are_shared_through_the_cache_so_they_are_frozen():
    paths = ("choices[0].message.content", "usage.total_tokens")
    rules = compile_required(paths)
    assert compile_required(paths) is rules
    with pytest.raises(FrozenInstanceError):
        rules[0].expected = "anything"  # type: ignore[misc]
    assert [(r.pattern, r.expected, r.null_ok) for r in rules] == [
        ("choices[].message.content", "string", False),
        ("usage.total_tokens", "non-negative integer", False),
    ]
