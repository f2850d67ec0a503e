"""Shape fingerprints: values do not matter, structure does, and the digest is stable."""

import hashlib
import json
from dataclasses import FrozenInstanceError
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import chatcontract.wire.fingerprint as fingerprint_module
from chatcontract.wire import (
    Fingerprint,
    fingerprint_bytes,
    shape_fingerprint,
    shape_paths,
    union_of_shape_paths,
)
from chatcontract.wire.fingerprint import MAX_DEPTH, MAX_PATHS, shape_key

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


# -- shape keys, and the union of many texts' shapes ---------------------------------------


_KEYS = st.text(alphabet='ab"\\:,{}[] \né', max_size=4)
_INTS = st.integers(min_value=-(2**63), max_value=2**64 - 1)  # what orjson writes
_LEAVES = (
    st.none() | st.booleans() | _INTS | st.floats(allow_nan=False, allow_infinity=False) | _KEYS
)
_DOCS = st.recursive(
    _LEAVES,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_KEYS, inner, max_size=3),
    max_leaves=12,
)


def _naive_union(texts):
    paths = set()
    for text in texts:
        try:
            paths.update(shape_paths(orjson.loads(text)))
        except orjson.JSONDecodeError:
            continue
    return paths


def test_a_shape_key_is_what_is_outside_strings_and_the_keys_in_order():
    text = '{"id":"chatcmpl-1","n":2,"ok":true,"no":null,"tags":["a","b"]}'
    assert shape_key(text) == (
        ("{", ":", ",", ":2,", ":true,", ":null,", ":[", ",", "]}"),
        ("id", "n", "ok", "no", "tags"),
    )
    assert shape_key('{"a":"x","b":1}') == (("{", ":", ",", ":1}"), ("a", "b"))
    assert shape_key('{"only":1}') == (("{", ":1}"), "only")  # one key: itself
    assert shape_key('["a",1]') == (("[", ",1]"), ())  # no key
    assert shape_key("12") == (("12",), ())


def test_a_key_is_the_string_right_before_a_colon_and_never_a_value():
    assert shape_key('["a:","b" ,"c"]') == (("[", ",", " ,", "]"), ())
    assert shape_key('{"x":":"}') == (("{", ":", "}"), "x")
    assert shape_key('{"x":"y"}') != shape_key('{"y":"x"}')
    assert shape_key('{"x":"a","y":"b"}') == shape_key('{"x":"bb","y":""}')


@pytest.mark.parametrize(
    "text",
    [
        '{"a\\"b":1}',  # an escaped quote: no string's edge
        '{"a":\n1}',
        '{"a":\r1}',
        '{"a":\t1}',
        '{"a" :1}',
        '{"a"  :1}',
        '{"a":"  two spaces"}',  # a value, but read the general way all the same
    ],
)
def test_no_shape_key_where_a_quote_may_not_be_an_edge_or_a_key_may_not_touch_its_colon(text):
    assert shape_key(text) is None


def test_a_shape_key_of_text_that_is_no_json_never_raises():
    for text in ['"', '"abc', '{"a', '\\"', '"\\', "", "plain", '{"a":"b\\', '{"k": "v": 1}']:
        shape_key(text)


def test_the_pickers_of_keys_are_remembered_and_bounded(monkeypatch):
    monkeypatch.setattr(fingerprint_module, "_KEYS_OF", {})
    monkeypatch.setattr(fingerprint_module, "_KEYS_OF_LIMIT", 2)
    for name in ("a", "b", "c", "a"):
        assert shape_key(f'{{"{name}":1,"{name}{name}":[2]}}')[1] == (name, name * 2)
    for count in range(1, 5):
        text = "[" + ",".join(["1"] * count) + "]"
        assert shape_key(text) == ((text,), ())
    # one structure, then one more, then full: the others are read all the same
    assert list(fingerprint_module._KEYS_OF) == [("{", ":1,", ":[2]}"), ("[1]",)]


def test_the_pickers_of_long_texts_are_not_remembered(monkeypatch):
    monkeypatch.setattr(fingerprint_module, "_KEYS_OF", {})
    monkeypatch.setattr(fingerprint_module, "_KEYS_OF_TEXT", 20)
    short, long = '{"a":1}', '{"a":1,"b":[' + ",".join(["2"] * 8) + "]}"
    assert len(short) <= 20 < len(long) and len('{"a":' + "1" * 15 + "}") == 21
    assert shape_key(long)[1] == ("a", "b")
    assert shape_key('{"a":' + "1" * 15 + "}")[1] == "a"  # 21 characters: one too many
    assert shape_key('{"a":' + "1" * 14 + "}")[1] == "a"  # 20: remembered
    assert shape_key(short)[1] == "a"
    assert list(fingerprint_module._KEYS_OF) == [("{", ":" + "1" * 14 + "}"), ("{", ":1}")]


def test_the_bound_of_the_pickers_holds_past_the_small_integers(monkeypatch):
    monkeypatch.setattr(fingerprint_module, "_KEYS_OF", {})
    monkeypatch.setattr(fingerprint_module, "_KEYS_OF_LIMIT", 300)
    for count in range(1, 320):
        shape_key(f'{{"a":{count}}}')
    assert len(fingerprint_module._KEYS_OF) == 300


def _values_aside(doc, value=""):
    """``doc`` with each string value replaced by ``value`` (keys kept)."""
    if isinstance(doc, dict):
        return {key: _values_aside(item, value) for key, item in doc.items()}
    if isinstance(doc, list):
        return [_values_aside(item, value) for item in doc]
    return value if isinstance(doc, str) else doc


_MARKS = ('\\"', "\n", "\r", "\t", '" :', '"  ')
_WRITERS = (lambda doc: orjson.dumps(doc).decode(), json.dumps)  # compact, and spaced


@settings(max_examples=400, deadline=None)
@given(_DOCS, _DOCS, st.sampled_from(["", "x", 'a "quoted": \\ value', "\n", " é"]))
def test_json_texts_share_a_shape_key_exactly_when_they_differ_only_in_string_values(
    doc, other, value
):
    for write in _WRITERS:
        text, unrelated = write(doc), write(other)
        changed = write(_values_aside(doc, value))
        key = shape_key(text)
        assert (key is None) == any(mark in text for mark in _MARKS)
        if key is None:
            continue
        if shape_key(changed) is not None:
            assert shape_key(changed) == key
        same = write(_values_aside(doc)) == write(_values_aside(other))
        if shape_key(unrelated) is not None:
            assert (shape_key(unrelated) == key) == same
        if same:  # and so, the same shape
            assert shape_paths(orjson.loads(unrelated)) == shape_paths(doc)


@settings(max_examples=200, deadline=None)
@given(st.lists(_DOCS, max_size=6), st.lists(st.sampled_from(['{"a":', '"', "[1,", "x"])))
def test_the_union_is_the_union_of_each_texts_shape(docs, broken):
    texts = [orjson.dumps(doc).decode() for doc in docs] + broken
    assert union_of_shape_paths(texts) == _naive_union(texts)
    assert union_of_shape_paths(reversed(texts)) == _naive_union(texts)


def _chunk(content, obfuscation):
    delta = {"index": 0, "delta": {"content": content}}
    return orjson.dumps({"id": "c1", "choices": [delta], "obfuscation": obfuscation}).decode()


def test_texts_that_differ_only_in_string_values_are_walked_once(monkeypatch):
    walked = []
    real = fingerprint_module.shape_paths
    monkeypatch.setattr(
        fingerprint_module, "shape_paths", lambda doc: walked.append(doc) or real(doc)
    )
    texts = [_chunk("Hel", "ab"), _chunk("lo", "abcdef"), _chunk("!", ""), "[DONE]"]
    usage = '{"id":"c1","choices":[],"usage":{"prompt_tokens":3}}'
    paths = union_of_shape_paths([*texts, usage, _chunk("again", "x")])
    assert len(walked) == 2  # one content chunk and the usage chunk
    assert "choices[].delta.content:string" in paths
    assert "usage.prompt_tokens:number" in paths
    assert paths == _naive_union([*texts, usage])


def test_a_text_that_is_no_json_does_not_hide_json_with_its_shape_key():
    broken = '{"a": "\\x"}'  # an invalid escape: no JSON, the same key as the next one
    valid = '{"a": "\\n"}'
    assert shape_key(broken) == shape_key(valid)
    assert union_of_shape_paths([broken, valid]) == {"$:object", "a:string"}
    assert union_of_shape_paths([broken]) == set()
    assert union_of_shape_paths([]) == set()


def test_numbers_and_keys_are_part_of_the_skeleton():
    assert union_of_shape_paths(['{"a": 1}', '{"a": "1"}', '{"b": 1}']) == {
        "$:object",
        "a:number",
        "a:string",
        "b:number",
    }
