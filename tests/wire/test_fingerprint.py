"""Shape fingerprints: values do not matter, structure does, and the digest is stable."""

import hashlib
from pathlib import Path

import orjson
import pytest

from chatcontract.wire import Fingerprint, fingerprint_bytes, shape_fingerprint, shape_paths
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
