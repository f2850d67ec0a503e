"""``ChunkForwarder``: payloads pass untouched unless the client must see otherwise (usage it
did not ask for, a continuation's ids)."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

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


# -- several payloads at once: the same bytes as one at a time ---------------------------------

LITELLM_USAGE = json.dumps(
    {"id": "c1", "choices": [{"index": 0, "delta": {}}], "usage": USAGE}, separators=(",", ":")
).encode()
VARIANTS = [
    chunk("a"),
    chunk('the "usage" word, ,\\"usage\\":null'),  # lookalikes inside the text only
    chunk("b", usage=None),  # a null usage member
    chunk(None, usage=USAGE),  # the usage chunk
    chunk("c", usage=USAGE),  # usage on a content chunk
    LITELLM_USAGE,  # choices that carry nothing
    b'{"id":"c1","usage":null,"choices":[{"index":0,"delta":{"content":"d"}}],"usage":null}',
    b'{"usage": null, "id":"c1","choices":[{"index":0,"delta":{"content":"e"}}]}',
]


def one_at_a_time(forwarder: ChunkForwarder, payloads: list[bytes]) -> bytes:
    return b"".join(forwarder.encode([payload]) for payload in payloads)


@pytest.mark.parametrize("client_usage", [False, True], ids=["stripping", "as-is"])
@given(st.lists(st.sampled_from(VARIANTS), min_size=1, max_size=8))
def test_a_batch_encodes_to_what_its_payloads_encode_to_one_at_a_time(client_usage, payloads):
    batch = ChunkForwarder(client_usage=client_usage).encode(payloads)
    assert batch == one_at_a_time(ChunkForwarder(client_usage=client_usage), payloads)


@given(st.lists(st.sampled_from(VARIANTS), min_size=1, max_size=8))
def test_a_continued_batch_encodes_as_one_at_a_time_too(payloads):
    batched, single = ChunkForwarder(client_usage=False), ChunkForwarder(client_usage=False)
    batched.encode([chunk("a", id_="first")])
    single.encode([chunk("a", id_="first")])
    batched.next_attempt()
    single.next_attempt()
    assert batched.encode(payloads) == one_at_a_time(single, payloads)


def test_a_batch_keeps_the_payloads_before_the_usage_chunk_byte_for_byte():
    plain = [chunk("a"), chunk("b", usage=None), chunk("c")]
    out = events(ChunkForwarder(client_usage=False).encode([*plain, chunk(None, usage=USAGE)]))
    assert out == [chunk("a"), chunk("b"), chunk("c")]


def test_a_batch_is_read_in_c_up_to_the_first_payload_naming_usage(monkeypatch):
    looped = []
    real = ChunkForwarder._each
    monkeypatch.setattr(
        ChunkForwarder, "_each", lambda self, p, end: looped.append(p) or real(self, p, end)
    )
    forwarder = ChunkForwarder(client_usage=False)
    payloads = [chunk(str(n), usage=None) for n in range(30)]
    tail = [chunk(None, usage=USAGE), chunk("after")]
    out = forwarder.encode([*payloads, *tail])
    assert events(out) == [*(chunk(str(n)) for n in range(30)), chunk("after")]
    assert looped == [tail]  # the payloads before the usage chunk: no loop
    looped.clear()
    assert events(forwarder.encode(payloads[:3])) == [chunk("0"), chunk("1"), chunk("2")]
    assert looped == []
    forwarder.encode(payloads[:1])  # one payload: the loop
    assert looped == [payloads[:1]]


END = b"data: [DONE]\n\n"


@pytest.mark.parametrize("client_usage", [True, False])
@pytest.mark.parametrize("continuing", [False, True])
@pytest.mark.parametrize(
    "payloads",
    [
        pytest.param([], id="none"),
        pytest.param([chunk("a")], id="one"),
        pytest.param([chunk("a"), chunk("b", usage=None)], id="two"),
        pytest.param([chunk(None, usage=USAGE)], id="usage-chunk-alone"),
        pytest.param(
            [chunk("a", usage=None), chunk(None, usage=USAGE), chunk("c")], id="usage-between"
        ),
    ],
)
def test_what_goes_out_with_the_payloads_follows_them(client_usage, continuing, payloads):
    def forwarder() -> ChunkForwarder:
        made = ChunkForwarder(client_usage=client_usage)
        if continuing:
            made.encode([chunk("x", id_="first")])
            made.next_attempt()
        return made

    assert forwarder().encode(payloads, END) == forwarder().encode(payloads) + END
