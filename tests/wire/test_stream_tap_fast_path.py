"""The tapped stream's fast path (plain ``data:`` reads, no ``SSEEvent`` built) taps, assembles
and judges exactly what the general path does, read by read, however the bytes are split."""

from __future__ import annotations

import orjson
import pytest
from _examples import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from chatcontract.wire import StreamAssembler, StreamParser, StreamResult
from chatcontract.wire.stream import _typed_run


class _UntypedAssembler(StreamAssembler):
    """The assembler without its typed decoder: every chunk decoded by orjson."""

    __slots__ = ()

    def __init__(self) -> None:
        super().__init__()
        self._typed_misses = 1_000_000  # never tried


def _chunk(content: object, finish: object = None, **top: object) -> bytes:
    doc = {"id": "c1", "model": "m", "created": 1, **top}
    doc["choices"] = [{"index": 0, "delta": {"content": content}, "finish_reason": finish}]
    return orjson.dumps(doc)


_PAYLOADS = [
    _chunk("a"),
    _chunk("\u00e9\u2603"),
    _chunk("", "stop"),
    _chunk("", usage={"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}),
    _chunk(7),  # a type violation: rejected, the stream failed there
    _chunk("x", error={"message": "boom"}),
    b'{"error": {"message": "overloaded", "type": "server_error"}}',  # in-band error
    b'{"id": "c1", "choi',  # malformed JSON
    b"[1, 2]",
    b"\xff{bad utf-8}",
    b"",
    b"  ",
    b"[DONE]",
]


@st.composite
def _streams(draw: st.DrawFn) -> list[bytes]:
    """A body of events (with ``event:`` lines, comments, multi-line data and CR endings now
    and then), maybe cut short, split anywhere."""
    body = bytearray()
    for _ in range(draw(st.integers(0, 8))):
        payload = draw(st.sampled_from(_PAYLOADS))
        lines = draw(
            st.lists(
                st.sampled_from([b": PING", b"event: error", b"event: message", b"id: 7"]),
                max_size=2,
            )
        )
        if draw(st.integers(0, 5)) == 0 and len(payload) > 1:  # multi-line data
            lines += [b"data: " + payload[:1], b"data: " + payload[1:]]
        else:
            lines.append(draw(st.sampled_from([b"data: ", b"data: ", b"data:"])) + payload)
        end = draw(st.sampled_from([b"\n", b"\n", b"\n", b"\r\n"]))
        body += end.join(lines) + end + end
        if draw(st.integers(0, 6)) == 0:
            body += b": keep-alive\n\n"
    if body and draw(st.booleans()):  # cut short: a last event without its blank line
        body = body[: draw(st.integers(len(body) // 2, len(body)))]
    cuts = sorted({c % (len(body) + 1) for c in draw(st.lists(st.integers(0, 4096), max_size=10))})
    if draw(st.booleans()):  # one read per event, as servers write them
        return [bytes(piece) + b"\n\n" for piece in bytes(body).split(b"\n\n")]
    return [bytes(body[a:b]) for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]


def _tapped(
    reads: list[bytes], *, fast: bool, typed: bool = True, tap_after: int = 0
) -> tuple[list[list[bytes]], StreamResult, int]:
    """What a pass-through reader drains after each read, the result and the ping count."""
    parser = StreamParser(defer=True)
    parser._decoder._fast_path = fast
    if not typed:
        parser._assembler = _UntypedAssembler()
    drained: list[list[bytes]] = []
    taken: list[bytes] | None = None
    for n, read in enumerate(reads):
        if n == tap_after:
            taken = parser.tap()
        parser.feed(read, now=float(n))
        if taken is not None:
            drained.append(taken[:])
            taken.clear()
    if taken is None:
        taken = parser.tap()
    result = parser.close(now=float(len(reads)))
    drained.append(taken[:])
    return drained, result, parser.ping_count


@pytest.mark.parametrize("typed", [True, False], ids=["typed-decoder", "orjson-only"])
@settings(max_examples=examples(300), deadline=None)
@given(reads=_streams(), tap_after=st.integers(0, 3))
def test_the_fast_tap_agrees_with_the_general_tap_on_any_split(reads, tap_after, typed):
    fast = _tapped(reads, fast=True, typed=typed, tap_after=tap_after)
    assert fast == _tapped(reads, fast=False, typed=typed, tap_after=tap_after)


@pytest.mark.parametrize("fast", [True, False], ids=["fast", "general"])
def test_reads_held_before_the_tap_are_tapped_when_it_begins(fast):
    # Deferred after the first token, the second read is held; tap() takes it, and a pass-
    # through reader must get its payload: the chunk template's shortcut assembled it without
    # tapping it (the assembled text had three a's, the tap two payloads of three).
    read = b"data: " + _chunk("a") + b"\n\n"
    drained, result, _ = _tapped([read, read, read], fast=fast, tap_after=2)
    assert drained == [[_chunk("a"), _chunk("a")], []]
    assert result.content == "aaa"


def test_held_reads_are_tapped_in_order_by_the_fast_path():
    body = b"".join(b"data: " + _chunk(t) + b"\n\n" for t in "abc") + b"data: [DONE]\n\n"
    drained, result, _ = _tapped([body], fast=True)
    assert drained[0] == [_chunk(t) for t in "abc"]
    assert (result.content, str(result.verdict)) == ("abc", "truncated")


def test_the_fast_tap_stops_at_a_failure_inside_one_read():
    good, bad = b"data: " + _chunk("a") + b"\n\n", b'data: {"id": "c1", "choi\n\n'
    drained, result, _ = _tapped([good + bad + good], fast=True)
    assert drained[0] == [_chunk("a")]
    assert (result.content, str(result.verdict)) == ("a", "malformed_chunk")


_USAGE = _chunk("", usage={"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3})


@pytest.mark.parametrize(
    ("payloads", "run"),
    [
        ([_chunk("a"), _chunk("b")], 2),
        ([_chunk("a"), _chunk("", "stop"), _USAGE, b"[DONE]"], 2),
        ([_chunk("a"), _chunk("b"), b"[DONE]"], 2),
        ([_chunk("a"), _USAGE], 1),
        ([_USAGE, b"[DONE]"], 0),
        ([b"[DONE]"], 0),
        ([_chunk("a"), _chunk("b"), b"~"], 2),
        ([_chunk("a"), b"\xc3\xa9"], 1),
    ],
    ids=[
        "all-chunks",
        "usage-then-done",
        "done",
        "usage",
        "only-the-end",
        "only-done",
        "no-json-object-last",
        "non-ascii-last",
    ],
)
def test_the_typed_run_stops_before_what_ends_a_stream(payloads, run):
    assert _typed_run(payloads) == run


def test_a_last_read_is_decoded_in_one_call_up_to_its_usage_chunk(monkeypatch):
    import chatcontract.wire.stream as stream_module

    calls: list[int] = []
    real = stream_module.decode_chunks

    def counting(payloads: list[bytes]) -> object:
        calls.append(len(payloads))
        return real(payloads)

    monkeypatch.setattr(stream_module, "decode_chunks", counting)
    events = [_chunk(t) for t in "abc"] + [_chunk("", "stop"), _USAGE, b"[DONE]"]
    body = b"".join(b"data: " + event + b"\n\n" for event in events)
    drained, result, _ = _tapped([body], fast=True)
    assert calls == [4]
    assert drained[0] == events[:5]
    assert (result.content, str(result.verdict), result.usage.total_tokens) == (
        "abc",
        "complete",
        3,
    )
    assert (drained, result) == _tapped([body], fast=False)[:2]
