"""A client that sends its request slowly, never finishes it, or sends an endless header does not
hold the gateway: the head has a deadline and a size limit, the body a deadline
(``gateway._guard``), each answered OpenAI-shaped and the connection closed. Served with
``httptools`` (the ``gateway`` extra) and with the ``h11`` fallback."""

from __future__ import annotations

import asyncio
import collections
import importlib.util
import json
import logging
import socket
import time
from typing import Any

import h11
import pytest
import uvicorn
from gateway_helpers import FULL, PROMPT, contract_for, env_for, error_of, raw_request
from uvicorn.server import ServerState

from chatcontract import _http_guard
from chatcontract.gateway import _guard, app, server
from raw_servers import read_to_close

CHAT = "/v1/chat/completions"
BODY = json.dumps({"model": "gpt-4.1-nano", "messages": PROMPT}).encode()
STREAM_BODY = json.dumps({"model": "gpt-4.1-nano", "messages": PROMPT, "stream": True}).encode()
HEAD = (
    b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
    b"content-length: %d\r\n\r\n" % len(BODY)
)
STREAM_HEAD = HEAD.replace(b"%d" % len(BODY), b"%d" % len(STREAM_BODY))
DEADLINE_S = 0.5
PARSERS = ["httptools", "h11"]


def _force(monkeypatch: pytest.MonkeyPatch, parser: str) -> None:
    """Make ``server.http_parser()`` choose ``parser`` (h11: as if httptools were missing)."""
    if parser == "h11":
        real = importlib.util.find_spec
        monkeypatch.setattr(
            importlib.util,
            "find_spec",
            lambda name, *a: None if name == "httptools" else real(name, *a),
        )
    assert server.http_parser() == parser


@pytest.fixture(params=PARSERS)
def parser(request, monkeypatch) -> str:
    _force(monkeypatch, request.param)
    return str(request.param)


@pytest.fixture
def deadlines(monkeypatch):
    monkeypatch.setattr(_guard, "HEAD_TIMEOUT_S", DEADLINE_S)
    monkeypatch.setattr(_guard, "BODY_TIMEOUT_S", DEADLINE_S)


@pytest.fixture
def served(gateway, sims, parser, deadlines):
    sim = sims()
    return gateway(contract_for(sim.base_url), env_for(sim.api_key))


def _connect(served) -> socket.socket:
    sock = socket.create_connection((served.host, served.port), timeout=10)
    sock.settimeout(10)
    return sock


def _status_and_error(data: bytes) -> tuple[int, dict]:
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"x-chatcontract-attempts: 0" in head
    return int(head.split()[1]), error_of(body)


def _read_response(sock: socket.socket, buffer: bytes = b"") -> tuple[bytes, bytes, bytes]:
    """One response off a kept-alive connection (content-length or chunked): its head, its
    body (chunked: de-chunked), and the bytes read past it."""
    data = buffer
    for _ in range(100_000):  # bounded: the recv timeout stops a stuck read
        head, sep, rest = data.partition(b"\r\n\r\n")
        if sep:
            length = _length(head)
            if length is not None and len(rest) >= length:
                return head, rest[:length], rest[length:]
            if length is None and b"0\r\n\r\n" in rest:
                body, after = _dechunk(rest)
                if body is not None:
                    return head, body, after
        piece = sock.recv(65536)
        assert piece, f"the connection closed mid-response: {data[-300:]!r}"
        data += piece
    raise AssertionError("no whole response")


def _length(head: bytes) -> int | None:
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":")[1])
    return None


def _dechunk(data: bytes) -> tuple[bytes | None, bytes]:
    body = b""
    while True:
        size_line, sep, rest = data.partition(b"\r\n")
        if not sep:
            return None, b""
        size = int(size_line, 16)
        if len(rest) < size + 2:
            return None, b""
        if size == 0:
            return body, rest[2:]
        body += rest[:size]
        data = rest[size + 2 :]


def _streamed_text(body: bytes) -> str:
    text = ""
    for line in body.split(b"\n"):
        if line.startswith(b"data: {"):
            for choice in json.loads(line[6:])["choices"]:
                text += choice.get("delta", {}).get("content") or ""
    return text


def _state_stub():
    from chatcontract.gateway import GatewayState

    return GatewayState(contract_for("http://127.0.0.1:9/v1"), environ=env_for("sk-x"))


# -- the server --------------------------------------------------------------------------


def test_the_server_bounds_requests_with_either_parser(monkeypatch):
    state = _state_stub()
    config = server.server_config(app.create_app(state))
    assert issubclass(config.http, _guard.GuardedHttpToolsProtocol)
    assert config.http.max_connections == state.max_connections
    _force(monkeypatch, "h11")
    config = server.server_config(app.create_app(_state_stub()))
    assert issubclass(config.http, _guard.GuardedH11Protocol)
    assert config.http.max_connections == state.max_connections


# -- connections at once -------------------------------------------------------------------


def test_a_connection_over_the_cap_gets_an_openai_shaped_503_and_the_others_go_on(
    gateway, sims, parser
):
    sim = sims()
    capped = gateway(contract_for(sim.base_url), env_for(sim.api_key), max_connections=2)
    held = [_connect(capped), _connect(capped)]  # accepted in order: these two are in
    extra = _connect(capped)
    data = read_to_close(extra)
    status, error = _status_and_error(data)
    assert status == 503, data
    assert (error["type"], error["code"]) == ("service_unavailable_error", "too_many_connections")
    assert "at most 2 connections" in error["message"] and "--max-connections" in error["message"]
    assert b"connection: close" in data
    held[0].sendall(HEAD + BODY)  # a held connection is served as usual
    head, _, _ = _read_response(held[0])
    assert head.startswith(b"HTTP/1.1 200"), head
    for sock in held:
        sock.close()


def test_the_app_itself_has_no_body_deadline():
    # one timer per connection in the protocol; no asyncio.timeout per request in the app
    assert not hasattr(app, "BODY_TIMEOUT_S")


# -- slow and endless requests -----------------------------------------------------------


def test_a_head_that_never_ends_gets_408_and_the_connection_closed(served):
    sock = _connect(served)
    sock.sendall(HEAD[:30])  # a part of the head, then silence
    started = time.monotonic()
    status, error = _status_and_error(read_to_close(sock))
    assert status == 408 and error["type"] == "request_timeout_error"
    assert error["code"] == "request_timeout" and "head" in error["message"]
    assert DEADLINE_S * 0.9 < time.monotonic() - started < 5


def test_a_head_dripped_a_byte_at_a_time_past_the_deadline_gets_408(served):
    sock = _connect(served)
    started = time.monotonic()
    for byte in HEAD[:-4]:  # bounded: one pass over the head, stopped at the answer
        try:
            sock.sendall(bytes([byte]))
        except OSError:
            break
        time.sleep(0.05)
        if time.monotonic() - started > 3:
            break
    status, error = _status_and_error(read_to_close(sock))
    assert status == 408 and error["code"] == "request_timeout"


def test_a_connection_that_sends_nothing_is_closed_quietly(served):
    sock = _connect(served)
    started = time.monotonic()
    assert read_to_close(sock) == b""
    assert time.monotonic() - started < 5


def test_a_body_that_never_comes_gets_408_and_nothing_logs_a_traceback(served, caplog):
    caplog.set_level(logging.WARNING)
    sock = _connect(served)
    sock.sendall(HEAD + BODY[:10])  # the head, a part of the body, then silence
    started = time.monotonic()
    head, _, body = read_to_close(sock).partition(b"\r\n\r\n")
    assert head.split()[1] == b"408"
    error = error_of(body)
    assert (error["type"], error["code"]) == ("request_timeout_error", "request_timeout")
    assert "body" in error["message"]
    assert DEADLINE_S * 0.9 < time.monotonic() - started < 5
    # the app saw the client leave and ended quietly; the gateway serves on
    status, _, data = raw_request(
        served.root_url, "POST", CHAT, BODY, {"content-type": "application/json"}
    )
    assert status == 200, data
    logged = [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert not logged, [r.getMessage() for r in logged]


def test_an_endless_header_gets_431_and_the_connection_closed(served, parser):
    sock = _connect(served)
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nx-big: ")
    sent = 0
    try:
        while sent < 4 * _guard.MAX_HEAD_BYTES:  # bounded; the gateway closes long before
            sock.sendall(b"a" * 16384)
            sent += 16384
    except OSError:
        pass
    status, error = _status_and_error(read_to_close(sock))
    if parser == "h11":  # h11 bounds the head itself (16 KiB): a 400, OpenAI-shaped, closed
        assert status == 400
        assert (error["type"], error["code"]) == ("invalid_request_error", "invalid_http")
        return
    assert status == 431
    assert (error["type"], error["code"]) == ("request_too_large_error", "request_head_too_large")


NOT_HTTP = [
    pytest.param(b"GARBAGE\r\n\r\n", id="no-request-line"),
    pytest.param(
        b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: -1\r\n\r\n",
        id="negative-content-length",
    ),
]


@pytest.mark.parametrize("garbage", NOT_HTTP)
def test_bytes_that_are_not_http_get_an_openai_shaped_400_and_the_connection_closed(
    served, garbage
):
    sock = _connect(served)
    sock.sendall(garbage)
    data = read_to_close(sock)
    status, error = _status_and_error(data)
    assert status == 400, data
    assert (error["type"], error["code"]) == ("invalid_request_error", "invalid_http")
    assert b"x-chatcontract-classification: gateway/invalid_http" in data
    assert b"connection: close" in data


def test_requests_that_are_not_http_do_not_flood_the_log(served, caplog):
    caplog.set_level(logging.WARNING, logger="uvicorn.error")
    for _ in range(5):  # bounded
        sock = _connect(served)
        sock.sendall(b"GARBAGE\r\n\r\n")
        assert read_to_close(sock).startswith(b"HTTP/1.1 400")
    logged = [r for r in caplog.records if _guard.INVALID_REQUEST_LOG in r.getMessage()]
    assert len(logged) <= 1  # at most one a minute, whatever an earlier test logged


def test_the_invalid_request_warning_is_let_through_once_an_interval_with_a_count():
    now = [0.0]
    limit = _guard.InvalidRequestLogLimit(interval_s=60.0, clock=lambda: now[0])

    def record(msg: str) -> logging.LogRecord:
        return logging.LogRecord("uvicorn.error", logging.WARNING, __file__, 1, msg, None, None)

    assert limit.filter(record("something else"))
    first = record(_guard.INVALID_REQUEST_LOG)
    assert limit.filter(first) and first.getMessage() == _guard.INVALID_REQUEST_LOG
    now[0] = 59.9
    assert not limit.filter(record(_guard.INVALID_REQUEST_LOG))
    assert not limit.filter(record(_guard.INVALID_REQUEST_LOG))
    assert limit.filter(record("something else"))  # other messages are never held back
    now[0] = 60.0
    later = record(_guard.INVALID_REQUEST_LOG)
    assert limit.filter(later)
    assert "(2 more since the last one logged, at most one every 60 s)" in later.getMessage()
    now[0] = 200.0
    again = record(_guard.INVALID_REQUEST_LOG)
    assert limit.filter(again) and again.getMessage() == _guard.INVALID_REQUEST_LOG


def test_the_log_limit_is_installed_once(served):
    # ``served`` ran the server's configuration (which installs it on uvicorn's logger)
    for _ in range(3):
        _guard.limit_invalid_request_logs(logging.getLogger("uvicorn.error"))
    found = logging.getLogger("uvicorn.error").filters
    assert sum(isinstance(f, _guard.InvalidRequestLogLimit) for f in found) == 1


# -- ordinary requests -------------------------------------------------------------------


def test_ordinary_requests_are_unaffected(served):
    # A large header under the limit, and a kept-alive connection serving several requests
    # with pauses between them (idle under uvicorn's keep-alive timeout is not a head).
    status, _, data = raw_request(
        served.root_url,
        "POST",
        CHAT,
        BODY,
        {"content-type": "application/json", "x-pad": "a" * 12000},
    )
    assert status == 200, data
    sock = _connect(served)
    rest = b""
    for _ in range(3):
        sock.sendall(HEAD + BODY)
        head, _, rest = _read_response(sock, rest)
        assert head.startswith(b"HTTP/1.1 200")
        time.sleep(DEADLINE_S * 0.6)
    sock.close()


def test_a_stream_outliving_both_deadlines_then_a_second_request_on_the_connection(
    gateway, sims, parser, deadlines
):
    # The stream lasts 3x both deadlines; the next head's deadline waits for it, and the
    # connection is reused after it.
    sim = sims("slow", delay_ms=int(DEADLINE_S * 3000), ping_interval_ms=50)
    served = gateway(contract_for(sim.base_url), env_for(sim.api_key))
    sock = _connect(served)
    started = time.monotonic()
    sock.sendall(STREAM_HEAD + STREAM_BODY)
    head, body, rest = _read_response(sock)
    assert head.startswith(b"HTTP/1.1 200"), head
    assert time.monotonic() - started > 2 * DEADLINE_S
    assert _streamed_text(body) == FULL and body.rstrip().endswith(b"data: [DONE]")
    sock.sendall(b"GET /v1/models HTTP/1.1\r\nhost: x\r\n\r\n")  # (the upstream is slow)
    head, body, rest = _read_response(sock, rest)
    assert head.startswith(b"HTTP/1.1 200"), head
    assert json.loads(body)["object"] == "list"
    assert rest == b""
    sock.close()


def test_a_pipelined_pair_in_one_write_gets_both_answers(served):
    sock = _connect(served)
    sock.sendall(STREAM_HEAD + STREAM_BODY + HEAD + BODY)
    head, body, rest = _read_response(sock)
    assert head.startswith(b"HTTP/1.1 200") and _streamed_text(body) == FULL
    head, body, rest = _read_response(sock, rest)
    assert head.startswith(b"HTTP/1.1 200")
    assert json.loads(body)["choices"][0]["message"]["content"] == FULL
    time.sleep(DEADLINE_S * 0.6)  # idle on the kept-alive connection: not a head
    sock.sendall(HEAD + BODY)
    head, _, rest = _read_response(sock, rest)
    assert head.startswith(b"HTTP/1.1 200") and rest == b""
    sock.close()


# -- the protocol on a fake transport ----------------------------------------------------


class _Transport(asyncio.Transport):
    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__()
        self.loop = loop
        self.written: list[bytes] = []
        self.closing = False
        self.protocol: Any = None

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"sockname": ("127.0.0.1", 8788), "peername": ("127.0.0.1", 50000)}.get(
            name, default
        )

    def write(self, data: Any) -> None:
        self.written.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        if not self.closing:
            self.closing = True
            self.loop.call_soon(self.protocol.connection_lost, None)

    def get_protocol(self) -> Any:
        return self.protocol

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def is_reading(self) -> bool:
        return not self.closing


def _protocol(cls: type, asgi: Any) -> tuple[Any, _Transport]:
    loop = asyncio.get_running_loop()
    config = uvicorn.Config(asgi, http=cls, lifespan="off", log_config=None)
    protocol = cls(config=config, server_state=ServerState(), app_state={}, _loop=loop)
    transport = _Transport(loop)
    transport.protocol = protocol
    protocol.connection_made(transport)
    return protocol, transport


def _classes() -> list[Any]:
    return [
        pytest.param(_guard.GuardedHttpToolsProtocol, id="httptools"),
        pytest.param(_guard.GuardedH11Protocol, id="h11"),
    ]


@pytest.mark.parametrize("cls", _classes())
def test_the_uvicorn_internals_the_guard_uses_are_there(cls):
    # _http_guard (gateway._guard's base) reads these uvicorn internals: an upgrade that
    # moves one fails here, by name, instead of the deadlines silently not holding.
    missing: list[str] = []

    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async def check() -> None:
        protocol, transport = _protocol(cls, asgi)
        base = next(c for c in cls.__mro__ if c.__module__.startswith("uvicorn."))
        missing.extend(
            f"{base.__name__}.{name} after connection_made"
            for name in ("loop", "transport", "flow", "cycle", "connections")
            if name not in vars(protocol)
        )
        if getattr(protocol, "transport", None) is not transport:
            missing.append(f"{base.__name__}.transport: the one given to connection_made")
        if cls is _guard.GuardedHttpToolsProtocol:
            if not isinstance(vars(protocol).get("pipeline"), collections.deque):
                missing.append("HttpToolsProtocol.pipeline (a deque of queued requests)")
            missing.extend(
                f"HttpToolsProtocol.{name} (an httptools callback)"
                for name in ("on_message_begin", "on_headers_complete", "on_message_complete")
                if name not in vars(base)
            )
        else:
            if not isinstance(vars(protocol).get("conn"), h11.Connection):
                missing.append("H11Protocol.conn (an h11.Connection)")
            if "handle_events" not in vars(base):
                missing.append("H11Protocol.handle_events (where a request's cycle is made)")
        if protocol._timer is None:
            missing.append("the guard's timer, armed in connection_made")
        protocol.data_received(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n")
        if protocol._observe() != _http_guard._BODY:
            missing.append("the phase after a head: the parser's callbacks were not called")
        cycle = protocol.cycle
        missing.extend(
            f"RequestResponseCycle.{name}"
            for name in ("response_started", "response_complete", "disconnected", "message_event")
            if not hasattr(cycle, name)
        )
        extensions = getattr(cycle, "scope", {}).get("extensions", {})
        if not callable(extensions.get(_http_guard.ABORT_EXTENSION)):
            missing.append("RequestResponseCycle.scope: the request's scope (its abort offered)")
        protocol.data_received(b"ok")
        for _ in range(100):  # bounded: the app answers within a few loop turns
            if getattr(cycle, "response_complete", True):
                break
            await asyncio.sleep(0)
        if protocol._observe() != _http_guard._AWAIT:
            missing.append("the phase after a request: the parser's callbacks were not called")
        transport.close()
        await asyncio.sleep(0)
        if protocol._timer is not None:
            missing.append("the guard's timer, cancelled in connection_lost")

    asyncio.run(check())
    assert not missing, (
        f"uvicorn {uvicorn.__version__} no longer has what _http_guard.py relies on: "
        + "; ".join(missing)
    )


@pytest.mark.parametrize("cls", _classes())
def test_the_apps_sends_after_a_body_timeout_are_dropped(cls, deadlines, caplog):
    caplog.set_level(logging.WARNING)
    seen: list[str] = []

    async def asgi(scope: Any, receive: Any, send: Any) -> None:
        for _ in range(10):  # bounded: the body's first part, then the disconnect
            message = await receive()
            seen.append(message["type"])
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"late"})
        seen.append("sent")

    async def run() -> list[bytes]:
        protocol, transport = _protocol(cls, asgi)
        protocol.data_received(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 10\r\n\r\nab")
        async with asyncio.timeout(10):
            while "sent" not in seen:
                await asyncio.sleep(0.01)
        await asyncio.sleep(0)
        assert transport.closing and protocol._timer is None
        return transport.written

    written = asyncio.run(run())
    assert seen == ["http.request", "http.disconnect", "sent"]
    assert len(written) == 1 and written[0].startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
