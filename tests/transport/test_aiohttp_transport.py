"""The aiohttp transport keeps httpx2's behaviour: same faults → same failure codes, the call
deadline at the socket, phase timings from aiohttp's trace hooks, streaming as bytes arrive,
no redirects, cookies or decompression of its own.

Every scenario runs against raw socket servers on 127.0.0.1 (``raw_servers``), bounded in time;
time bounds are the deadline plus a generous tolerance, far below what the server would take.
"""

from __future__ import annotations

import asyncio
import gzip
import shutil
import socket
import ssl
import subprocess
import threading
import time
from typing import Any

import aiohttp
import httpx2
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatcontract.contract import load_preset
from chatcontract.exchange import Exchange
from chatcontract.failures.transport_errors import classify_exception
from chatcontract.transport import AsyncInstrumentedTransport, install_backend
from chatcontract.transport._aiohttp import AiohttpTransport, _body_error, _Call, _head_error
from chatcontract.transport.instrumented import CallDeadlineError
from raw_servers import (
    COMPLETION,
    RawServer,
    dripping_head,
    drops_reused_connections,
    in_order,
    raw_server,
    read_request,
    reset,
    response,
    trickling_body,
)

CONTRACT = load_preset("cometapi")


@pytest.fixture(params=["auto", "trace"])
def hooks(request: pytest.FixtureRequest) -> str:
    """How the transport times a call's phases: the connector seam (``auto`` here, where it
    fits the installed aiohttp) or aiohttp's ``TraceConfig`` (its fallback): the same events,
    timings and failures either way."""
    return str(request.param)


BODY = {"model": "gpt-4.1-nano", "messages": [{"role": "user", "content": "hi"}]}
DEADLINE_S = 1.0
TOLERANCE_S = 1.5
SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
)


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def _event(index: int) -> bytes:
    return b'data: {"choices":[{"index":0,"delta":{"content":"t%d"}}]}\n\n' % index


# -- fault servers ------------------------------------------------------------------------------


def _after_request(act: Any) -> Any:
    async def handler(reader: Any, writer: Any, server: RawServer) -> None:
        if await read_request(reader, server) is None:
            return
        await act(writer)

    return handler


async def _reset_before_head(writer: Any) -> None:
    reset(writer)


async def _close_before_head(writer: Any) -> None:
    writer.close()


async def _cut_mid_body(writer: Any) -> None:
    writer.write(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n"
    )
    writer.write(b"{" * 50)
    await writer.drain()
    writer.close()


async def _cut_mid_stream(writer: Any) -> None:
    writer.write(SSE_HEAD + _chunk(_event(1)))
    await writer.drain()
    writer.close()


async def _reset_mid_body(writer: Any) -> None:
    writer.write(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n"
    )
    writer.write(b"{" * 50)
    await writer.drain()
    await asyncio.sleep(0.05)
    reset(writer)


async def _silent(writer: Any) -> None:
    await asyncio.sleep(10)


async def _bad_status_line(writer: Any) -> None:
    writer.write(b"HTTP/1.1 2xx WHAT\r\n\r\n")
    await writer.drain()
    await asyncio.sleep(1)


async def _not_http(writer: Any) -> None:
    writer.write(b"SSH-2.0-OpenSSH_9.6\r\n\r\n")
    await writer.drain()
    await asyncio.sleep(1)


async def _plain_answer_to_tls(reader: Any, writer: Any, server: RawServer) -> None:
    writer.write(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
    await writer.drain()
    await asyncio.sleep(1)


def _httpx2_transport() -> httpx2.AsyncHTTPTransport:
    """httpx2's transport as chatcontract uses it (the timed backend keeps the deadline)."""
    transport = httpx2.AsyncHTTPTransport()
    assert install_backend(transport, is_async=True)
    return transport


def _refused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _exchange_of(
    inner: httpx2.AsyncBaseTransport, url: str, *, read_s: float = 5.0, stream: bool = False
) -> tuple[Exchange, BaseException | None]:
    exchanges: list[Exchange] = []
    transport = AsyncInstrumentedTransport(contract=CONTRACT, sinks=[exchanges.append], inner=inner)
    error: BaseException | None = None
    async with httpx2.AsyncClient(
        transport=transport, timeout=httpx2.Timeout(5.0, read=read_s)
    ) as client:
        try:
            async with client.stream("POST", url, json={**BODY, "stream": stream}) as answer:
                async for _ in answer.aiter_raw():
                    pass
        except httpx2.TransportError as exc:
            error = exc
    [exchange] = exchanges
    return exchange, error


FAULTS = [
    pytest.param(None, "connect_refused", {}, id="connection-refused"),
    pytest.param(_after_request(_reset_before_head), "reset", {}, id="reset-before-head"),
    pytest.param(_after_request(_close_before_head), "reset", {}, id="closed-before-head"),
    pytest.param(_after_request(_cut_mid_body), "incomplete_body", {}, id="cut-mid-body"),
    pytest.param(
        _after_request(_cut_mid_stream),
        "incomplete_body",
        {"stream": True, "exchange_code": "stream_dropped"},
        id="cut-mid-stream",
    ),
    pytest.param(_after_request(_reset_mid_body), "reset", {}, id="reset-mid-body"),
    pytest.param(_after_request(_silent), "read_timeout", {"read_s": 0.3}, id="silent-peer"),
    pytest.param(_after_request(_bad_status_line), "protocol", {}, id="bad-status-line"),
    pytest.param(_after_request(_not_http), "protocol", {}, id="not-http"),
    pytest.param(_plain_answer_to_tls, "tls", {"https": True}, id="tls-to-a-plain-server"),
]


@pytest.mark.parametrize(("handler", "code", "options"), FAULTS)
def test_a_fault_gets_the_same_failure_code_as_on_httpx2s_transport(handler, code, options, hooks):
    options = dict(options)
    https = options.pop("https", False)
    exchange_code = options.pop("exchange_code", code)  # a cut stream is one to the Exchange

    async def both(url: str) -> list[tuple[str | None, str | None]]:
        found = []
        for inner in (_httpx2_transport(), AiohttpTransport(hooks=hooks)):
            exchange, error = await _exchange_of(inner, url, **options)
            await inner.aclose()
            assert error is not None, type(inner).__name__
            assert exchange.failure is not None
            found.append((exchange.failure.code, classify_exception(error).code))
        return found

    if handler is None:
        found = asyncio.run(both(f"http://127.0.0.1:{_refused_port()}/v1/chat/completions"))
    else:
        with raw_server(handler) as server:
            url = server.url.replace("http://", "https://") if https else server.url
            found = asyncio.run(both(url))
    assert found == [(exchange_code, code), (exchange_code, code)]


# -- the error mapping, case by case ------------------------------------------------------------

_REQUEST = httpx2.Request("POST", "http://upstream.test/v1/chat/completions")


def _call(*, sent: bool = True, queued: bool = False, connected: bool = True) -> _Call:
    call = _Call(None, None, None, https=False)
    call.sent, call.queued, call.connected = sent, queued, connected
    return call


def _connector_error(os_error: OSError, cls: type = aiohttp.ClientConnectorError) -> Exception:
    key = aiohttp.client_reqrep.ConnectionKey("upstream.test", 443, True, True, None, None, None)
    return cls(key, os_error)  # type: ignore[no-any-return]


HEAD_ERRORS = [
    pytest.param(
        _connector_error(ConnectionRefusedError(111, "Connect call failed")),
        {},
        "connect_refused",
        id="refused",
    ),
    pytest.param(
        _connector_error(OSError(-2, "Name or service not known"), aiohttp.ClientConnectorDNSError),
        {},
        "dns",
        id="dns",
    ),
    pytest.param(
        _connector_error(OSError(101, "Network is unreachable")),
        {},
        "network_unreachable",
        id="unreachable",
    ),
    pytest.param(aiohttp.ConnectionTimeoutError("t"), {}, "connect_timeout", id="connect-timeout"),
    pytest.param(
        aiohttp.ConnectionTimeoutError("t"), {"queued": True}, "pool_timeout", id="pool-timeout"
    ),
    pytest.param(aiohttp.SocketTimeoutError("t"), {}, "read_timeout", id="read-timeout"),
    pytest.param(aiohttp.ServerDisconnectedError(), {}, "reset", id="disconnected"),
    pytest.param(
        aiohttp.ClientOSError(104, "Connection reset by peer"), {}, "reset", id="reset-after-send"
    ),
    pytest.param(
        aiohttp.ClientOSError(32, "Broken pipe"), {"sent": False}, "write_error", id="broken-pipe"
    ),
    pytest.param(
        aiohttp.ClientResponseError(
            aiohttp.RequestInfo(_REQUEST.url, "POST", {}, _REQUEST.url),  # type: ignore[arg-type]
            (),
            status=400,
            message="Bad status line 'x'",
        ),
        {},
        "protocol",
        id="bad-head",
    ),
    pytest.param(ValueError("newline in header"), {}, "protocol", id="unsendable-header"),
]


@pytest.mark.parametrize(("exc", "state", "code"), HEAD_ERRORS)
def test_an_aiohttp_error_before_the_head_maps_to_httpx2s_class(exc, state, code):
    mapped = _head_error(exc, _call(**state), _REQUEST, timed_out=False)
    assert isinstance(mapped, httpx2.TransportError)
    assert mapped.request is _REQUEST
    assert classify_exception(mapped).code == code


@pytest.mark.parametrize(
    ("state", "error", "code"),
    [
        ({"queued": True}, httpx2.PoolTimeout, "pool_timeout"),
        ({"connected": False, "sent": False}, httpx2.ConnectTimeout, "connect_timeout"),
        ({}, httpx2.ReadTimeout, "read_timeout"),
    ],
    ids=["waiting-for-the-pool", "connecting", "waiting-for-the-head"],
)
def test_our_own_timer_firing_names_the_phase_it_cut(state, error, code):
    mapped = _head_error(TimeoutError(), _call(**state), _REQUEST, timed_out=True)
    assert type(mapped) is error
    assert classify_exception(mapped).code == code


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (aiohttp.SocketTimeoutError("t"), "read_timeout"),
        (
            aiohttp.ClientPayloadError(
                "Response payload is not completed: <ContentLengthError: 400, "
                "message='Not enough data to satisfy content length header.'>"
            ),
            "incomplete_body",
        ),
        (
            aiohttp.ClientPayloadError(
                "Response payload is not completed: <TransferEncodingError: 400, "
                "message='Not enough data to satisfy transfer length header.'>. "
                "ConnectionResetError(104, 'Connection reset by peer')"
            ),
            "reset",
        ),
        (aiohttp.ClientPayloadError("Response payload: bad chunk size"), "protocol"),
        (aiohttp.ServerDisconnectedError(), "incomplete_body"),
        (aiohttp.ClientOSError(104, "Connection reset by peer"), "reset"),
    ],
    ids=["silence", "cut-short", "reset-in-a-chunk", "bad-chunk", "disconnected", "reset"],
)
def test_an_aiohttp_error_in_the_body_maps_to_httpx2s_class(exc, code):
    assert classify_exception(_body_error(exc, _REQUEST)).code == code


# -- the call deadline at the socket ------------------------------------------------------------


@pytest.mark.parametrize(
    ("handler", "code"),
    [
        (dripping_head(0.1), "deadline"),
        (trickling_body(0.1), "deadline"),
        # A stream that trickles comments past the deadline: the deadline ran out, on both
        # (named for it, as a head or a body cut by it is, not for an idle limit).
        (trickling_body(0.1, content_type="text/event-stream"), "deadline"),
    ],
    ids=["head-dripped-byte-by-byte", "body-trickled", "stream-trickled"],
)
def test_the_call_deadline_ends_a_dripping_response_as_on_httpx2s_transport(handler, code, hooks):
    async def call(url: str, inner: httpx2.AsyncBaseTransport) -> tuple[float, Exchange]:
        exchanges: list[Exchange] = []
        transport = AsyncInstrumentedTransport(
            contract=CONTRACT, sinks=[exchanges.append], inner=inner, total_timeout=DEADLINE_S
        )
        started = time.monotonic()
        async with httpx2.AsyncClient(transport=transport, timeout=10.0) as client:
            with pytest.raises(CallDeadlineError) as caught:
                await client.post(url, json=BODY)
        assert isinstance(caught.value, httpx2.ReadTimeout)
        return time.monotonic() - started, exchanges[0]

    found = []
    with raw_server(handler) as server:
        for inner in (_httpx2_transport(), AiohttpTransport(hooks=hooks)):
            elapsed, exchange = asyncio.run(call(server.url, inner))
            assert elapsed < DEADLINE_S + TOLERANCE_S, type(inner).__name__
            assert exchange.failure is not None
            found.append((exchange.failure.category, exchange.failure.code))
    assert found == [("timeout", code)] * 2


def test_without_a_deadline_the_read_timeout_bounds_each_silent_gap():
    async def call(url: str) -> BaseException | None:
        _, error = await _exchange_of(AiohttpTransport(), url, read_s=0.3)
        return error

    with raw_server(_after_request(_silent)) as server:
        started = time.monotonic()
        error = asyncio.run(call(server.url))
    assert isinstance(error, httpx2.ReadTimeout)
    assert time.monotonic() - started < 0.3 + TOLERANCE_S


def test_a_request_waiting_for_a_full_pool_gets_a_pool_timeout(hooks):
    async def call(url: str) -> BaseException:
        transport = AiohttpTransport(hooks=hooks, limits=httpx2.Limits(max_connections=1))
        async with (
            httpx2.AsyncClient(
                transport=transport, timeout=httpx2.Timeout(5.0, pool=0.2)
            ) as client,
            client.stream("POST", url, json=BODY),
        ):  # holds the one connection
            with pytest.raises(httpx2.PoolTimeout) as caught:
                await client.post(url, json=BODY)
        return caught.value

    with raw_server(trickling_body(0.05)) as server:
        error = asyncio.run(call(server.url))
    assert classify_exception(error).code == "pool_timeout"


def test_a_request_that_waited_for_the_pool_is_then_bounded_by_its_deadline_not_the_pool(hooks):
    """The pool timeout bounds the wait for a free connection only: once the request has
    one, a head slower than the pool timeout is no pool timeout."""
    trickle = trickling_body(0.05)

    async def handler(reader: Any, writer: Any, server: RawServer) -> None:
        if server.requests == 0:  # the first request holds the one connection
            await trickle(reader, writer, server)
            return
        while await read_request(reader, server) is not None:  # then: a head that comes late
            await asyncio.sleep(0.6)
            writer.write(response(200, COMPLETION))
            await writer.drain()

    async def call(url: str) -> int:
        transport = AiohttpTransport(hooks=hooks, limits=httpx2.Limits(max_connections=1))
        async with httpx2.AsyncClient(
            transport=transport, timeout=httpx2.Timeout(5.0, pool=0.4)
        ) as client:
            async with client.stream("POST", url, json=BODY):  # holds the one connection
                waiting = asyncio.ensure_future(client.post(url, json=BODY))
                await asyncio.sleep(0.2)  # the second request waits for it meanwhile
            return (await waiting).status_code

    with raw_server(handler) as server:
        assert asyncio.run(call(server.url)) == 200


# -- streaming, phase timings, keep-alive -------------------------------------------------------


def test_a_stream_is_handed_on_as_it_arrives_not_buffered():
    release = threading.Event()

    async def handler(reader: Any, writer: Any, server: RawServer) -> None:
        if await read_request(reader, server) is None:
            return
        writer.write(SSE_HEAD + _chunk(_event(1)))
        await writer.drain()
        # The rest only once the client has read the first event: a buffering transport
        # would hand over nothing until then, and the test would see the events together.
        await asyncio.to_thread(release.wait, 5)
        writer.write(_chunk(_event(2)) + _chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")
        await writer.drain()

    async def call(url: str) -> list[bytes]:
        pieces: list[bytes] = []
        async with (
            httpx2.AsyncClient(transport=AiohttpTransport(), timeout=10.0) as client,
            client.stream("POST", url, json=BODY) as answer,
        ):
            async for piece in answer.aiter_raw():
                pieces.append(piece)
                release.set()
        return pieces

    with raw_server(handler) as server:
        pieces = asyncio.run(call(server.url))
    assert pieces[0] == _event(1)
    assert b"".join(pieces) == _event(1) + _event(2) + b"data: [DONE]\n\n"


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.binary(min_size=1, max_size=300), min_size=1, max_size=8))
def test_a_body_arrives_byte_for_byte_however_the_upstream_splits_it(pieces):
    async def handler(reader: Any, writer: Any, server: RawServer) -> None:
        while await read_request(reader, server) is not None:
            writer.write(SSE_HEAD)
            for piece in pieces:
                writer.write(_chunk(piece))
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()

    async def call(url: str) -> list[bytes]:
        bodies = []
        for inner in (httpx2.AsyncHTTPTransport(), AiohttpTransport()):
            async with (
                httpx2.AsyncClient(transport=inner, timeout=5.0) as client,
                client.stream("POST", url, json=BODY) as answer,
            ):
                bodies.append(b"".join([piece async for piece in answer.aiter_raw()]))
        return bodies

    with raw_server(handler) as server:
        bodies = asyncio.run(call(server.url))
    assert bodies == [b"".join(pieces)] * 2


def test_every_trace_hook_fires_and_feeds_the_exchange_timings(hooks):
    events: list[str] = []

    async def trace(name: str, info: dict[str, Any]) -> None:
        events.append(name)

    async def call(url: str) -> list[Exchange]:
        exchanges: list[Exchange] = []
        transport = AsyncInstrumentedTransport(
            contract=CONTRACT, sinks=[exchanges.append], inner=AiohttpTransport(hooks=hooks)
        )
        async with httpx2.AsyncClient(transport=transport, timeout=5.0) as client:
            for _ in range(2):
                answer = await client.post(url, json=BODY, extensions={"trace": trace})
                assert answer.status_code == 200
                events.append("--")
        return exchanges

    with raw_server(in_order([response(200, COMPLETION)])) as server:
        # "localhost": a name to look up, so the DNS hooks fire too.
        first, second = asyncio.run(call(server.url.replace("127.0.0.1", "localhost")))
    new_connection = [
        "connection.connect_tcp.started",
        "connection.connect_tcp.complete",
        "http11.send_request_headers.started",
        "http11.receive_response_headers.started",
        "http11.receive_response_headers.complete",
    ]
    reused = new_connection[2:]
    assert events == [*new_connection, "--", *reused, "--"]
    assert first.timings.dns_ms is not None
    assert first.timings.connect_ms is not None
    assert first.timings.ttfb_ms is not None
    assert first.timings.tls_ms is None  # never a guess
    assert second.timings.connect_ms is None and second.timings.dns_ms is None
    assert second.timings.ttfb_ms is not None


@pytest.mark.parametrize("how", ["close", "reset"], ids=["closed", "reset"])
def test_a_dropped_keep_alive_is_resent_once_on_a_new_connection(how, hooks):
    exchanges: list[Exchange] = []

    async def call(url: str) -> list[int]:
        transport = AsyncInstrumentedTransport(
            contract=CONTRACT, sinks=[exchanges.append], inner=AiohttpTransport(hooks=hooks)
        )
        async with httpx2.AsyncClient(transport=transport, timeout=5.0) as client:
            return [(await client.post(url, json=BODY)).status_code for _ in range(2)]

    handler = drops_reused_connections([response(200, COMPLETION)], how=how)
    with raw_server(handler) as server:
        assert asyncio.run(call(server.url)) == [200, 200]
        assert (server.connections, server.requests) == (2, 3)
    assert [e.stale_connection_replaced for e in exchanges] == [False, True]


def test_a_connection_dropped_on_its_first_request_is_not_resent(hooks):
    async def call(url: str) -> BaseException | None:
        exchange, error = await _exchange_of(AiohttpTransport(hooks=hooks), url)
        assert not exchange.stale_connection_replaced
        return error

    handler = drops_reused_connections([], drop_first=True)
    with raw_server(handler) as server:
        assert isinstance(asyncio.run(call(server.url)), httpx2.RemoteProtocolError)
        assert server.requests == 1


# -- what goes out and what comes back unchanged ------------------------------------------------


def _recording(answer: bytes) -> Any:
    async def handler(reader: Any, writer: Any, server: RawServer) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return
            server.state.setdefault("heads", []).append(head)
            length = next(
                (int(line.split(b":")[1]) for line in head.split(b"\r\n")
                 if line.lower().startswith(b"content-length:")),
                0,
            )  # fmt: skip
            await reader.readexactly(length)
            writer.write(answer)
            await writer.drain()

    return handler


def test_redirects_cookies_and_encodings_are_left_to_the_caller():
    packed = gzip.compress(COMPLETION)
    answer = response(
        302,
        packed,
        headers={"location": "/elsewhere", "set-cookie": "s=1", "content-encoding": "gzip"},
    )

    async def call(url: str) -> list[bytes]:
        transport = AiohttpTransport()
        bodies = []
        for _ in range(2):  # the transport alone: httpx2's client keeps its own cookie jar
            request = httpx2.Request(
                "POST", url, json=BODY, headers={"user-agent": "ua/1", "accept-encoding": "gzip"}
            )
            answer = await transport.handle_async_request(request)
            assert answer.status_code == 302  # not followed
            bodies.append(b"".join([piece async for piece in answer.stream]))  # type: ignore[union-attr]
            await answer.aclose()
        await transport.aclose()
        return bodies

    with raw_server(_recording(answer)) as server:
        bodies = asyncio.run(call(server.url))
        heads = server.state["heads"]
    assert bodies == [packed, packed]  # as the wire brought it: httpx2 decodes, if asked
    assert len(heads) == 2
    second = heads[1].lower()
    assert b"cookie:" not in second
    # Only the httpx2 request's headers go out: none of aiohttp's defaults.
    assert b"aiohttp" not in second
    assert b"user-agent: ua/1\r\n" in second
    assert b"accept-encoding: gzip\r\n" in second
    assert b"\r\naccept:" not in second


@pytest.mark.parametrize(
    ("verify", "mode", "check_hostname"),
    [(True, ssl.CERT_REQUIRED, True), (False, ssl.CERT_NONE, False)],
    ids=["verified-by-default", "verify-off"],
)
def test_tls_verification_follows_httpx2s_default(verify, mode, check_hostname):
    context = AiohttpTransport(verify=verify)._ssl
    assert (context.verify_mode, context.check_hostname) == (mode, check_hostname)


def test_the_session_is_made_in_the_running_loop_and_closed_by_aclose():
    transport = AiohttpTransport()

    async def use(url: str) -> aiohttp.ClientSession:
        async with httpx2.AsyncClient(transport=transport, timeout=5.0) as client:
            assert (await client.post(url, json=BODY)).status_code == 200
            session = transport._session
            assert session is not None and not session.closed
        return session

    with raw_server(in_order([response(200, COMPLETION)])) as server:
        assert transport._session is None  # nothing is made before the first request
        first = asyncio.run(use(server.url))
        assert first.closed  # the client's aclose closed the transport's session
        second = asyncio.run(use(server.url))  # a new loop: a new session there
    assert second is not first and second.closed


def test_a_streamed_request_body_goes_out_chunked_once():
    async def handler(reader: Any, writer: Any, server: RawServer) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        body = b""
        while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
            body += (await reader.readexactly(size + 2))[:-2]
        await reader.readexactly(2)
        server.state.update(head=head.lower(), body=body)
        writer.write(response(200, COMPLETION))
        await writer.drain()

    async def parts() -> Any:
        yield b'{"model":'
        yield b'"m"}'

    async def call(url: str) -> int:
        async with httpx2.AsyncClient(transport=AiohttpTransport(), timeout=5.0) as client:
            return (await client.post(url, content=parts())).status_code

    with raw_server(handler) as server:
        assert asyncio.run(call(server.url)) == 200
    assert server.state["body"] == b'{"model":"m"}'
    assert server.state["head"].count(b"transfer-encoding: chunked") == 1


# -- TLS ----------------------------------------------------------------------------------------


class _TLSServer(RawServer):
    """``RawServer`` speaking TLS with a self-signed certificate for 127.0.0.1."""

    def __init__(self, handler: Any, context: ssl.SSLContext) -> None:
        super().__init__(handler)
        self._context = context

    async def _open(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self._context)
        self.port = self._server.sockets[0].getsockname()[1]


@pytest.fixture
def self_signed(tmp_path) -> tuple[ssl.SSLContext, str]:
    """A server context with a self-signed certificate for 127.0.0.1, and the cert's path."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
         "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True, timeout=60,
    )  # fmt: skip
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    return context, str(cert)


def test_an_unknown_certificate_fails_as_tls_on_both_transports(self_signed, hooks):
    context, _ = self_signed

    async def codes(url: str) -> list[str | None]:
        found = []
        for inner in (_httpx2_transport(), AiohttpTransport(hooks=hooks)):  # both verify by default
            exchange, error = await _exchange_of(inner, url)
            await inner.aclose()
            assert isinstance(error, httpx2.ConnectError)
            assert exchange.failure is not None
            found.append(exchange.failure.code)
        return found

    with _TLSServer(in_order([response(200, COMPLETION)]), context) as server:
        url = server.url.replace("http://", "https://")
        assert asyncio.run(codes(url)) == ["tls", "tls"]


def test_https_reports_no_connect_or_tls_split_rather_than_a_wrong_one(self_signed, hooks):
    context, cert = self_signed

    async def call(url: str) -> Exchange:
        trusted = ssl.create_default_context(cafile=cert)
        exchange, error = await _exchange_of(AiohttpTransport(verify=trusted, hooks=hooks), url)
        assert error is None
        return exchange

    with _TLSServer(in_order([response(200, COMPLETION)]), context) as server:
        exchange = asyncio.run(call(server.url.replace("http://", "https://")))
    assert exchange.failure is None
    assert (exchange.timings.connect_ms, exchange.timings.tls_ms) == (None, None)
    assert exchange.timings.ttfb_ms is not None


def test_without_a_trace_of_its_own_the_call_clock_gets_the_phases_directly(hooks):
    async def call(url: str) -> list[Exchange]:
        exchanges: list[Exchange] = []
        transport = AsyncInstrumentedTransport(
            contract=CONTRACT, sinks=[exchanges.append], inner=AiohttpTransport(hooks=hooks)
        )
        async with httpx2.AsyncClient(transport=transport, timeout=5.0) as client:
            for _ in range(2):
                answer = await client.post(url, json=BODY)
                assert answer.status_code == 200
        return exchanges

    with raw_server(in_order([response(200, COMPLETION)])) as server:
        first, second = asyncio.run(call(server.url.replace("127.0.0.1", "localhost")))
    assert first.timings.dns_ms is not None
    assert first.timings.connect_ms is not None
    assert first.timings.ttfb_ms is not None
    assert first.timings.tls_ms is None
    assert second.timings.connect_ms is None and second.timings.dns_ms is None
    assert second.timings.ttfb_ms is not None


def test_only_the_clocks_own_trace_is_fed_directly():
    from chatcontract.transport._timing import PhaseClock

    clock = PhaseClock()

    async def other(name: str, info: dict[str, Any]) -> None:
        pass

    assert _Call(clock.atrace, clock, None, False).direct
    assert not _Call(other, clock, None, False).direct
    assert not _Call(None, clock, None, False).direct
    assert not _Call(clock.atrace, None, None, False).direct


def test_the_aiohttp_internals_the_body_turns_the_read_timeout_off_with_are_there():
    """``_Body`` turns aiohttp's ``sock_read`` off while a first-token or idle limit bounds
    the wait, through ``ResponseHandler.read_timeout`` and ``start_timeout()``: not documented
    API. Without them the read timeout stays on (every gap cut at ``stream_read_ms``): an
    upgrade that moves them fails here first."""
    from aiohttp.client_proto import ResponseHandler

    from chatcontract.transport._aiohttp import _has_read_timeout

    assert isinstance(getattr(ResponseHandler, "read_timeout", None), property), (
        f"aiohttp {aiohttp.__version__}: ResponseHandler.read_timeout is gone"
    )
    assert callable(getattr(ResponseHandler, "start_timeout", None))
    loop = asyncio.new_event_loop()
    try:
        assert _has_read_timeout(ResponseHandler(loop))
    finally:
        loop.close()
    assert not _has_read_timeout(object())
