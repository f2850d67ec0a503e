"""The instrumented transports observe a stream's body read by read, sync and async: every read
the caller got is in the Exchange (its chunks, content, bytes and verdict), whatever the reads,
however the caller stops (closing its reader, closing the response first, or iterating the
body again to drain it, as the openai SDK's AsyncStream does after ``[DONE]``), and whenever
the body fails; and a call with a deadline (the transports' other read loop) gives the same."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterator

import httpx2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatcontract.contract import load_preset
from chatcontract.exchange import Exchange
from chatcontract.transport import (
    STREAM_EXTENSION,
    AsyncInstrumentedTransport,
    InstrumentedTransport,
)
from chatcontract.wire.stream import HOLD_READS, StreamParser

COMET = load_preset("cometapi")
URL = "http://upstream.test/v1/chat/completions"
REQUEST = {
    "model": "m",
    "messages": [{"role": "user", "content": "hi"}],
    "stream": True,
    "stream_options": {"include_usage": True},
}


def _event(content: str | None) -> bytes:
    delta = {} if content is None else {"content": content}
    choice: dict[str, object] = {"index": 0, "delta": delta}
    if content is None:
        choice["finish_reason"] = "stop"
    chunk = {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    return b"data: " + json.dumps({**chunk, "choices": [choice]}).encode() + b"\n\n"


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
HEADERS = {"content-type": "text/event-stream"}


class _Body(httpx2.SyncByteStream, httpx2.AsyncByteStream):
    """An upstream body given read by read, failing (a reset) before read ``fail_at``."""

    def __init__(self, reads: list[bytes], fail_at: int | None = None) -> None:
        self.reads = reads
        self.fail_at = fail_at
        self.given = 0

    def _next(self) -> Iterator[bytes]:
        # One connection: iterating the body again goes on from where it was.
        while self.given < len(self.reads):
            if self.given == self.fail_at:
                raise httpx2.ReadError("connection reset by peer")
            self.given += 1
            yield self.reads[self.given - 1]

    def __iter__(self) -> Iterator[bytes]:
        yield from self._next()

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for read in self._next():
            yield read


class _Upstream(httpx2.BaseTransport, httpx2.AsyncBaseTransport):
    def __init__(self, body: _Body) -> None:
        self.body = body

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, headers=HEADERS, stream=self.body, request=request)

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        return self.handle_request(request)


OnRead = Callable[[int, httpx2.Response], None]


class _Call:
    """One call through an instrumented transport, read the way the test says."""

    def __init__(
        self,
        reads: list[bytes],
        *,
        each: bool = False,
        fail_at: int | None = None,
        stop: int | None = None,
        keep_open: bool = False,
        drain: bool = False,
        on_read: OnRead | None = None,
    ) -> None:
        #: ``each``: with a deadline, whose reads go through the transport's other loop (each
        #: read under the call's clock): the reference.
        self.body = _Body(reads, fail_at)
        self.exchanges: list[Exchange] = []
        self.options = {
            "contract": COMET,
            "sinks": [self.exchanges.append],
            "inner": _Upstream(self.body),
            "capture_content": True,
            "total_timeout": 60.0 if each else None,
        }
        self.stop = stop  # stop after this many reads
        self.keep_open = keep_open  # the reader still open as the response is closed
        #: then iterate the body again to its end, with the reader still open (what the
        #: openai SDK's AsyncStream does to drain a body after [DONE])
        self.drain = drain
        self.drained: list[bytes] = []
        self.on_read = on_read
        self.received: list[bytes] = []

    def _took(self, read: bytes, response: httpx2.Response) -> bool:
        """Take one read; True to stop reading."""
        if self.on_read is not None:
            self.on_read(len(self.received), response)
        self.received.append(read)
        return self.stop is not None and len(self.received) == self.stop

    def sync(self) -> _Call:
        transport = InstrumentedTransport(**self.options)  # type: ignore[arg-type]
        kept: list[Iterator[bytes]] = []
        with httpx2.Client(transport=transport) as client:
            try:
                with client.stream("POST", URL, json=REQUEST) as response:
                    reader = response.iter_raw()
                    for read in reader:
                        if self._took(read, response):
                            break
                    if self.drain:
                        self.drained.extend(response.stream)  # type: ignore[arg-type]
                    if self.keep_open:
                        kept.append(reader)
                    else:
                        reader.close()  # type: ignore[attr-defined]
            except httpx2.ReadError:
                pass
        for reader in kept:
            reader.close()  # type: ignore[attr-defined]
        return self

    def async_(self) -> _Call:
        async def run() -> None:
            transport = AsyncInstrumentedTransport(**self.options)  # type: ignore[arg-type]
            kept: list[AsyncIterator[bytes]] = []
            async with httpx2.AsyncClient(transport=transport) as client:
                try:
                    async with client.stream("POST", URL, json=REQUEST) as response:
                        reader = response.aiter_raw()
                        async for read in reader:
                            if self._took(read, response):
                                break
                        if self.drain:
                            async for read in response.stream:  # type: ignore[union-attr]
                                self.drained.append(read)
                        if self.keep_open:
                            kept.append(reader)
                        else:
                            await reader.aclose()  # type: ignore[attr-defined]
                except httpx2.ReadError:
                    pass
            for reader in kept:
                await reader.aclose()  # type: ignore[attr-defined]

        asyncio.run(run())
        return self

    def run(self, mode: str) -> _Call:
        return self.sync() if mode == "sync" else self.async_()

    @property
    def exchange(self) -> Exchange:
        [exchange] = self.exchanges
        return exchange


MODES = pytest.mark.parametrize("mode", ["sync", "async"])


def _same(mode: str, reads: list[bytes], **how: object) -> _Call:
    """The call read as ``how`` says, checked against the same call with a deadline."""
    observed = _Call(reads, **how).run(mode)  # type: ignore[arg-type]
    each = _Call(reads, each=True, **how).run(mode)  # type: ignore[arg-type]
    assert observed.exchange.response == each.exchange.response
    assert observed.exchange.failure == each.exchange.failure
    assert observed.received == each.received
    assert observed.drained == each.drained
    return observed


def _cut(body: bytes, points: list[int]) -> list[bytes]:
    points = sorted({point % (len(body) + 1) for point in points})
    return [body[a:b] for a, b in zip([0, *points], [*points, len(body)], strict=True) if b > a]


@MODES
@pytest.mark.parametrize(
    "reads",
    [
        EVENTS,  # a read per event: the template's fast way
        [BODY[i : i + 7] for i in range(0, len(BODY), 7)],  # events cut anywhere
        [b"".join(EVENTS[i : i + 5]) for i in range(0, len(EVENTS), 5)],
    ],
    ids=["event-per-read", "seven-bytes", "five-events"],
)
def test_a_stream_gives_the_exchange_of_each_read_fed(mode, reads):
    call = _same(mode, reads)
    exchange = call.exchange
    assert exchange.ok, exchange.failure
    assert exchange.response.chunk_count == len(EVENTS) - 1  # all but [DONE]
    assert exchange.response.content == "".join(f"w{i} " for i in range(WORDS))
    assert exchange.response.body_bytes == len(BODY)
    assert call.received == reads  # every byte passed on, in order
    assert call.body.given == len(reads)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.integers(0, len(BODY)), max_size=200), st.sampled_from(["sync", "async"]))
def test_any_reads_give_the_exchange_of_each_read_fed(points, mode):
    _same(mode, _cut(BODY, points))


@MODES
@pytest.mark.parametrize("keep_open", [False, True], ids=["reader-closed", "response-closed"])
@pytest.mark.parametrize("stop", [2, 3, HOLD_READS + 1, HOLD_READS + 2, 2 * HOLD_READS + 9])
def test_a_caller_that_stops_early_is_observed_up_to_the_last_read_it_got(mode, stop, keep_open):
    # keep_open: the reader is closed only after the response, so the transport's close
    # comes before the end of its reads.
    call = _same(mode, EVENTS, stop=stop, keep_open=keep_open)
    assert call.body.given == stop  # nothing read past what the caller took
    assert call.exchange.response.chunk_count == stop
    # The caller's own stop: not a stream the server cut (no failure of the provider).
    assert call.exchange.response.stream_verdict == "closed"
    assert call.exchange.closed_by_caller
    assert call.exchange.failure is None


@MODES
@pytest.mark.parametrize("stop", [1, 2, 3, HOLD_READS + 1, 2 * HOLD_READS + 9, len(EVENTS) - 1])
def test_a_body_iterated_again_to_drain_it_is_observed_whole_in_order(mode, stop):
    # The first reader stays open (suspended) while the body is iterated a second time.
    call = _same(mode, EVENTS, stop=stop, keep_open=True, drain=True)
    assert call.received + call.drained == EVENTS
    assert call.exchange.ok, call.exchange.failure
    assert call.exchange.response.chunk_count == len(EVENTS) - 1
    assert call.exchange.response.content == "".join(f"w{i} " for i in range(WORDS))


@MODES
@pytest.mark.parametrize("fail_at", [2, 3, HOLD_READS + 2, 2 * HOLD_READS + 9])
def test_a_body_failing_mid_stream_is_dropped_with_every_read_before_it(mode, fail_at):
    call = _same(mode, EVENTS, fail_at=fail_at)
    assert call.body.given == fail_at
    assert call.exchange.response.chunk_count == fail_at
    failure = call.exchange.failure
    assert (failure.code, call.exchange.response.stream_verdict) == ("stream_dropped", "dropped")


@MODES
def test_a_reader_of_the_assembler_mid_stream_has_every_read_so_far_and_each_after(mode):
    runs: list[list[int]] = []  # per call: the assembler's chunk count at each read from 10 on
    taken: list = []

    def on_read(i: int, response: httpx2.Response) -> None:
        if i == 0:
            runs.append([])
            taken.clear()
        if i == 10:  # the parser has held reads since the first token (read 1)
            parser = response.extensions[STREAM_EXTENSION]
            assert isinstance(parser, StreamParser)
            taken.append(parser.assembler)  # what ChatClient's reader takes
        if taken:
            runs[-1].append(taken[0].chunk_count)

    _same(mode, EVENTS, on_read=on_read)
    # Read i is the (i + 1)th chunk; the last one, [DONE], is none.
    assert runs[0] == [min(i + 1, len(EVENTS) - 1) for i in range(10, len(EVENTS))]
