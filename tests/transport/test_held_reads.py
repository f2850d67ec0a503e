"""Once a stream's parser holds its reads, ``instrument()``'s transport passes them on in C
and hands them over a batch at a time: the Exchange is the one feeding each read gives,
whatever the reads, however the caller stops, and whenever the body fails."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

import httpx2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatcontract.contract import load_preset
from chatcontract.transport import STREAM_EXTENSION, InstrumentedTransport
from chatcontract.wire.stream import HOLD_READ_BYTES, HOLD_READS, StreamParser

COMET = load_preset("cometapi")
URL = "http://upstream.test/v1/chat/completions"
REQUEST = {
    "model": "m",
    "messages": [{"role": "user", "content": "hi"}],
    "stream": True,
    "stream_options": {"include_usage": True},
}


def _event(content: str | None, **top: object) -> bytes:
    choice: dict[str, object] = {
        "index": 0,
        "delta": {} if content is None else {"content": content},
    }
    if content is None:
        choice["finish_reason"] = "stop"
    chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    return b"data: " + json.dumps({**chunk, "choices": [choice], **top}).encode() + b"\n\n"


WORDS = 3 * HOLD_READS + 5
USAGE = {"prompt_tokens": 1, "completion_tokens": WORDS, "total_tokens": WORDS + 1}
EVENTS = [
    _event(""),  # no token yet
    *(_event(f"w{i} ") for i in range(WORDS)),
    _event(None),
    b'data: {"id":"c1","choices":[],"usage":' + json.dumps(USAGE).encode() + b"}\n\n",
    b"data: [DONE]\n\n",
]
BODY = b"".join(EVENTS)


class _Body(httpx2.SyncByteStream):
    """An upstream body given read by read, failing (a reset) before read ``fail_at``."""

    def __init__(self, reads: list[bytes], fail_at: int | None = None) -> None:
        self.reads = reads
        self.fail_at = fail_at
        self.given = 0

    def __iter__(self) -> Iterator[bytes]:
        for read in self.reads:
            if self.given == self.fail_at:
                raise httpx2.ReadError("connection reset by peer")
            self.given += 1
            yield read


class _Upstream(httpx2.BaseTransport):
    def __init__(self, body: _Body) -> None:
        self.body = body

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        headers = {"content-type": "text/event-stream"}
        return httpx2.Response(200, headers=headers, stream=self.body, request=request)


Consume = Callable[[httpx2.Response], None]


def _read_all(response: httpx2.Response) -> None:
    for _ in response.iter_raw():
        pass


def _exchange(
    reads: list[bytes],
    consume: Consume = _read_all,
    *,
    each: bool = False,
    fail_at: int | None = None,
) -> tuple[object, _Body]:
    """The call's Exchange. ``each``: with a deadline, whose reads go through the
    transport's per-read loop (each fed to the parser as it comes): the reference."""
    body = _Body(reads, fail_at)
    exchanges: list = []
    transport = InstrumentedTransport(
        contract=COMET,
        sinks=[exchanges.append],
        inner=_Upstream(body),
        capture_content=True,
        total_timeout=60.0 if each else None,
    )
    with httpx2.Client(transport=transport) as client:
        try:
            with client.stream("POST", URL, json=REQUEST) as response:
                consume(response)
        except httpx2.ReadError:
            pass
    [exchange] = exchanges
    return exchange, body


def _same(held: object, each: object) -> None:
    assert held.response == each.response  # type: ignore[attr-defined]
    assert held.failure == each.failure  # type: ignore[attr-defined]


def _cut(body: bytes, points: list[int]) -> list[bytes]:
    points = sorted({point % (len(body) + 1) for point in points})
    return [body[a:b] for a, b in zip([0, *points], [*points, len(body)], strict=True) if b > a]


@pytest.mark.parametrize(
    "reads",
    [
        EVENTS,  # a read per event: the template's fast way
        [BODY[i : i + 7] for i in range(0, len(BODY), 7)],  # events cut anywhere
        [b"".join(EVENTS[i : i + 5]) for i in range(0, len(EVENTS), 5)],
    ],
    ids=["event-per-read", "seven-bytes", "five-events"],
)
def test_a_held_stream_gives_the_exchange_of_each_read_fed(reads):
    held, body = _exchange(reads)
    _same(held, _exchange(reads, each=True)[0])
    assert held.ok, held.failure
    assert held.response.chunk_count == len(EVENTS) - 1  # all but [DONE]
    assert held.response.content == "".join(f"w{i} " for i in range(WORDS))
    assert held.response.body_bytes == len(BODY)
    assert body.given == len(reads)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(0, len(BODY)), max_size=200))
def test_any_reads_give_the_exchange_of_each_read_fed(points):
    reads = _cut(BODY, points)
    _same(_exchange(reads)[0], _exchange(reads, each=True)[0])


def test_every_byte_is_passed_on_in_order():
    received: list[bytes] = []
    _exchange(EVENTS, lambda response: received.extend(response.iter_raw()))
    assert received == EVENTS


def _stop_after(count: int, readers: list[Iterator[bytes]] | None = None) -> Consume:
    """Read ``count`` reads, then stop: closing the reader, or (given ``readers``) keeping
    it open there as the response is closed, so that the transport's ``close`` comes
    before the end of its reads."""

    def consume(response: httpx2.Response) -> None:
        reader = response.iter_raw()
        for _ in range(count):
            next(reader)
        if readers is None:
            reader.close()
        else:
            readers.append(reader)

    return consume


@pytest.mark.parametrize("close_reader", [True, False], ids=["reader-closed", "response-closed"])
@pytest.mark.parametrize("count", [2, 3, HOLD_READS + 1, HOLD_READS + 2, 2 * HOLD_READS + 9])
def test_a_caller_that_stops_early_is_observed_up_to_the_last_read_it_got(count, close_reader):
    readers: list[Iterator[bytes]] = []
    kept = None if close_reader else readers
    held, body = _exchange(EVENTS, _stop_after(count, kept))
    assert len(readers) == (0 if close_reader else 1)  # still open as the call ended
    _same(held, _exchange(EVENTS, _stop_after(count, kept), each=True)[0])
    assert body.given == count  # nothing read past what the caller took
    assert held.response.chunk_count == count
    assert held.response.stream_verdict == "cut"
    for reader in readers:
        reader.close()


@pytest.mark.parametrize("fail_at", [2, 3, HOLD_READS + 2, 2 * HOLD_READS + 9])
def test_a_body_failing_while_held_is_dropped_with_every_read_before_it(fail_at):
    held, body = _exchange(EVENTS, fail_at=fail_at)
    _same(held, _exchange(EVENTS, fail_at=fail_at, each=True)[0])
    assert body.given == fail_at
    assert held.response.chunk_count == fail_at
    assert (held.failure.code, held.response.stream_verdict) == ("stream_dropped", "dropped")


def test_a_reader_that_ends_holding_gets_each_read_from_the_next_batch_on():
    counts: list[int] = []

    def consume(response: httpx2.Response) -> None:
        parser = response.extensions[STREAM_EXTENSION]
        assert isinstance(parser, StreamParser)
        assembler = None
        for i, _ in enumerate(response.iter_raw()):
            if i == 10:  # holding since the first token (read 1)
                assembler = parser.assembler
            if assembler is not None:
                counts.append(assembler.chunk_count)

    held, _ = _exchange(EVENTS, consume)
    # Reads 2 to 33 (from the first token on) are one batch, held by the transport: the
    # assembler gets them when it is taken, as read 34 is asked for...
    last_held = 1 + HOLD_READS
    assert counts[: last_held - 10 + 1] == [2] * (last_held - 10 + 1)
    # ...and from then on each read as it comes (read i is the (i + 1)th chunk; the last
    # one, [DONE], is none).
    rest = [min(i + 1, len(EVENTS) - 1) for i in range(last_held + 1, len(EVENTS))]
    assert counts[last_held - 10 + 1 :] == rest
    _same(held, _exchange(EVENTS, each=True)[0])


def test_large_reads_are_handed_over_in_smaller_batches(monkeypatch):
    batches: list[int] = []
    take = StreamParser.take_reads

    def spy(self: StreamParser, reads: list[bytes]) -> None:
        batches.append(len(reads))
        take(self, reads)

    monkeypatch.setattr(StreamParser, "take_reads", spy)
    big = [_event(""), _event("a"), *(_event("b" * HOLD_READ_BYTES) for _ in range(3 * HOLD_READS))]
    held, _ = _exchange([*big, _event(None), b"data: [DONE]\n\n"])
    assert held.response.chunk_count == len(big) + 1
    assert batches[0] == HOLD_READS  # nothing known of their size before the first batch
    # then as many as fit in the budget, the last batch being what was left
    size = len(big[-1])
    assert size > HOLD_READ_BYTES
    assert set(batches[1:-1]) == {HOLD_READS * HOLD_READ_BYTES // 2 // size}
