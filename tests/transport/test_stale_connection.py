"""A pooled keep-alive connection the server dropped is replaced once, inside the transport:
the call is sent again on a new connection and still has one Exchange (not a policy attempt).

The server answers a 500 without ``Connection: close`` and drops the connection when the next
request arrives on it, before any byte of the answer (a close, or a TCP reset).
"""

from __future__ import annotations

import anyio
import httpx2
import pytest

from chatcontract import instrument
from chatcontract.contract import load_preset
from chatcontract.exchange import Exchange
from chatcontract.transport import AsyncInstrumentedTransport, InstrumentedTransport
from raw_servers import (
    COMPLETION,
    SERVER_ERROR,
    drops_reused_connections,
    raw_server,
    response,
)

CONTRACT = load_preset("cometapi")
BODY = {"model": "gpt-4.1-nano", "messages": [{"role": "user", "content": "hi"}]}
HOW = pytest.mark.parametrize("how", ["close", "reset"], ids=["closed", "reset"])


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@HOW
def test_a_dropped_keep_alive_is_resent_once_on_a_new_connection(how):
    exchanges: list[Exchange] = []
    handler = drops_reused_connections([response(500, SERVER_ERROR)], how=how)
    with raw_server(handler) as server:
        transport = InstrumentedTransport(contract=CONTRACT, sinks=[exchanges.append])
        with httpx2.Client(transport=transport, timeout=5.0) as client:
            first = client.post(server.url, json=BODY)
            second = client.post(server.url, json=BODY)
        assert (first.status_code, second.status_code) == (500, 200)
        assert server.connections == 2
        assert server.requests == 3  # the 500, the dropped request, the resent one
    assert [e.response.status if e.response else None for e in exchanges] == [500, 200]
    assert [e.stale_connection_replaced for e in exchanges] == [False, True]
    assert exchanges[1].ok
    assert exchanges[1].attempt == 1
    assert exchanges[1].to_dict()["stale_connection_replaced"] is True


def test_a_connection_dropped_on_its_first_request_is_not_resent():
    exchanges: list[Exchange] = []
    with raw_server(drops_reused_connections([], drop_first=True)) as server:
        transport = InstrumentedTransport(contract=CONTRACT, sinks=[exchanges.append])
        with (
            httpx2.Client(transport=transport, timeout=5.0) as client,
            # A clean close or a reset, by timing.
            pytest.raises((httpx2.RemoteProtocolError, httpx2.ReadError)),
        ):
            client.post(server.url, json=BODY)
        assert server.requests == 1
    [exchange] = exchanges
    assert exchange.failure is not None
    assert exchange.failure.kind == "transport"
    assert not exchange.stale_connection_replaced


def test_a_body_that_cannot_be_sent_twice_is_not_resent():
    exchanges: list[Exchange] = []
    handler = drops_reused_connections([response(500, SERVER_ERROR)])
    with raw_server(handler) as server:
        transport = InstrumentedTransport(contract=CONTRACT, sinks=[exchanges.append])
        with httpx2.Client(transport=transport, timeout=5.0) as client:
            client.post(server.url, json=BODY)

            def once():  # a generator body: gone once sent
                yield b'{"model":"gpt-4.1-nano","messages":[]}'

            # The dropped connection reads as a clean close or a reset, by timing.
            with pytest.raises((httpx2.RemoteProtocolError, httpx2.ReadError)):
                client.post(server.url, content=once())
        assert server.requests == 2
    assert exchanges[-1].failure is not None
    assert not exchanges[-1].stale_connection_replaced


def test_only_one_new_connection_is_tried():
    # Every reused connection is dropped and so is every new one's second request: the resent
    # request on the new connection succeeds, and nothing loops.
    exchanges: list[Exchange] = []
    answers = [response(500, SERVER_ERROR), response(200, COMPLETION), response(200, COMPLETION)]
    with raw_server(drops_reused_connections(answers)) as server:
        transport = InstrumentedTransport(contract=CONTRACT, sinks=[exchanges.append])
        with httpx2.Client(transport=transport, timeout=5.0) as client:
            statuses = [client.post(server.url, json=BODY).status_code for _ in range(3)]
        assert statuses == [500, 200, 200]
        assert server.connections == 3
        assert server.requests == 5
    assert [e.stale_connection_replaced for e in exchanges] == [False, True, True]


@pytest.mark.anyio
@HOW
async def test_the_async_transport_resends_a_dropped_keep_alive(how):
    exchanges: list[Exchange] = []
    handler = drops_reused_connections([response(500, SERVER_ERROR)], how=how)
    with raw_server(handler) as server:
        transport = AsyncInstrumentedTransport(contract=CONTRACT, sinks=[exchanges.append])
        async with httpx2.AsyncClient(transport=transport, timeout=5.0) as client:
            first = await client.post(server.url, json=BODY)
            second = await client.post(server.url, json=BODY)
        assert (first.status_code, second.status_code) == (500, 200)
        assert server.requests == 3
    assert [e.stale_connection_replaced for e in exchanges] == [False, True]
    await anyio.sleep(0)


def test_instrument_resends_a_dropped_keep_alive_with_one_exchange():
    exchanges: list[Exchange] = []
    handler = drops_reused_connections([response(500, SERVER_ERROR)])
    with raw_server(handler) as server:
        with instrument(contract=CONTRACT, sinks=[exchanges.append]) as client:
            statuses = [client.post(server.url, json=BODY).status_code for _ in range(2)]
        assert statuses == [500, 200]
        assert server.requests == 3
    assert [e.stale_connection_replaced for e in exchanges] == [False, True]


def test_validate_checks_resend_a_dropped_keep_alive_once():
    from dataclasses import replace

    from chatcontract.checks.context import CheckContext, SuiteOptions
    from chatcontract.target import Target

    handler = drops_reused_connections([response(500, SERVER_ERROR)])
    with raw_server(handler) as server:
        contract = replace(CONTRACT, endpoint=replace(CONTRACT.endpoint, base_url=server.base_url))
        target = Target(
            contract=contract, contract_path=None, secret="sk-raw-0001", secret_source="$X",
            model="gpt-4.1-nano", simulated=False,
        )  # fmt: skip
        ctx = CheckContext.open(target, SuiteOptions())
        try:
            first, second = ctx.send(), ctx.send()
        finally:
            ctx.close()
        assert server.requests == 3
    assert first.failure is not None
    assert first.failure.category == "upstream"
    assert second.ok
    assert second.stale_connection_replaced
    assert len(ctx.exchanges) == 2
