"""The typed (msgspec) decoders' own rules, row by row: the 64-bit integer bounds, unknown
fields refused at every level, the batch decoder's count check, ``loads_object``'s type
check. Whatever they refuse goes the general way, so each refusal is observable here only."""

from __future__ import annotations

import json

import pytest

from chatcontract.wire._body import decode_body
from chatcontract.wire._chunk import decode_chunk, decode_chunks
from chatcontract.wire._json import loads_object

EDGES = [
    pytest.param(2**63 - 1, True, id="largest-64-bit"),
    pytest.param(2**63, False, id="one-past-the-largest"),
    pytest.param(-(2**63), True, id="smallest-64-bit"),
    pytest.param(-(2**63) - 1, False, id="one-below-the-smallest"),
]


def body(**changes):
    doc = {
        "id": "chatcmpl-1",
        "model": "m",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}
        ],
    }
    doc.update(changes)
    return doc


def chunk(**changes):
    doc = {"id": "c", "choices": [{"index": 0, "delta": {"content": "a"}, "finish_reason": None}]}
    doc.update(changes)
    return doc


def raw(doc):
    return json.dumps(doc).encode()


@pytest.mark.parametrize(("value", "taken"), EDGES)
def test_a_completion_integer_is_taken_only_within_64_bits(value, taken):
    assert (decode_body(raw(body(created=value))) is not None) is taken


@pytest.mark.parametrize(("value", "taken"), EDGES)
def test_a_chunk_integer_is_taken_only_within_64_bits(value, taken):
    assert (decode_chunk(raw(chunk(created=value))) is not None) is taken


def test_an_unknown_field_in_a_completion_message_or_choice_goes_the_general_way():
    with_message_field = body()
    with_message_field["choices"][0]["message"]["extra"] = 1
    with_choice_field = body()
    with_choice_field["choices"][0]["extra"] = 1
    assert decode_body(raw(body())) is not None
    assert decode_body(raw(with_message_field)) is None
    assert decode_body(raw(with_choice_field)) is None


def test_an_unknown_field_in_a_chunk_choice_or_delta_goes_the_general_way():
    with_choice_field = chunk()
    with_choice_field["choices"][0]["extra"] = 1
    with_delta_field = chunk()
    with_delta_field["choices"][0]["delta"]["extra"] = 1
    assert decode_chunk(raw(chunk())) is not None
    assert decode_chunk(raw(with_choice_field)) is None
    assert decode_chunk(raw(with_delta_field)) is None


def test_a_batch_of_more_than_256_chunks_decodes_whole():
    payloads = [raw(chunk(id=f"c{i}")) for i in range(300)]
    decoded = decode_chunks(payloads)
    assert decoded is not None and len(decoded) == 300
    assert decoded[-1].id == "c299"


def test_a_batch_with_a_blank_payload_is_refused():
    assert decode_chunks([raw(chunk()), b"", raw(chunk())]) is None


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        pytest.param(b'{"a": 1}', {"a": 1}, id="object"),
        pytest.param(b"[1, 2]", None, id="array"),
        pytest.param(b'"text"', None, id="string"),
        pytest.param(b"{not json", None, id="invalid"),
    ],
)
def test_loads_object_gives_only_objects(data, expected):
    assert loads_object(data) == expected
