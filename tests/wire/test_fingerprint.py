"""Shape fingerprints: values do not matter, structure does, and the digest is stable."""

import hashlib
from dataclasses import FrozenInstanceError
from pathlib import Path

import orjson
import pytest

import chatcontract.wire.fingerprint as fingerprint_module
from chatcontract.wire import (
    Fingerprint,
    fingerprint_bytes,
    shape_fingerprint,
    shape_paths,
)
from chatcontract.wire.fingerprint import MAX_DEPTH, MAX_PATHS

FIXTURES = Path(__file__).parent / "fixtures"
E1 = orjson.loads((FIXTURES / "cometapi_e1.json").read_bytes())


def test_paths_are_sorted_with_json_types_and_arrays_collapsed():
    doc = {
        "id": "x",
        "n": 1.5,
        "ok": True,
        "none": None,
        "choices": [{"message": {"content": "hi"}}, {"index": 1}],
    }
    assert shape_paths(doc) == (
        "$:object",
        "choices:array",
        "choices[]:object",
        "choices[].index:number",
        "choices[].message:object",
        "choices[].message.content:string",
        "id:string",
        "n:number",
        "none:null",
        "ok:boolean",
    )


def test_e1_shape_includes_nested_usage_details():
    paths = shape_paths(E1)
    assert "usage.completion_tokens_details.reasoning_tokens:number" in paths
    assert "choices[].message.annotations:array" in paths
    assert "choices[].logprobs:null" in paths


def test_values_do_not_change_the_fingerprint():
    other = orjson.loads(orjson.dumps(E1))
    other["id"] = "chatcmpl-other"
    other["choices"][0]["message"]["content"] = "A much longer answer"
    other["usage"]["prompt_tokens"] = 12345
    other["created"] = 1.0  # one JSON number type
    assert shape_fingerprint(other) == shape_fingerprint(E1)


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.pop("service_tier"),
        lambda d: d.update(extra="x"),
        lambda d: d.update(system_fingerprint=None),
        lambda d: d["usage"].update(prompt_tokens_details={}),
        lambda d: d["choices"][0]["message"].update(annotations=[{"type": "url"}]),
    ],
    ids=["removed", "added", "type-changed", "emptied", "array-items"],
)
def test_structure_changes_the_fingerprint(change):
    other = orjson.loads(orjson.dumps(E1))
    change(other)
    assert shape_fingerprint(other).digest != shape_fingerprint(E1).digest


def test_digest_is_stable_across_runs():
    fingerprint = shape_fingerprint({"id": "x", "choices": []})
    assert fingerprint.paths == ("$:object", "choices:array", "id:string")
    expected = hashlib.sha256(b"$:object\nchoices:array\nid:string").hexdigest()[:16]
    assert fingerprint.digest == expected
    assert fingerprint.digest == "7ad9f85cf4248ee7"  # pinned: a change of scheme must show
    assert str(fingerprint) == fingerprint.digest
    assert len(fingerprint.digest) == 16


def test_key_order_does_not_matter():
    assert shape_fingerprint({"a": 1, "b": "x"}) == shape_fingerprint({"b": "y", "a": 2})


def test_odd_keys_are_quoted():
    assert shape_paths({"a.b": 1, "x": {"has space": None}}) == (
        "$:object",
        '["a.b"]:number',
        "x:object",
        'x["has space"]:null',
    )


def test_diff_names_added_and_removed_paths():
    before = shape_fingerprint({"a": 1, "b": 2})
    after = shape_fingerprint({"a": 1, "c": "x"})
    assert before.diff(after) == (("c:string",), ("b:number",))


@pytest.mark.parametrize(
    "body", [b"", b"{", b"<html>", b"\xff"], ids=["empty", "truncated", "html", "binary"]
)
def test_fingerprint_bytes_is_none_for_non_json(body):
    assert fingerprint_bytes(body) is None


def test_fingerprint_bytes_of_json():
    result = fingerprint_bytes(b'{"error": {"message": "x", "code": ""}}')
    assert isinstance(result, Fingerprint)
    assert result.paths == ("$:object", "error:object", "error.code:string", "error.message:string")


def test_scalar_documents_have_a_root_entry():
    assert shape_paths([]) == ("$:array",)
    assert shape_paths("x") == ("$:string",)


def test_deep_documents_are_bounded():
    doc: object = "leaf"
    for _ in range(500):
        doc = {"a": doc}
    paths = shape_paths(doc)
    assert len(paths) == MAX_DEPTH + 1


def test_wide_documents_are_bounded():
    paths = shape_paths({f"k{i}": i for i in range(MAX_PATHS * 2)})
    assert len(paths) == MAX_PATHS + 1
    assert "…:truncated" in paths


def test_a_path_sorts_before_every_longer_path_that_starts_with_it():
    assert shape_paths({"a": {"b": 1}, "a-b": 1, "a_": [1]}) == (
        "$:object",
        "a:object",
        "a-b:number",
        "a.b:number",
        "a_:array",
        "a_[]:number",
    )


def test_identifier_keys_are_plain_and_any_other_key_is_quoted():
    assert shape_paths({"x-request-id": 1, "_a": 1, "a1": 1, "1a": 1, "\u00e9": 1, 3: 1}) == (
        "$:object",
        '["1a"]:number',
        '["3"]:number',
        '["\u00e9"]:number',
        "_a:number",
        "a1:number",
        "x-request-id:number",
    )


def test_nested_arrays_tuples_and_unknown_values_have_their_own_entries():
    assert shape_paths({"m": [[1]], "t": (1, "x"), "b": b"x"}) == (
        "$:object",
        "b:unknown",
        "m:array",
        "m[]:array",
        "m[][]:number",
        "t:array",
        "t[]:number",
        "t[]:string",
    )
    assert shape_paths((1,)) == ("$:array", "[]:number")
    assert shape_paths(b"x") == ("$:unknown",)


def test_a_truncated_shape_keeps_the_first_paths_in_sorted_order():
    doc = {f"k{i:05d}": i for i in range(MAX_PATHS + 10)}
    paths = shape_paths(doc)
    assert paths[:-1] == ("$:object", *(f"k{i:05d}:number" for i in range(MAX_PATHS - 1)))
    assert paths[-1] == "\u2026:truncated"


def test_the_child_path_memo_stays_bounded_under_many_distinct_keys():
    for batch in range(4):
        shape_paths({f"b{batch}k{i}": i for i in range(2_000)})
    assert len(fingerprint_module._CHILD_MEMO) <= fingerprint_module._CHILD_MEMO_LIMIT
    # and a memoised path is the same path
    assert shape_paths({"b0k1": 1}) == ("$:object", "b0k1:number")


def test_a_fingerprint_is_frozen_and_built_by_keyword():
    value = shape_fingerprint({"a": 1})
    with pytest.raises(FrozenInstanceError):
        value.digest = "0"  # type: ignore[misc]
    with pytest.raises(TypeError, match="positional"):
        Fingerprint("0", ())  # type: ignore[misc]


def test_the_bounds_are_32_levels_and_5000_entries():
    # The documented bounds themselves (the tests above follow the constants).
    assert (MAX_DEPTH, MAX_PATHS) == (32, 5_000)


@pytest.mark.parametrize(
    ("keys", "truncated"),
    [(MAX_PATHS - 1, False), (MAX_PATHS, True)],
    ids=["exactly-the-limit-is-kept-whole", "one-more-is-cut"],
)
def test_a_shape_is_cut_only_beyond_the_entry_limit(keys, truncated):
    # The root entry plus one entry per key.
    paths = shape_paths({f"k{i:05d}": i for i in range(keys)})
    assert ("\u2026:truncated" in paths) is truncated
    assert len(paths) == keys + 1


@pytest.mark.parametrize(
    ("levels", "entries"),
    [(MAX_DEPTH - 1, MAX_DEPTH), (MAX_DEPTH, MAX_DEPTH + 1), (MAX_DEPTH + 1, MAX_DEPTH + 1)],
    ids=["one-level-less-is-whole", "exactly-the-depth-is-whole", "one-level-more-is-cut"],
)
def test_a_shape_is_walked_to_the_depth_limit(levels, entries):
    # The root entry plus one per nested object and the leaf, down to MAX_DEPTH levels.
    doc: object = "leaf"
    for _ in range(levels):
        doc = {"a": doc}
    assert len(shape_paths(doc)) == entries
