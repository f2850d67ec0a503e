"""A deferring StreamParser: every held read is taken, and the raw windows are cut at the
same byte whichever reads brought the bytes, at the exact window boundaries too."""

import itertools

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatcontract.wire import StreamParser

# The documented windows (``StreamParser.raw_windows``): the first 4 KiB, and the last 4 to
# 8 KiB. Written out, not read from the module: a changed constant must fail here.
WINDOW_BYTES = 4096


def _event(content: str) -> bytes:
    doc = {"id": "c", "choices": [{"index": 0, "delta": {"content": content}}]}
    return b"data: " + orjson.dumps(doc) + b"\n\n"


def _comment(size: int) -> bytes:
    """A keep-alive comment read of exactly ``size`` bytes."""
    return b":" + b"x" * (size - 2) + b"\n"


@pytest.mark.parametrize("held", [1, 2, 3], ids=["one-held", "two-held", "three-held"])
def test_every_held_read_is_taken(held):
    parser = StreamParser(defer=True)
    parser.feed(_event("a"))  # the first token: from now on reads are held
    for n in range(held):
        parser.feed(_event(str(n)))
    assert parser._assembler.chunk_count == 1  # all held
    result = parser.close()
    assert result.content == "a" + "".join(str(n) for n in range(held))
    assert result.chunk_count == 1 + held


@pytest.mark.parametrize(
    ("reads", "size", "taken"),
    [
        pytest.param(31, 10, False, id="31-small-reads-held"),
        pytest.param(32, 10, True, id="32-small-reads-taken"),
        pytest.param(1, 16 * 1024 - 1, False, id="a-read-under-16-KiB-held"),
        pytest.param(1, 16 * 1024, True, id="a-16-KiB-read-taken"),
    ],
)
def test_held_reads_are_taken_at_32_reads_or_after_a_16_kib_read(reads, size, taken):
    # The documented limits (``StreamParser``'s ``defer``), written out: a changed constant
    # must fail here.
    parser = StreamParser(defer=True)
    parser.feed(_event("a"))  # the first token: from now on reads are held
    for _ in range(reads):
        parser.feed(_comment(size))
    assert (parser._held == []) is taken
    assert parser.bytes_fed == len(_event("a")) + (reads * size if taken else 0)


def _windows_of(stream: bytes) -> tuple[bytes, bytes]:
    """The windows as documented: the first WINDOW_BYTES bytes; the tail from the last
    multiple of WINDOW_BYTES at least WINDOW_BYTES back (whatever the reads)."""
    start = max(0, (len(stream) // WINDOW_BYTES - 1) * WINDOW_BYTES)
    return stream[:WINDOW_BYTES], stream[start:]


@pytest.mark.parametrize("defer", [True, False], ids=["held", "read-by-read"])
@pytest.mark.parametrize(
    ("extra", "kept"),
    [
        pytest.param(-1, 2 * WINDOW_BYTES - 1, id="a-byte-short-of-twice-the-window-whole"),
        pytest.param(0, WINDOW_BYTES, id="twice-the-window-the-last-window"),
        pytest.param(100, WINDOW_BYTES + 100, id="past-twice-the-window"),
        pytest.param(WINDOW_BYTES - 1, 2 * WINDOW_BYTES - 1, id="a-byte-short-of-thrice"),
        pytest.param(WINDOW_BYTES, WINDOW_BYTES, id="thrice-the-window-the-last-window"),
    ],
)
def test_the_tail_starts_at_a_multiple_of_the_window(defer, extra, kept):
    first = _event("a")  # the first token: later reads are held when deferring
    fill = 2 * WINDOW_BYTES - len(first) + extra - 100
    reads = [first, _comment(fill // 2), _comment(fill - fill // 2), _comment(100)]
    parser = StreamParser(defer=defer, windows=True)
    for read in reads:
        parser.feed(read)
    parser.close()
    head, tail = parser.raw_windows()
    assert (head, tail) == _windows_of(b"".join(reads))
    assert len(tail) == kept


_STREAM = b"".join(_event(str(n) * (n % 7 + 1)) for n in range(400))  # about 40 KiB


@settings(max_examples=60, deadline=None)
@given(
    length=st.integers(min_value=0, max_value=len(_STREAM)),
    cuts=st.lists(st.integers(min_value=0, max_value=len(_STREAM)), max_size=40),
    defer=st.booleans(),
)
def test_the_windows_are_the_documented_bytes_whatever_the_reads(length, cuts, defer):
    stream = _STREAM[:length]
    bounds = sorted({0, length, *(cut for cut in cuts if cut < length)})
    parser = StreamParser(defer=defer, windows=True)
    for start, end in itertools.pairwise(bounds):
        parser.feed(stream[start:end])
    parser.close()
    assert parser.raw_windows() == _windows_of(stream)


@pytest.mark.parametrize("size", [1, 7, 100], ids=["bytes", "7-byte-reads", "100-byte-reads"])
def test_a_stream_of_tiny_reads_keeps_few_pieces_and_the_same_windows(size):
    stream = _STREAM[: 5 * WINDOW_BYTES + 123]
    parser = StreamParser(windows=True)
    for start in range(0, len(stream), size):
        parser.feed(stream[start : start + size])
        assert len(parser._head) <= 64 and len(parser._tail) <= 64  # joined past 64 pieces
        assert sum(map(len, parser._head)) < WINDOW_BYTES + size  # the first window, no more
        assert parser._tail_size <= 2 * WINDOW_BYTES + 65 * size  # bounded, whatever the reads
    parser.close()
    assert parser.raw_windows() == _windows_of(stream)


def test_a_buffer_fed_is_kept_as_it_was_then():
    first = bytearray(_event("a"))
    parser = StreamParser(windows=True)
    parser.feed(first)  # type: ignore[arg-type]
    kept = bytes(first)
    first[:] = b"x" * len(first)  # its owner reuses it
    parser.close()
    assert parser.raw_windows() == (kept, kept)
