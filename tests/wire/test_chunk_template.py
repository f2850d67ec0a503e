"""A stream's plain chunks read from what follows their common prefix give exactly what the
full decoder reads from each whole chunk."""

import gc

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from msgspec import UNSET

from chatcontract.wire import StreamAssembler, StreamParser, StreamResult
from chatcontract.wire import stream as stream_module
from chatcontract.wire._chunk import (
    _OPENING,
    _decode_tails,
    decode_chunk,
    decode_chunks,
    learn_template,
)

_HEAD = (
    b'{"id":"c-1","object":"chat.completion.chunk","created":7,"model":"m",'
    b'"system_fingerprint":"fp","choices":[{"index":0,"delta":{"content":"'
)


def _plain(text: str, tail: bytes = b'"},"logprobs":null,"finish_reason":null}]}') -> bytes:
    return _HEAD + orjson.dumps(text)[1:-1] + tail


def test_a_plain_chunk_gives_its_prefix_and_values():
    template = learn_template(_plain("w"))
    assert template is not None
    assert template.prefix == _HEAD
    assert (template.id, template.model, template.created) == ("c-1", "m", 7)
    assert template.system_fingerprint == "fp"


def test_a_chunk_without_an_index_gives_a_template():
    raw = b'{"id":"c","choices":[{"delta":{"content":"w"}}]}'
    template = learn_template(raw)
    assert template is not None
    assert template.prefix == b'{"id":"c","choices":[{"delta":{"content":"'


@pytest.mark.parametrize(
    "raw",
    [
        b'{"id":"c","choices":[{"index":0,"delta":{"role":"assistant","content":"w"}}]}',
        b'{"id":"c","x":1,"choices":[{"index":0,"delta":{"content":"w"}}]}',
        b'{"choices":[{"index":1,"delta":{}},{"index":0,"delta":{"content":"w"}}]}',
        b'{"choices":[{"index":2,"delta":{"content":"w"}}]}',
        b'{"choices":[{"finish_reason":"stop","delta":{"content":"w"}}]}',
        b'{"choices":[{"index":0,"delta":{}},{"index":0,"delta":{"content":"w"}}]}',
        b'{"choices":[{"index":-1,"delta":{"content":"w"}}]}',
    ],
    ids=[
        "role-first",
        "unknown-member",
        "second-choice",
        "index-2",
        "finish-before",
        "second-choice-0",
        "index-minus-1",
    ],
)
def test_no_template_when_the_prefix_is_not_that_of_a_plain_chunk(raw):
    assert learn_template(raw) is None


def test_an_empty_finish_reason_before_the_delta_still_gives_a_template():
    raw = b'{"choices":[{"index":0,"finish_reason":"","delta":{"content":"w"}}]}'
    assert learn_template(raw) is not None


def _template():
    template = learn_template(_plain("w"))
    assert template is not None
    return template


def test_contents_are_the_non_empty_contents_in_order():
    texts = ["a", "", 'b "q" \\ \n \u00e9', "c"]
    assert _template().contents([_plain(t) for t in texts]) == ["a", 'b "q" \\ \n \u00e9', "c"]


@pytest.mark.parametrize(
    "odd",
    [
        b'{"id":"b"' + _plain("x")[len(b'{"id":"c-1"') :],  # sorts before the prefix
        b'{"id":"d"' + _plain("x")[len(b'{"id":"c-1"') :],  # sorts after it
        _plain("x", b'"},"logprobs":null,"finish_reason":"stop"}]}'),
        _plain("x", b'"},"index":0}]}'),
        _plain("x", b'"}}],"id":"other"}'),
        _plain("x", b'"},"logprobs":null,"finish_reason":null}]'),
        _plain("x", b'"}},{"delta":{"content":"y"}}]}'),
        _plain("x", b'"},"logprobs":null}],"usage":{"total_tokens":1}}'),
        b'{"id":"c-0"' + _plain("x")[len(b'{"id":"c-1"') :],  # as long, sorts before
        b'{"id":"c-2"' + _plain("x")[len(b'{"id":"c-1"') :],  # as long, sorts after
        _plain("x", b'","audio":null},"logprobs":null,"finish_reason":null}]}'),
        _plain("x") + b'{"choices":[{"delta":{"content":"y"}}]}',
    ],
    ids=[
        "prefix-before", "prefix-after", "finish", "index", "id-again", "cut", "second-choice",
        "usage", "same-length-prefix-before", "same-length-prefix-after", "unknown-delta-member",
        "a-second-json-value-after-the-chunk",
    ],
)  # fmt: skip
def test_contents_are_none_unless_every_payload_is_a_plain_chunk_of_the_template(odd):
    assert _template().contents([_plain("a"), odd, _plain("b")]) is None


_texts = st.text(alphabet='ab"\\\n\u00e9\u2603 ', max_size=5)
_tails = st.sampled_from(
    [
        b'"},"logprobs":null,"finish_reason":null}]}',
        b'"}}],"usage":null,"obfuscation":"e8"}',
        b'","role":"assistant","refusal":null}}]}',
        b'","content":"again"}}]}',
        b'"},"finish_reason":"stop"}]}',
        b'"},"finish_reason":""}]}',
        b'"}}],"model":"other"}',
        b'"}}],"choices":[{"delta":{"content":"z"}}]}',
        b'"}}],"system_fingerprint":"fp2"}',
        b'","reasoning_content":"r"}}]}',
        b'"}},{"index":1,"delta":{"content":"y"}}]}',
        b'"}}]',
        b'"}}]}  ',
    ]
)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(_texts, _tails), min_size=2, max_size=6))
def test_contents_agree_with_the_full_decoder_whenever_given(chunks):
    payloads = [_plain(text, tail) for text, tail in chunks]
    texts = _template().contents(payloads)
    if texts is None:
        return
    decoded = [decode_chunk(raw) for raw in payloads]
    assert all(chunk is not None for chunk in decoded)
    for chunk in decoded:
        assert chunk.id == "c-1"  # type: ignore[union-attr]
        (choice,) = chunk.choices  # type: ignore[union-attr,misc]
        assert not choice.finish_reason
        assert choice.index in (0, UNSET)  # a second choices member may give none
        assert choice.delta.refusal is None and choice.delta.reasoning_content is None
    assert texts == [c.choices[0].delta.content for c in decoded if c.choices[0].delta.content]  # type: ignore[union-attr,index]


# -- in a stream -------------------------------------------------------------------------------


class _General(StreamAssembler):
    """No typed decoder, hence no template: every chunk read by orjson."""

    __slots__ = ()

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._typed_misses = 1_000_000


def _events(payloads: list[bytes]) -> bytes:
    return b"".join(b"data: " + raw + b"\n\n" for raw in payloads)


def _parse(reads: list[bytes], *, general: bool) -> StreamResult:
    parser = StreamParser(expect_usage=False)
    if general:
        parser._assembler = _General(expect_usage=False)
    for moment, read in enumerate(reads):
        parser.feed(read, now=float(moment))
    return parser.close(now=float(len(reads)))


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.lists(st.tuples(_texts, _tails), min_size=1, max_size=4), min_size=1, max_size=5)
)
def test_a_stream_read_through_its_template_gives_the_result_of_the_general_way(reads):
    body = [_events([_plain(text, tail) for text, tail in read]) for read in reads]
    body.append(b"data: [DONE]\n\n")
    assert _parse(body, general=False) == _parse(body, general=True)


def test_held_plain_chunks_are_read_through_the_template(monkeypatch):
    taken = []
    real = stream_module.ChunkTemplate.contents

    def contents(template, payloads):
        texts = real(template, payloads)
        taken.append(texts)
        return texts

    monkeypatch.setattr(stream_module.ChunkTemplate, "contents", contents)
    reads = [_events([_plain("a")]), _events([_plain("b"), _plain(""), _plain("c")])]
    reads.append(_events([_plain("d", b'"},"finish_reason":"stop"}]}')]) + b"data: [DONE]\n\n")
    result = _parse(reads, general=False)
    assert taken == [["b", "c"], None]  # the last read holds the finish and [DONE]
    assert (result.content, result.chunk_count, result.verdict) == ("abcd", 5, "complete")
    assert (result.id, result.model, result.created, result.system_fingerprint) == (
        "c-1", "m", 7, "fp",
    )  # fmt: skip


def test_the_template_gives_the_first_token_moment_when_it_brings_the_first_token():
    empty = _events([_plain("")])
    result = _parse([empty, _events([_plain(""), _plain("x")])], general=False)
    assert result.first_token_at == 1.0
    result = _parse([empty, _events([_plain(""), _plain("")])], general=False)
    assert result.first_token_at is None


def test_the_template_keeps_the_first_id_model_created_and_the_last_fingerprint():
    first = b'{"id":"a","model":"ma","created":1,"system_fingerprint":"f0","choices":[]}'
    reads = [_events([first]), _events([_plain("x")]), _events([_plain("y"), _plain("z")])]
    result = _parse(reads, general=False)
    assert (result.id, result.model, result.created) == ("a", "ma", 1)
    assert result.system_fingerprint == "fp"
    no_values = b'{"choices":[{"delta":{"content":"'
    reads = [_events([first, no_values + b'x"}}]}', no_values + b'y"}}]}'])]
    reads.append(_events([no_values + b'z"}}]}', no_values + b'w"}}]}']))
    result = _parse(reads, general=False)
    assert (result.content, result.system_fingerprint, result.id) == ("xyzw", "f0", "a")


def test_a_stream_stops_looking_for_a_template_after_four_chunks(monkeypatch):
    tried = []
    real = stream_module.learn_template

    def learn(raw):
        tried.append(raw)
        return real(raw)

    monkeypatch.setattr(stream_module, "learn_template", learn)
    role_first = b'{"choices":[{"delta":{"role":"assistant","content":"w"}}]}'
    _parse([_events([role_first]) for _ in range(6)], general=False)
    assert len(tried) == 4
    tried.clear()
    _parse([_events([role_first, role_first]), _events([_plain("a")]), _events([_plain("b")])],
           general=False)  # fmt: skip
    # a held read: its first two chunks (before it is decoded; two are all it has); then found
    assert tried == [role_first, role_first, _plain("a")]


def test_decoded_chunks_and_tails_are_not_tracked_by_the_garbage_collector():
    # gc=False: a stream decodes thousands; none holds a cycle, so none is walked.
    raw = _plain("a")
    assert decode_chunk(raw) is not None
    assert not gc.is_tracked(decode_chunk(raw))
    chunks = decode_chunks([raw, raw])
    assert chunks is not None
    assert not any(gc.is_tracked(chunk) for chunk in chunks)
    tails = _decode_tails(_OPENING + _plain("a")[len(_HEAD) :])
    assert [tail.choices[0].delta.content for tail in tails] == ["a"]
    assert not any(gc.is_tracked(tail) for tail in tails)


def test_a_chunk_with_a_second_json_value_is_malformed_however_the_events_come():
    # A data line holding a chunk and then another JSON value is not JSON: a malformed
    # chunk, whether its event comes alone or in one read with others (the template's line
    # decoder reads values that follow each other on one line: it must not take both).
    plain = _events([_plain("a")])
    odd = _events([_plain("b") + b'{"choices":[{"delta":{"content":"y"}}]}'])
    for reads in ([plain, plain, odd], [plain, plain + odd]):
        result = _parse(reads, general=False)
        assert (result.verdict, result.content, result.chunk_count) == ("malformed_chunk", "aa", 3)
        assert result == _parse(reads, general=True)
