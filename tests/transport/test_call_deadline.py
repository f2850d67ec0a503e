"""The call deadline holds at the socket: a response head dripped one byte at a time, or a
body trickled byte by byte, cannot outlive it (httpx2's read timeout bounds one silent gap
only, and every byte resets it).

Timings are behaviour, not benchmarks: each bound is the deadline plus a generous tolerance,
far below what the server would take if the deadline did not fire (tens of seconds).
"""

from __future__ import annotations

import time

import anyio
import httpx2
import pytest

from chatcontract.contract import load_preset
from chatcontract.exchange import Exchange
from chatcontract.transport import AsyncInstrumentedTransport, InstrumentedTransport
from chatcontract.transport.instrumented import CallDeadlineError
from raw_servers import dripping_head, raw_server, trickling_body

CONTRACT = load_preset("cometapi")
BODY = {"model": "gpt-4.1-nano", "messages": [{"role": "user", "content": "hi"}]}
#: Each silent gap may last this long: far longer than the server's pauses.
READ_TIMEOUT = httpx2.Timeout(10.0)
DEADLINE_S = 1.0
TOLERANCE_S = 1.5


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _timed_post(transport: InstrumentedTransport, url: str, **extensions: object) -> float:
    started = time.monotonic()
    with (
        httpx2.Client(transport=transport, timeout=READ_TIMEOUT) as client,
        pytest.raises(CallDeadlineError) as caught,
    ):
        client.post(url, json=BODY, extensions=extensions or None)
    # What httpx2 and the openai SDK catch: a timeout of the request that was sent.
    assert isinstance(caught.value, httpx2.ReadTimeout)
    assert caught.value.request.url == url
    return time.monotonic() - started


@pytest.mark.parametrize(
    ("handler", "what"),
    [(dripping_head(0.1), "head"), (trickling_body(0.1), "body")],
    ids=["dripped-head", "trickled-body"],
)
def test_the_transport_total_timeout_ends_a_dripping_response(handler, what):
    exchanges: list[Exchange] = []
    with raw_server(handler) as server:
        transport = InstrumentedTransport(
            contract=CONTRACT, sinks=[exchanges.append], total_timeout=DEADLINE_S
        )
        elapsed = _timed_post(transport, server.url)
    assert elapsed < DEADLINE_S + TOLERANCE_S, what
    [exchange] = exchanges
    assert exchange.failure is not None
    failure = exchange.failure
    assert (failure.kind, failure.category, failure.code) == ("transport", "timeout", "deadline")


def test_a_request_deadline_overrides_the_transport_total_timeout():
    exchanges: list[Exchange] = []
    with raw_server(dripping_head(0.1)) as server:
        transport = InstrumentedTransport(
            contract=CONTRACT, sinks=[exchanges.append], total_timeout=60.0
        )
        elapsed = _timed_post(transport, server.url, chatcontract={"deadline_s": DEADLINE_S})
    assert elapsed < DEADLINE_S + TOLERANCE_S
    assert exchanges[0].failure is not None
    assert exchanges[0].failure.category == "timeout"


def test_a_body_with_long_pauses_ends_at_the_deadline_not_at_the_next_byte():
    # One byte every 3 s: without the socket-level cut, the deadline could only be noticed
    # when the next byte arrives (3 s), i.e. 2 s late.
    with raw_server(trickling_body(3.0)) as server:
        transport = InstrumentedTransport(contract=CONTRACT, total_timeout=DEADLINE_S)
        elapsed = _timed_post(transport, server.url)
    assert elapsed < DEADLINE_S + 1.0


def test_without_a_deadline_the_per_gap_timeouts_still_apply():
    # The dripped head keeps each gap short: only a deadline can end it. A short read timeout
    # against a silent body shows httpx2's own timeouts are untouched.
    with raw_server(trickling_body(3.0)) as server:
        transport = InstrumentedTransport(contract=CONTRACT)
        started = time.monotonic()
        with (
            httpx2.Client(transport=transport, timeout=httpx2.Timeout(0.5)) as client,
            pytest.raises(httpx2.ReadTimeout),
        ):
            client.post(server.url, json=BODY)
        assert time.monotonic() - started < 0.5 + TOLERANCE_S


@pytest.mark.anyio
@pytest.mark.parametrize(
    "handler",
    [dripping_head(0.1), trickling_body(0.1)],
    ids=["dripped-head", "trickled-body"],
)
async def test_the_async_transport_total_timeout_ends_a_dripping_response(handler):
    exchanges: list[Exchange] = []
    with raw_server(handler) as server:
        transport = AsyncInstrumentedTransport(
            contract=CONTRACT, sinks=[exchanges.append], total_timeout=DEADLINE_S
        )
        started = anyio.current_time()
        async with httpx2.AsyncClient(transport=transport, timeout=READ_TIMEOUT) as client:
            with pytest.raises(CallDeadlineError):
                await client.post(server.url, json=BODY)
        elapsed = anyio.current_time() - started
    assert elapsed < DEADLINE_S + TOLERANCE_S
    [exchange] = exchanges
    assert exchange.failure is not None
    assert (exchange.failure.category, exchange.failure.code) == ("timeout", "deadline")


@pytest.mark.parametrize("value", [0, -1.0], ids=["zero", "negative"])
def test_a_total_timeout_must_be_positive(value):
    with pytest.raises(ValueError, match="total_timeout"):
        InstrumentedTransport(contract=CONTRACT, total_timeout=value)
