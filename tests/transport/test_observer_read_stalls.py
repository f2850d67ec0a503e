"""A read timeout is named for how far the answer had come: nothing at all, part of the head,
or the head and part of a (non-streamed) body.

Only the first is a silent route (the client then reports ``first_byte_timeout``); the other
two had their first byte, so the Exchange keeps its time to first byte, and the body stall
keeps the response it got (status, bytes) and says the body stalled.
"""

from __future__ import annotations

import asyncio
import contextlib

import httpx2
import pytest

from chatcontract.contract import load_preset
from chatcontract.exchange import Exchange
from chatcontract.transport import AsyncInstrumentedTransport, InstrumentedTransport
from raw_servers import COMPLETION, RawServer, raw_server, read_request

CONTRACT = load_preset("cometapi")
BODY = {"model": "gpt-4.1-nano", "messages": [{"role": "user", "content": "hi"}]}
READ_TIMEOUT_S = 0.3
HALF = len(COMPLETION) // 2


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _then_silent(sent: bytes):
    """Reads the request, sends ``sent``, then nothing until the client goes away."""

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: RawServer
    ) -> None:
        if await read_request(reader, server) is None:
            return
        if sent:
            writer.write(sent)
            await writer.drain()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(reader.read(1), timeout=5)

    return handler


HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
    + f"content-length: {len(COMPLETION)}\r\n\r\n".encode()
)

STALLS = [
    pytest.param(b"", None, "no response bytes within the read timeout", id="no-byte"),
    pytest.param(
        HEAD[:20],
        None,
        "the response head stalled after its first byte: no bytes within the read timeout",
        id="head-stall",
    ),
    pytest.param(
        HEAD + COMPLETION[:HALF],
        200,
        "the response body stalled after its head: no bytes within the read timeout",
        id="body-stall",
    ),
]


def _sync_call(url: str) -> list[Exchange]:
    exchanges: list[Exchange] = []
    transport = InstrumentedTransport(contract=CONTRACT, sinks=[exchanges.append])
    with (
        httpx2.Client(transport=transport, timeout=httpx2.Timeout(5.0, read=READ_TIMEOUT_S)) as c,
        pytest.raises(httpx2.ReadTimeout),
    ):
        c.post(url, json=BODY)
    return exchanges


async def _async_call(url: str) -> list[Exchange]:
    exchanges: list[Exchange] = []
    transport = AsyncInstrumentedTransport(contract=CONTRACT, sinks=[exchanges.append])
    timeout = httpx2.Timeout(5.0, read=READ_TIMEOUT_S)
    async with httpx2.AsyncClient(transport=transport, timeout=timeout) as client:
        with pytest.raises(httpx2.ReadTimeout):
            await client.post(url, json=BODY)
    return exchanges


@pytest.mark.anyio
@pytest.mark.parametrize(
    "flavor", [pytest.param("sync", id="sync"), pytest.param("async", id="async")]
)
@pytest.mark.parametrize(("sent", "status", "message"), STALLS)
async def test_a_read_timeout_says_how_far_the_answer_had_come(flavor, sent, status, message):
    with raw_server(_then_silent(sent)) as server:
        if flavor == "sync":
            exchanges = await asyncio.to_thread(_sync_call, server.url)
        else:
            exchanges = await _async_call(server.url)
    (exchange,) = exchanges
    failure = exchange.failure
    assert failure is not None
    assert (failure.kind, failure.category, failure.code) == (
        "transport",
        "timeout",
        "read_timeout",
    )
    assert failure.message == message
    # A first byte came back unless nothing was sent at all.
    assert (exchange.timings.ttfb_ms is not None) == bool(sent)
    if status is None:
        assert exchange.response is None
    else:
        assert exchange.response is not None
        assert exchange.response.status == status
        assert exchange.response.body_bytes == HALF
