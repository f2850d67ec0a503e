"""SSEDecoder: the WHATWG event-stream rules, independent of how the bytes were split."""

import re

import pytest
from _examples import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from chatcontract.wire import SSEDecoder, SSEEvent
from chatcontract.wire.sse import MAX_RETRY_MS


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
    assert decoder.invalid_retry_count == 0  # not a number: ignored, not absurd


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (str(MAX_RETRY_MS).encode(), MAX_RETRY_MS),
        (b"0" * 5000 + b"7", 7),
        (b"0", 0),
        (b"000", 0),
    ],
    ids=["the-maximum", "leading-zeros", "zero", "zeros"],
)
def test_retry_values_up_to_a_day_are_taken(value, expected):
    _, decoder = decode_all(b"retry: " + value + b"\n\n")
    assert (decoder.retry_ms, decoder.invalid_retry_count) == (expected, 0)


@pytest.mark.parametrize(
    "value",
    [str(MAX_RETRY_MS + 1).encode(), b"9" * 10, b"9" * 4301, b"1" * 100_000],
    ids=["a-day-and-a-ms", "ten-digits", "past-the-int-limit", "hundred-thousand-digits"],
)
def test_an_absurd_retry_value_is_counted_not_raised(value):
    events, decoder = decode_all(b"retry: 1500\n\nretry: " + value + b"\ndata: x\n\n")
    assert [event.data for event in events] == ["x"]  # the stream goes on
    assert decoder.retry_ms == 1500  # the last valid value stays
    assert decoder.invalid_retry_count == 1


def test_each_absurd_retry_value_is_counted():
    _, decoder = decode_all(b"retry: 99999999999\n\nretry: 1\nretry: " + b"7" * 20 + b"\n\n")
    assert (decoder.retry_ms, decoder.invalid_retry_count) == (1, 2)


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


@pytest.mark.parametrize("stream", [b"\n\n", b"\r\n", b"\n"], ids=["lf-lf", "crlf", "lf"])
def test_a_body_of_blank_lines_shorter_than_a_bom_is_just_blank_lines(stream):
    events, decoder = decode_all(stream)
    assert (events, decoder.other_line_count, decoder.comment_count) == ([], 0, 0)


@pytest.mark.parametrize("pieces", [[b"\xef\xbb"], [b"\xef", b"\xbb"]], ids=["whole", "split"])
def test_a_body_that_is_only_part_of_a_bom_is_one_other_line(pieces):
    events, decoder = decode_all(*pieces)
    assert (events, decoder.other_line_count) == ([], 1)


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


@settings(max_examples=examples(500))
@given(streams(), st.data())
def test_any_split_gives_the_events_of_the_reference_decoder(stream, data):
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=24))
    events, decoder = decode_all(*split(stream, cuts))
    expected_events, expected_comments = reference_decode(stream)
    assert events == expected_events
    assert decoder.comment_count == expected_comments


@settings(max_examples=examples(100))
@given(streams())
def test_byte_by_byte_equals_one_piece(stream):
    assert decode_all(*[stream[i : i + 1] for i in range(len(stream))])[0] == decode_all(stream)[0]


@settings(max_examples=examples(300))
@given(st.lists(st.binary(max_size=64), max_size=10))
def test_arbitrary_bytes_never_raise(pieces):
    events, _ = decode_all(*pieces)
    assert all(isinstance(event.data, str) for event in events)


_FIELD_NAMES = st.sampled_from([b"data", b"event", b"id", b"retry", b"", b":", b"x"])
_VALUES = st.one_of(
    st.binary(max_size=32),
    st.integers(0, 9000).map(lambda n: b"9" * n),  # digits past Python's int() limit too
    st.integers(0, 9000).map(lambda n: b"0" * n + b"5"),
)


@settings(max_examples=examples(200), deadline=None)
@given(
    st.lists(st.tuples(_FIELD_NAMES, _VALUES, st.sampled_from([b"\n", b"\r", b"\r\n", b""]))),
    st.data(),
)
def test_any_field_with_any_value_never_raises(lines, data):
    stream = b"".join(name + b": " + value + eol for name, value, eol in lines)
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=8))
    for fast in (True, False):
        decoder = SSEDecoder()
        decoder._fast_path = fast
        for piece in split(stream, cuts):
            decoder.feed(piece)
        decoder.close()
        assert decoder.retry_ms is None or 0 <= decoder.retry_ms <= MAX_RETRY_MS


# --------------------------------------------------------------------------- linear work
#
# Work is counted, not timed: ``carried_bytes`` is every byte the decoder joins again from an
# earlier read. Joining the pending line on every read of a long line sent in tiny pieces made
# decoding quadratic (40 KB one byte at a time: 12 s); each byte must be carried a bounded
# number of times (at most twice: once by the fast path's look, once by the line split).


def _carried(pieces: list[bytes], *, fast: bool = True) -> int:
    decoder = SSEDecoder()
    decoder._fast_path = fast
    for piece in pieces:
        decoder.feed(piece)
    decoder.close()
    return decoder.carried_bytes


@pytest.mark.parametrize("fast", [True, False], ids=["fast-path", "general-path"])
@pytest.mark.parametrize(
    "line",
    [b"data: " + b"x" * 40_000, b": " + b"p" * 40_000, b"event: " + b"e" * 40_000],
    ids=["data", "comment", "event"],
)
def test_a_long_line_one_byte_at_a_time_is_carried_a_bounded_number_of_times(line, fast):
    stream = line + b"\n\ndata: y\n\n"
    pieces = [stream[i : i + 1] for i in range(len(stream))]
    assert _carried(pieces, fast=fast) <= 2 * len(stream)
    events, _ = decode_all(*pieces)
    if line.startswith(b"data"):
        assert len(events[0].data) == 40_000


@settings(max_examples=examples(200), deadline=None)
@given(streams(), st.data())
def test_decoding_is_linear_for_any_split(stream, data):
    stream = stream * data.draw(st.integers(1, 4))
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=64))
    for fast in (True, False):
        assert _carried(split(stream, cuts), fast=fast) <= 2 * len(stream) + 8
    ones = [stream[i : i + 1] for i in range(len(stream))]
    assert _carried(ones) <= 2 * len(stream) + 8


# --------------------------------------------------------------------------- single decisions
# Each test below pins one decision a mutation run found unpinned (docs/mutation.md).


def test_an_event_is_a_frozen_keyword_only_value():
    event = SSEEvent(data="a")
    with pytest.raises(AttributeError):
        event.data = "b"  # type: ignore[misc]
    with pytest.raises(TypeError):
        SSEEvent("a")  # type: ignore[misc]


@pytest.mark.parametrize("data", ["", "DONE", "[DON", "[DONE]x"], ids=str)
def test_only_the_done_payload_is_done(data):
    assert not SSEEvent(data=data).is_done


def test_nothing_is_carried_when_every_line_arrives_whole():
    decoder = SSEDecoder()
    decoder.feed(b"data: a\n\n")
    assert decoder.carried_bytes == 0


@pytest.mark.parametrize(
    "read",
    [
        b"data: a\nq",
        b"data: a\n\t",
        b"data: a\t\n",
        b"data: a\nxxxxx\n",
        b"data: a\nb\n",
        b"data: a\x0b\n",
        b"data: a\n\x0b",
    ],
    ids=[
        "partial-field",
        "partial-tab",
        "no-blank-line",
        "other-line-then-lf",
        "short-other-line",
        "vertical-tab-then-lf",
        "lf-then-vertical-tab",
    ],
)
def test_a_read_without_a_blank_line_dispatches_nothing(read):
    assert SSEDecoder().feed(read) == []


def test_an_empty_data_line_then_two_blank_lines_is_one_empty_event():
    assert [e.data for e in SSEDecoder().feed(b"data: \n\n\n")] == [""]


def test_a_stream_of_only_a_byte_order_mark_has_no_lines():
    events, decoder = decode_all(b"\xef\xbb\xbf")
    assert events == []
    assert decoder.other_line_count == 0


@pytest.mark.parametrize(
    ("line", "expected"),
    [(b"data:\tx", "\tx"), (b"data:x", "x"), (b"data:  x", " x")],
    ids=["tab-kept", "no-space", "one-space-removed"],
)
def test_only_one_space_after_the_data_colon_is_removed(line, expected):
    assert datas(line + b"\n\n") == [expected]


@pytest.mark.parametrize(
    ("line", "expected"),
    [(b"event:x", "x"), (b"event:\tx", "\tx"), (b"event: x", "x")],
    ids=["no-space", "tab-kept", "space-removed"],
)
def test_only_one_space_after_a_field_colon_is_removed(line, expected):
    events, _ = decode_all(line + b"\ndata: d\n\n")
    assert [e.event for e in events] == [expected]


def test_only_an_lf_is_dropped_after_a_read_that_ended_in_cr():
    events, decoder = decode_all(b"data: a\r", b"\tdata: b\n\n")
    assert [e.data for e in events] == ["a"]
    assert decoder.other_line_count == 1


def test_a_pending_piece_starts_the_line_that_the_next_read_completes():
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a") == []
    assert [e.data for e in decoder.feed(b"data: b\n\n")] == ["adata: b"]


def test_a_byte_order_mark_after_a_fast_path_event_is_not_stripped():
    decoder = SSEDecoder()
    assert [e.data for e in decoder.feed(b"data: a\n\n")] == ["a"]
    assert decoder.feed(b"\xef\xbb\xbfdata: b\n\n") == []
    assert decoder.other_line_count == 1


@pytest.mark.parametrize(
    "read",
    [
        pytest.param(b"data: a\n\ndata: b\n\n", id="two-events"),
        pytest.param(b"data: a\n\ndata: \n\n", id="an-empty-last-payload"),
        pytest.param(b"data: \n\ndata: b\n\ndata: c\n\n", id="an-empty-first-payload"),
        pytest.param(b'data: {"t":"data: x"}\n\ndata: y\n\n', id="the-prefix-inside-a-payload"),
        pytest.param(b"data: a\n\ndata: b\n\ndata: pa", id="a-partial-line-after-them"),
    ],
)
def test_several_whole_events_in_one_read_take_the_fast_path_to_the_same_events(read):
    fast = SSEDecoder()._feed_fast(read)
    assert fast is not None
    events, _ = reference_decode(read.rsplit(b"\n\n", 1)[0] + b"\n\n")
    assert [payload.decode() for payload in fast] == [event.data for event in events]
    assert datas(read) == [event.data for event in reference_decode(read)[0]]
