"""``ChunkForwarder``: payloads pass untouched unless the client must see otherwise (usage it
did not ask for, a continuation's ids)."""

from __future__ import annotations

import json

import pytest

from chatcontract.gateway.stream import ChunkForwarder


def chunk(content: str | None = "hi", *, id_: str = "c1", usage: object = "absent") -> bytes:
    doc: dict[str, object] = {"id": id_, "object": "chat.completion.chunk", "model": "m"}
    doc["choices"] = [] if content is None else [{"index": 0, "delta": {"content": content}}]
    if usage != "absent":
        doc["usage"] = usage
    return json.dumps(doc, separators=(",", ":")).encode()


def events(data: bytes) -> list[bytes]:
    assert data.endswith(b"\n\n") or not data
    return [part.removeprefix(b"data: ") for part in data.split(b"\n\n") if part]


USAGE = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}


def test_plain_chunks_pass_byte_for_byte():
    payloads = [chunk("a"), chunk("b")]
    assert events(ChunkForwarder(client_usage=False).encode(payloads)) == payloads


@pytest.mark.parametrize(
    ("payload", "expect"),
    [
        pytest.param(chunk(None, usage=USAGE), None, id="usage-chunk-dropped"),
        pytest.param(chunk("a", usage=None), chunk("a"), id="null-usage-member-removed"),
        pytest.param(chunk("a", usage=USAGE), chunk("a"), id="usage-on-a-content-chunk-removed"),
    ],
)
def test_usage_the_client_did_not_ask_for_is_stripped(payload, expect):
    out = events(ChunkForwarder(client_usage=False).encode([payload]))
    assert out == ([] if expect is None else [expect])


def test_usage_the_client_asked_for_passes_untouched():
    payloads = [chunk("a", usage=None), chunk(None, usage=USAGE)]
    assert events(ChunkForwarder(client_usage=True).encode(payloads)) == payloads


def test_a_continuation_keeps_the_first_responses_id():
    forwarder = ChunkForwarder(client_usage=True)
    first = events(forwarder.encode([chunk("a", id_="first")]))
    forwarder.next_attempt()
    later = events(forwarder.encode([chunk("b", id_="second"), chunk("c", id_="second")]))
    assert [json.loads(p)["id"] for p in first + later] == ["first", "first", "first"]
    assert [json.loads(p)["choices"][0]["delta"]["content"] for p in later] == ["b", "c"]


def test_every_later_continuation_keeps_the_first_responses_id_too():
    forwarder = ChunkForwarder(client_usage=True)
    forwarder.encode([chunk("a", id_="first")])
    forwarder.next_attempt()
    forwarder.encode([chunk("b", id_="second")])
    forwarder.next_attempt()
    later = events(forwarder.encode([chunk("c", id_="third")]))
    assert [json.loads(p)["id"] for p in later] == ["first"]


def test_nothing_encodes_to_nothing():
    assert ChunkForwarder(client_usage=False).encode([]) == b""


@pytest.mark.parametrize(
    "payload",
    [
        b'{"id":"c","choices":[{"index":0,"delta":{"content":"a"}}],"usage":null}',
        b'{"id":"c","usage":null,"choices":[{"index":0,"delta":{"content":"a"}}]}',
        b'{"usage": null, "id":"c","choices":[{"index":0,"delta":{"content":"a"}}]}',
        b'{"id":"c","choices":[{"index":0,"delta":{"content":",\\"usage\\":null"}}],"usage":null}',
    ],
    ids=["last-member", "middle-member", "first-member-spaced", "lookalike-in-the-text"],
)
def test_a_null_usage_member_is_removed_wherever_it_sits_and_the_text_is_kept(payload):
    [out] = events(ChunkForwarder(client_usage=False).encode([payload]))
    doc = json.loads(out)
    assert "usage" not in doc
    assert doc["choices"] == json.loads(payload)["choices"]


@pytest.mark.parametrize("count", [1, 3], ids=["one", "several"])
def test_a_stream_that_needs_no_change_is_framed_event_by_event(count):
    payloads = [chunk(str(n), usage=None) for n in range(count)]
    expected = b"".join(b"data: " + p + b"\n\n" for p in payloads)
    assert ChunkForwarder(client_usage=True).encode(payloads) == expected


def test_nothing_encodes_to_nothing_when_nothing_needs_a_change():
    assert ChunkForwarder(client_usage=True).encode([]) == b""
