"""``StreamParser.tap``: the payloads of the good chunks, in order, from the one parser (what
the gateway forwards), the same however the bytes are split."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatcontract.wire import StreamParser


def chunk(content: str, finish: str | None = None) -> bytes:
    delta = {"content": content}
    return json.dumps(
        {"id": "c", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]},
        separators=(",", ":"),
    ).encode()


GOOD = [chunk("a"), chunk("b"), chunk("", "stop")]
BODY = b"".join(b"data: " + p + b"\n\n" for p in GOOD) + b": PING\n\ndata: [DONE]\n\n"


def tapped(body: bytes, pieces: list[int] | None = None) -> tuple[list[bytes], str]:
    parser = StreamParser()
    taken = parser.tap()
    if pieces is None:
        parser.feed(body)
    else:
        start = 0
        for cut in sorted(pieces):
            parser.feed(body[start:cut])
            start = cut
        parser.feed(body[start:])
    result = parser.close()
    return list(taken), str(result.verdict)


def test_the_tap_keeps_every_good_chunk_and_not_done_or_comments():
    assert tapped(BODY) == (GOOD, "complete")


@given(st.lists(st.integers(min_value=0, max_value=len(BODY)), max_size=8))
def test_the_tap_is_the_same_for_any_split(cuts):
    assert tapped(BODY, cuts) == (GOOD, "complete")


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param("data: {not json\n\n", id="malformed-chunk"),
        pytest.param(
            'data: {"error": {"message": "boom", "type": "server_error"}}\n\n', id="in-band-error"
        ),
    ],
)
def test_the_tap_stops_at_a_malformed_chunk_or_an_in_band_error(failure):
    body = b"data: " + chunk("a") + b"\n\n" + failure.encode() + b"data: " + chunk("b") + b"\n\n"
    taken, _ = tapped(body)
    assert taken == [chunk("a")]  # the stream failed there: what follows is not forwarded


def test_the_tap_leaves_out_blank_events_a_cut_last_chunk_and_anything_after_done():
    body = b"data: " + chunk("a") + b"\n\ndata: \n\ndata: [DONE]\n\ndata: " + chunk("z") + b"\n\n"
    assert tapped(body)[0] == [chunk("a")]
    cut = b"data: " + chunk("a") + b"\n\ndata: " + chunk("b")[:10]
    assert tapped(cut) == ([chunk("a")], "cut")


def test_a_last_event_without_its_blank_line_is_tapped_at_close():
    body = b"data: " + chunk("a") + b"\n\ndata: " + chunk("", "stop")
    assert tapped(body)[0] == [chunk("a"), chunk("", "stop")]


def test_an_untapped_parser_assembles_the_same_answer():
    tapped_parser, plain = StreamParser(), StreamParser()
    tapped_parser.tap()
    for parser in (tapped_parser, plain):
        parser.feed(BODY)
    assert tapped_parser.close() == plain.close()
