"""The observer reads a 2xx answer to a streamed request whose ``Content-Type`` is not
``text/event-stream`` by its first bytes (``CallObserver.sniff``): an SSE field line or comment
is a stream (parsed as one; the label a tolerated ``http/contract/stream_content_type`` on a
whole, sound stream), anything else a body, judged as before. Bounded, once per response, and
nothing raises out of it."""

from __future__ import annotations

import asyncio
import gzip
import random
import time
import zlib

import httpx2
import orjson
import pytest

from chatcontract.exchange import Exchange
from chatcontract.transport import AsyncInstrumentedTransport, InstrumentedTransport
from chatcontract.transport.observer import SNIFF_BYTES, CallObserver, request_facts
from raw_servers import COMPLETION, STREAM_EVENTS, gzip_events, raw_server, read_request

STREAMED = orjson.dumps({"model": "gpt-4.1-nano", "messages": [], "stream": True})
WHOLE = b"".join(STREAM_EVENTS)


def _observer(exchanges: list[Exchange], body: bytes = STREAMED) -> CallObserver:
    facts = request_facts("POST", "http://up/v1/chat/completions", body, {}, None)
    return CallObserver(request=facts, contract=None, sinks=(exchanges.append,))


def _sniffed(reads: list[bytes], headers: dict[str, str] | None = None) -> tuple[int, bool]:
    """How many reads the observer took to decide, and whether it found a stream."""
    observer = _observer([])
    observer.on_response(200, headers or {"content-type": "application/json"})
    assert observer.sniffing
    for count, read in enumerate(reads, 1):
        if observer.sniff(read):
            return count, observer.stream is not None
    return 0, observer.stream is not None


@pytest.mark.parametrize(
    ("reads", "taken", "stream"),
    [
        ([b"data: {}\n\n"], 1, True),
        ([b"event: x\n"], 1, True),
        ([b"id: 1\n"], 1, True),
        ([b"retry: 10\n"], 1, True),
        ([b": keep-alive\n\n"], 1, True),
        ([b"\r\n\r\n", b"  ", b"data: {}"], 3, True),
        ([b"d", b"a", b"ta:"], 3, True),  # a field name cut across reads
        ([b"\xef", b"\xbb\xbfdata: x"], 2, True),  # a byte order mark, cut
        ([b"{"], 1, False),
        ([b"\n  ", b'{"id": 1}'], 2, False),
        ([b"da", b"ta {"], 2, False),  # not a field line: ``data`` without its colon
        ([b"<html>"], 1, False),
        ([b"[1]"], 1, False),
    ],
)
def test_the_first_bytes_say_what_the_answer_is(reads, taken, stream):
    assert _sniffed(reads) == (taken, stream)


def test_whitespace_without_end_is_a_body_within_the_sniff_limit():
    observer = _observer([])
    observer.on_response(200, {"content-type": "application/json"})
    reads = 0
    while not observer.sniff(b" " * 100):
        reads += 1
        assert reads * 100 < SNIFF_BYTES
    assert observer.stream is None and not observer.sniffing


def test_a_coded_prefix_that_decodes_to_nothing_is_a_body_within_the_sniff_limit():
    # A gzip header whose file name never ends: zlib takes it all and gives nothing back.
    header = b"\x1f\x8b\x08\x08\x00\x00\x00\x00\x00\x03" + b"n" * (4 * SNIFF_BYTES)
    observer = _observer([])
    observer.on_response(200, {"content-type": "application/json", "content-encoding": "gzip"})
    taken = 0
    for start in range(0, len(header), 512):
        taken += 512
        if observer.sniff(header[start : start + 512]):
            break
    assert taken <= SNIFF_BYTES and observer.stream is None


@pytest.mark.parametrize("coded", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("sniffed", [True, False], ids=["sniffed-first", "chunks-only"])
def test_a_mislabelled_stream_is_judged_as_the_stream_it_is(coded, sniffed):
    reads = list(gzip_events(STREAM_EVENTS)) if coded else [WHOLE[:3], WHOLE[3:]]
    headers = {"content-type": "text/plain"}
    if coded:
        headers["content-encoding"] = "gzip"
    exchanges: list[Exchange] = []
    observer = _observer(exchanges)
    observer.on_response(200, headers)
    if sniffed:  # as the transports do: the first reads say what it is, then all are fed
        taken = 0
        for read in reads:
            taken += 1
            if observer.sniff(read):
                break
        assert taken == (1 if coded else 2)
        assert observer.stream is not None
    sink = observer.chunk_sink
    for read in reads:
        sink(read)
    exchange = observer.finish()
    assert exchanges == [exchange]
    assert exchange.failure is not None
    assert (exchange.failure.kind, exchange.failure.category, exchange.failure.code) == (
        "http",
        "contract",
        "stream_content_type",
    )
    assert "text/plain" in exchange.failure.message
    assert exchange.response.stream_verdict == "complete"
    assert exchange.response.content_chars > 0


def test_a_mislabelled_stream_that_fails_is_named_for_its_failure_not_its_label():
    exchanges: list[Exchange] = []
    observer = _observer(exchanges)
    observer.on_response(200, {})
    cut = b"".join(STREAM_EVENTS[:5])  # no finish_reason, no [DONE]: the server closed
    observer.sniff(cut)
    observer.on_chunk(cut)
    assert observer.finish().failure.code == "stream_cut"


def test_a_json_answer_to_a_streamed_request_is_judged_as_before():
    exchanges: list[Exchange] = []
    observer = _observer(exchanges)
    observer.on_response(200, {"content-type": "application/json"})
    assert observer.sniff(COMPLETION[:1])
    observer.on_chunk(COMPLETION)
    exchange = observer.finish()
    assert exchange.failure is None and exchange.response.stream_verdict is None
    assert exchange.response.model == "gpt-4.1-nano"


def test_only_a_streamed_request_is_sniffed():
    exchanges: list[Exchange] = []
    observer = _observer(exchanges, body=b'{"model": "m", "messages": []}')
    observer.on_response(200, {"content-type": "application/json"})
    assert not observer.sniffing
    observer.on_chunk(WHOLE)
    assert observer.finish().failure.code == "invalid_json"


def test_a_labelled_stream_is_read_as_before():
    observer = _observer([])
    observer.on_response(200, {"content-type": "text/event-stream"})
    assert not observer.sniffing
    assert observer.chunk_sink == observer.stream.feed  # the parser's own feed per read


@pytest.mark.parametrize("status", [400, 500])
def test_an_error_answer_is_not_sniffed(status):
    observer = _observer([])
    observer.on_response(status, {"content-type": "application/json"})
    assert not observer.sniffing


def test_a_body_that_ends_or_is_closed_before_it_says_what_it_is_is_a_body():
    for end in ("finish", "closed"):
        exchanges: list[Exchange] = []
        observer = _observer(exchanges)
        observer.on_response(200, {"content-type": "application/json"})
        observer.on_chunk(b"\n\nda")  # held: not yet decided
        exchange = observer.finish() if end == "finish" else observer.closed()
        assert exchange.response.stream_verdict is None
        if end == "finish":
            assert exchange.failure.code == "invalid_json"
            assert exchange.response.body_bytes == 4
        else:
            assert exchange.closed_by_caller and exchange.failure is None


@pytest.mark.parametrize("coded", [False, True], ids=["plain", "gzip"])
def test_hostile_first_bytes_never_raise(coded):
    rng = random.Random(7)
    alphabet = b" \r\n:{[datevnirysx\xef\xbb\xbf\x00\xff"
    for _ in range(300):
        body = bytes(rng.choice(alphabet) for _ in range(rng.randrange(0, 64)))
        if coded and rng.random() < 0.5:
            body = gzip.compress(body)
        cuts = sorted(rng.sample(range(len(body) + 1), min(3, len(body) + 1)))
        reads = [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]
        headers = {"content-type": "application/json"}
        if coded:
            headers["content-encoding"] = "gzip"
        exchanges: list[Exchange] = []
        observer = _observer(exchanges)
        observer.on_response(200, headers)
        if rng.random() < 0.5:
            for read in reads:
                if observer.sniff(read):
                    break
        for read in reads:
            observer.on_chunk(read)
        observer.finish()
        assert len(exchanges) == 1


def test_a_mislabelled_body_that_never_sends_a_byte_is_bounded_by_the_read_timeout():
    async def silent(reader, writer, server):
        if await read_request(reader, server) is None:
            return
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n")
        writer.write(b"transfer-encoding: chunked\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(3)

    exchanges: list[Exchange] = []
    with (
        raw_server(silent) as server,
        httpx2.Client(transport=InstrumentedTransport(sinks=[exchanges.append])) as client,
    ):
        started = time.monotonic()
        request = client.build_request(
            "POST", server.url, content=STREAMED, timeout=httpx2.Timeout(2.0, read=0.3)
        )
        response = client.send(request, stream=True)
        with pytest.raises(httpx2.ReadTimeout):
            response.read()
        response.close()
    assert time.monotonic() - started < 2.0
    [exchange] = exchanges
    assert exchange.failure.code == "read_timeout"
    assert exchange.response.status == 200


def test_a_gzip_stream_with_a_corrupt_start_is_invalid_encoding_not_a_crash():
    exchanges: list[Exchange] = []
    observer = _observer(exchanges)
    observer.on_response(200, {"content-type": "application/json", "content-encoding": "gzip"})
    junk = b"\x1f\x8b\x08\x00" + zlib.compress(b"data: x")[::-1]
    assert observer.sniff(junk)
    observer.on_chunk(junk)
    assert observer.finish().failure.code == "invalid_encoding"


@pytest.mark.anyio
async def test_a_call_cancelled_while_its_first_bytes_are_awaited_is_closed_by_its_caller():
    async def silent(reader, writer, server):
        if await read_request(reader, server) is None:
            return
        writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
        await writer.drain()
        await reader.read()  # until the client goes away
        server.state["gone"] = True

    exchanges: list[Exchange] = []
    with raw_server(silent) as server:
        transport = AsyncInstrumentedTransport(sinks=[exchanges.append])
        async with httpx2.AsyncClient(transport=transport) as client:
            request = client.build_request("POST", server.url, content=STREAMED, timeout=5.0)
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(client.send(request, stream=True), 0.3)
        deadline = time.monotonic() + 5
        while not server.state.get("gone") and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
    assert server.state.get("gone")  # the connection was closed, not left open
    [exchange] = exchanges
    assert exchange.closed_by_caller and exchange.failure is None
    assert exchange.response.status == 200
