"""SSEDecoder: the WHATWG event-stream rules, independent of how the bytes were split."""

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatcontract.wire import SSEDecoder, SSEEvent


def decode_all(*pieces: bytes) -> tuple[list[SSEEvent], SSEDecoder]:
    decoder = SSEDecoder()
    events = []
    for piece in pieces:
        events.extend(decoder.feed(piece))
    events.extend(decoder.close())
    return events, decoder


def datas(*pieces: bytes) -> list[str]:
    return [event.data for event in decode_all(*pieces)[0]]


# --------------------------------------------------------------------------- framing


@pytest.mark.parametrize("eol", [b"\n", b"\r", b"\r\n"], ids=["lf", "cr", "crlf"])
def test_every_line_ending(eol):
    stream = b"data: one" + eol + eol + b"data: two" + eol + eol
    assert datas(stream) == ["one", "two"]


def test_new_api_framing_with_done():
    events, _ = decode_all(b'data: {"a":1}\n\ndata: [DONE]\n\n')
    assert [e.data for e in events] == ['{"a":1}', "[DONE]"]
    assert [e.is_done for e in events] == [False, True]


def test_multi_line_data_is_joined_with_newlines():
    assert datas(b"data: a\ndata:b\ndata:  c\n\n") == ["a\nb\n c"]


def test_data_without_a_colon_is_an_empty_line_of_data():
    assert datas(b"data\ndata\n\n") == ["\n"]


def test_empty_data_value_dispatches_an_empty_event():
    assert datas(b"data:\n\n") == [""]


def test_comments_are_ignored_but_counted():
    events, decoder = decode_all(b": PING\n\n:\n\ndata: x\n\n: PING\n\n")
    assert [e.data for e in events] == ["x"]
    assert decoder.comment_count == 3


def test_event_and_id_fields():
    events, _ = decode_all(b"event: error\nid: 42\ndata: x\n\ndata: y\n\n")
    assert events == [
        SSEEvent(data="x", event="error", id="42"),
        SSEEvent(data="y", event="message", id="42"),  # the last id persists, the type does not
    ]


def test_an_id_with_a_nul_is_ignored():
    events, _ = decode_all(b"id: 1\ndata: a\n\nid: 2\x003\ndata: b\n\n")
    assert [e.id for e in events] == ["1", "1"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [(b"1500", 1500), (b"15s", None), (b"", None)],
    ids=["digits", "suffix", "empty"],
)
def test_retry_takes_only_ascii_digits(value, expected):
    _, decoder = decode_all(b"retry: " + value + b"\n\n")
    assert decoder.retry_ms == expected


def test_an_event_without_data_is_not_dispatched():
    assert decode_all(b"event: ping\n\nid: 3\n\n")[0] == []


def test_unknown_fields_are_ignored_and_counted():
    events, decoder = decode_all(b'foo: bar\n{"json": true}\ndata: x\n\n')
    assert [e.data for e in events] == ["x"]
    assert decoder.other_line_count == 2


def test_a_leading_byte_order_mark_is_stripped_even_when_split():
    assert datas(b"\xef", b"\xbb", b"\xbfdata: x\n\n") == ["x"]


def test_only_a_leading_byte_order_mark_is_stripped():
    assert datas(b"data: \xef\xbb\xbfx\n\n") == ["\ufeffx"]


def test_invalid_utf8_is_replaced_not_raised():
    assert datas(b"data: \xff\xfe ok\n\n") == ["\ufffd\ufffd ok"]


# --------------------------------------------------------------------------- splits


def test_split_inside_a_multibyte_character():
    encoded = "data: héllo €\n\n".encode()
    cut = encoded.index(b"\xe2") + 1
    assert datas(encoded[:cut], encoded[cut:]) == ["héllo €"]


def test_split_between_cr_and_lf_is_one_line_end():
    # a second line end would be a blank line and dispatch "a" on its own
    assert datas(b"data: a\r", b"\ndata: b\r", b"\n\r", b"\n") == ["a\nb"]


def test_cr_then_cr_in_the_next_chunk_is_two_line_ends():
    assert datas(b"data: a\r", b"\rdata: b\r\r") == ["a", "b"]


def test_byte_by_byte_feeding():
    stream = b'data: {"x": "\xc3\xa9"}\r\n\r\n: PING\r\n\r\ndata: [DONE]\r\n\r\n'
    assert datas(*[stream[i : i + 1] for i in range(len(stream))]) == ['{"x": "é"}', "[DONE]"]


# --------------------------------------------------------------------------- end of stream


def test_close_dispatches_an_event_missing_its_blank_line():
    assert datas(b"data: [DONE]\n") == ["[DONE]"]


def test_close_reads_an_unterminated_last_line():
    assert datas(b"data: [DONE]") == ["[DONE]"]


def test_close_with_nothing_pending_gives_nothing():
    assert datas(b"data: x\n\n") == ["x"]
    assert datas() == []


def test_feed_returns_only_the_events_it_completes():
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n") == []
    assert decoder.feed(b"\ndata: b") == [SSEEvent(data="a")]
    assert decoder.close() == [SSEEvent(data="b")]


# --------------------------------------------------------------------------- properties


def reference_decode(stream: bytes) -> tuple[list[SSEEvent], int]:
    """The event-stream algorithm applied literally to the whole input at once."""
    text = stream.decode("utf-8", "replace").removeprefix("\ufeff")
    lines = re.split(r"\r\n|\r|\n", text)  # the last item is the unterminated tail
    if lines[-1] == "":
        lines.pop()
    lines.append("")  # end of stream: dispatch what is pending (chatcontract's flush)
    events, data, kind, last_id, comments = [], [], "", None, 0
    for line in lines:
        if line == "":
            if data:
                events.append(SSEEvent(data="\n".join(data), event=kind or "message", id=last_id))
            data, kind = [], ""
            continue
        if line.startswith(":"):
            comments += 1
            continue
        name, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if name == "data":
            data.append(value)
        elif name == "event":
            kind = value
        elif name == "id" and "\0" not in value:
            last_id = value
    return events, comments


LINES = st.sampled_from(
    [
        'data: {"choices":[{"delta":{"content":"é€😀"}}]}',
        "data:no-space",
        "data:  two-spaces",
        "data",
        "data: [DONE]",
        ": PING",
        ":",
        "event: error",
        "id: 7",
        "id: a\0b",
        "retry: 100",
        "foo: bar",
        "",
        "",
    ]
)
EOLS = st.sampled_from(["\n", "\r", "\r\n"])


@st.composite
def streams(draw):
    lines = draw(st.lists(st.tuples(LINES, EOLS), max_size=14))
    text = "".join(line + eol for line, eol in lines)
    if draw(st.booleans()):
        text += draw(LINES)  # an unterminated tail
    prefix = "\ufeff" if draw(st.booleans()) else ""
    return (prefix + text).encode("utf-8")


def split(stream: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({min(cut, len(stream)) for cut in cuts})
    pieces, start = [], 0
    for point in points:
        pieces.append(stream[start:point])
        start = point
    pieces.append(stream[start:])
    return pieces


@settings(max_examples=500)
@given(streams(), st.data())
def test_any_split_gives_the_events_of_the_reference_decoder(stream, data):
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=24))
    events, decoder = decode_all(*split(stream, cuts))
    expected_events, expected_comments = reference_decode(stream)
    assert events == expected_events
    assert decoder.comment_count == expected_comments


@settings(max_examples=100)
@given(streams())
def test_byte_by_byte_equals_one_piece(stream):
    assert decode_all(*[stream[i : i + 1] for i in range(len(stream))])[0] == decode_all(stream)[0]


@settings(max_examples=300)
@given(st.lists(st.binary(max_size=64), max_size=10))
def test_arbitrary_bytes_never_raise(pieces):
    events, _ = decode_all(*pieces)
    assert all(isinstance(event.data, str) for event in events)
