"""The typed chunk decoder takes only what the general way reads the same and finds clean."""

import json

import orjson
import pytest

from chatcontract.wire import StreamVerdict, parse_stream
from chatcontract.wire._chunk import decode_chunk, decode_chunks


def _doc(**changes: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": {"content": "w"}, "finish_reason": None}],
    }
    doc.update(changes)
    return doc


def _raw(**changes: object) -> bytes:
    return json.dumps(_doc(**changes), ensure_ascii=False).encode()  # any int, unlike orjson


@pytest.mark.parametrize(
    "raw",
    [
        _raw(),
        _raw(choices=[{"index": 0, "delta": {"role": "assistant", "content": ""}}]),
        _raw(choices=[{"delta": {}, "finish_reason": "stop", "logprobs": None}]),
        _raw(choices=[], usage=None, service_tier="default", obfuscation="e8f"),
        _raw(created=2**63 - 1),
        '{"id": "\u00e9\u2603", "choices": null}'.encode(),
    ],
    ids=["content", "role", "finish", "usage-null", "int64-max", "utf8"],
)
def test_the_common_chunk_shapes_are_decoded(raw):
    chunk = decode_chunk(raw)
    assert chunk is not None
    assert chunk.id == orjson.loads(raw).get("id")


@pytest.mark.parametrize(
    "raw",
    [
        _raw(x=1),
        _raw(choices=[{"index": 0, "delta": {"content": "w", "audio": None}}]),
        _raw(usage={"prompt_tokens": 1}),
        _raw(error={"message": "boom"}),
        _raw(choices=[{"delta": {"tool_calls": [{"index": 0}]}}]),
        _raw(choices=[{"delta": {"content": "w"}, "logprobs": {"content": []}}]),
        _raw(created=1.0),
        _raw(created=True),
        _raw(created="1"),
        _raw(created=2**63),
        _raw(id=7),
        _raw(choices=[{"index": None, "delta": {"content": "w"}}]),
        _raw(choices=[{"index": 2**63, "delta": {"content": "w"}}]),
        _raw(choices=[{"delta": {"content": 7}}]),
        _raw(choices=[{"delta": {"role": 5}}]),
        _raw(choices=["x"]),
        _raw(choices={}),
        b'{"created": ' + b"9" * 10_000 + b"}",
        b'{"created": 123456789012345678901}',
        b'{"id": "\xff"}',
        b'{"id": "\\ud800"}',
        b'{"id": "a"',
        b'{"id": "a"} x',
        b"[1, 2]",
        b"",
    ],
    ids=[
        "unknown-member", "unknown-delta-member", "usage", "error", "tool-calls", "logprobs",
        "created-float", "created-bool", "created-string", "created-over-int64", "id-number",
        "index-null", "index-over-int64", "content-number", "role-number", "choice-string",
        "choices-object", "10000-digits", "21-digits", "invalid-utf8", "lone-surrogate",
        "cut", "trailing", "array", "empty",
    ],
)  # fmt: skip
def test_anything_else_is_left_to_the_general_way(raw):
    assert decode_chunk(raw) is None


def _stream(*payloads: bytes) -> list[bytes]:
    first = b"data: " + _raw() + b"\n\n"
    end = b"data: " + _raw(choices=[{"delta": {}, "finish_reason": "stop"}]) + b"\n\n"
    return [first, *(b"data: " + p + b"\n\n" for p in payloads), end, b"data: [DONE]\n\n"]


@pytest.mark.parametrize(
    ("payload", "verdict", "path", "content"),
    [
        (_raw(created=1.5), StreamVerdict.MALFORMED_CHUNK, "$[chunk 1].created", "ww"),
        (_raw(created=2**64), StreamVerdict.MALFORMED_CHUNK, "$[chunk 1].created", "ww"),
        (b'{"created": ' + b"9" * 10_000 + b"}", StreamVerdict.MALFORMED_CHUNK,
         "$[chunk 1].created", "w"),
        (_raw()[:-1] + b', "x": ' + b"9" * 10_000 + b"}", StreamVerdict.MALFORMED_CHUNK,
         "$[chunk 1].x", "w"),
        (_raw()[:-1] + b', "logprobs": 1e400}', StreamVerdict.MALFORMED_CHUNK,
         "$[chunk 1].logprobs", "w"),
        (_raw(choices=[{"delta": {"content": 7}}]), StreamVerdict.MALFORMED_CHUNK,
         "$[chunk 1].choices[0].delta.content", "w"),
        (_raw(x=1e300, provider={"name": "p"}), StreamVerdict.COMPLETE, None, "ww"),
        (b'{"id": "\xff", "choices": [{"delta": {"content": "w"}}]}', StreamVerdict.COMPLETE,
         None, "ww"),
    ],
    ids=["created-float", "created-over-u64", "10000-digits", "10000-digit-extra-member",
         "overflowing-extra-member", "content-number", "extra-members", "invalid-utf8"],
)  # fmt: skip
def test_hostile_chunks_keep_the_verdicts_of_the_general_way(payload, verdict, path, content):
    result = parse_stream(_stream(payload), expect_usage=False)
    assert result.verdict is verdict
    assert [v.path for v in result.violations] == ([path] if path else [])
    assert result.content == content


@pytest.mark.parametrize(
    ("payloads", "decoded"),
    [
        ([_raw(), _raw(id="b")], True),
        ([_raw(), b""], False),
        ([_raw(), b"  "], False),
        ([_raw(), b"[DONE]"], False),
        ([_raw(), _raw(x=1)], False),
        ([_raw() + b" " + _raw(), _raw()], False),
    ],
    ids=["two-chunks", "blank", "spaces", "done", "one-unknown-member", "two-in-one"],
)
def test_held_chunks_are_decoded_together_only_when_each_is_one_common_chunk(payloads, decoded):
    chunks = decode_chunks(payloads)
    assert (chunks is not None) is decoded
    if chunks is not None:
        assert [chunk.id for chunk in chunks] == [orjson.loads(p)["id"] for p in payloads]
