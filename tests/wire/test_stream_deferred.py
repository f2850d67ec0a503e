"""A deferring StreamParser holds reads after the first token and gives the same results."""

import orjson
import pytest
from _examples import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from chatcontract.wire import StreamParser
from chatcontract.wire.stream import _MAX_PIECES, HOLD_READ_BYTES, HOLD_READS, WINDOW_BYTES


def _event(content: str | None = "w", **top: object) -> bytes:
    choice: dict[str, object] = {
        "index": 0,
        "delta": {} if content is None else {"content": content},
    }
    if content is None:
        choice["finish_reason"] = "stop"
    doc = {"id": "c", "model": "m", "created": 1, "choices": [choice], **top}
    return b"data: " + orjson.dumps(doc) + b"\n\n"


def _body(words: int) -> bytes:
    events = [_event(""), *(_event(f"w{i} ") for i in range(words)), _event(None)]
    usage = {"prompt_tokens": 1, "completion_tokens": words, "total_tokens": words + 1}
    events.append(b"data: " + orjson.dumps({"choices": [], "usage": usage}) + b"\n\n")
    return b"".join(events) + b"data: [DONE]\n\n"


def _reads(body: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(body) + 1) for cut in cuts})
    return [body[a:b] for a, b in zip([0, *points], [*points, len(body)], strict=True)]


def _parse(reads: list[bytes], *, defer: bool) -> tuple[object, tuple[bytes, bytes], int]:
    parser = StreamParser(expect_usage=True, defer=defer, windows=True)
    for moment, read in enumerate(reads):
        parser.feed(read, now=float(moment))
    result = parser.close(now=float(len(reads)))
    return result, parser.raw_windows(), parser.bytes_fed


def _windows_of(stream: bytes) -> tuple[bytes, bytes]:
    """The windows as documented: the first window, and the tail from the last multiple of
    the window at least a window back: the same whatever the reads."""
    start = max(0, (len(stream) // WINDOW_BYTES - 1) * WINDOW_BYTES)
    return stream[:WINDOW_BYTES], stream[start:]


@settings(max_examples=examples(200), deadline=None)
@given(st.integers(0, 300), st.lists(st.integers(0, 60_000), max_size=120))
def test_deferring_gives_the_result_windows_and_count_of_reading_each_read(words, cuts):
    reads = _reads(_body(words), cuts)
    deferred = _parse(reads, defer=True)
    assert deferred == _parse(reads, defer=False)
    assert deferred[1] == _windows_of(b"".join(reads))
    assert deferred[2] == sum(map(len, reads))


def test_reads_after_the_first_token_are_held_then_taken_in_one_pass():
    parser = StreamParser(defer=True)
    parser.feed(_event(""), now=1.0)  # no token yet: decoded at once
    parser.feed(_event("a"), now=2.0)  # the first token: decoded at once, with its moment
    for _ in range(HOLD_READS - 1):
        parser.feed(_event("b"), now=3.0)
    assert parser._assembler.chunk_count == 2  # held, not decoded yet
    parser.feed(_event("b"), now=3.0)
    assert parser._assembler.chunk_count == 2 + HOLD_READS
    assert parser.close().first_token_at == 2.0


def test_a_large_read_is_taken_at_once():
    parser = StreamParser(defer=True)
    parser.feed(_event("a"))
    parser.feed(_event("b" * HOLD_READ_BYTES))
    assert parser._assembler.chunk_count == 2


@pytest.mark.parametrize(
    "read",
    [
        lambda parser: parser.chunk_count,
        lambda parser: parser.verdict,
        lambda parser: parser.snapshot().content,
        lambda parser: parser.done_seen,
        lambda parser: parser.ping_count,
    ],
    ids=["chunk_count", "verdict", "snapshot", "done_seen", "ping_count"],
)
def test_reading_the_parser_takes_what_it_holds(read):
    parser = StreamParser(defer=True)
    parser.feed(_event("a"))
    parser.feed(_event("b"))
    read(parser)
    assert parser._assembler.chunk_count == 2


def test_a_reader_of_the_assembler_ends_deferring():
    parser = StreamParser(defer=True)
    parser.feed(_event("a"))
    parser.feed(_event("b"))
    assembler = parser.assembler  # what ChatClient's reader takes
    mark = assembler.text_mark()
    parser.feed(_event("c"))
    assert assembler.text_since(mark) == ("c", "")  # each read is decoded as it comes


def test_a_deferring_parser_refuses_reads_after_close():
    parser = StreamParser(defer=True)
    parser.feed(_event("a"))
    parser.feed(_event("b"))
    assert parser.close().content == "ab"
    with pytest.raises(RuntimeError):
        parser.feed(_event("c"))


def test_the_clock_gives_the_first_token_moment_when_no_moment_is_fed():
    moments = iter([5.0, 6.0, 7.0])
    parser = StreamParser(clock=lambda: next(moments))
    parser.feed(_event(""))
    parser.feed(_event("a"))
    parser.feed(_event("b"))  # after the first token the clock is not read
    assert parser.close().first_token_at == 6.0
    assert next(moments) == 7.0


# -- the raw windows: references to the reads, bounded in pieces and bytes --------------------


def test_the_windows_keep_64_pieces_then_one_joined_piece():
    parser = StreamParser(windows=True)
    piece = b": p\n\n"
    for _ in range(_MAX_PIECES):
        parser._keep_window(piece)
    assert (_MAX_PIECES, len(parser._head), len(parser._tail)) == (64, 64, 64)
    parser._keep_window(piece)  # the 65th: each side one piece again
    assert (parser._head, parser._tail) == ([piece * 65], [piece * 65])
    assert parser._tail_size == 65 * len(piece)


def test_the_tail_keeps_the_fewest_last_reads_covering_two_windows():
    parser = StreamParser(windows=True)
    reads = [bytes([65 + n]) * 5000 for n in range(3)]  # 15,000 bytes, 2 windows are 8,192
    for read in reads:
        parser._keep_window(read)
    assert parser._tail == reads[1:]  # the first dropped: the other two cover two windows
    assert parser._tail_size == 10_000
    assert 2 * WINDOW_BYTES == 8192


def test_a_tail_of_many_reads_is_joined_to_exactly_two_windows():
    parser = StreamParser(windows=True)
    reads = [bytes([65 + n % 26]) * 127 for n in range(65)]  # 64 x 127 < 8,192 < 65 x 127
    for read in reads:
        parser._keep_window(read)
    assert parser._tail == [b"".join(reads)[-8192:]]
    assert parser._tail_size == 8192
