"""A client that stops reading a stream (or reads it too slowly) does not hold the upstream call
past the call's deadline: the gateway's writes wait for the client (TCP backpressure, so
nothing is buffered without bound), and when the deadline passes with a write still waiting,
the client's connection is reset and the upstream call closed, as for a client that left.
Served with ``httptools`` (the ``gateway`` extra) and with the ``h11`` fallback."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import threading
import time
from dataclasses import replace
from typing import Any

import anyio
import pytest
from gateway_helpers import PROMPT, TIMEOUTS, ScriptedStream, contract_for, env_for, eventually
from gateway_process import GatewayProcess
from test_gateway_slow_clients import PARSERS, _force

from chatcontract.cli import main
from chatcontract.gateway import GatewayServer

DEADLINE_MS = 1_500
BODY = json.dumps({"messages": PROMPT, "stream": True}).encode()
REQUEST = (
    b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
    b"content-length: %d\r\n\r\n%s" % (len(BODY), BODY)
)
CHUNK = {
    "id": "chatcmpl-flood",
    "object": "chat.completion.chunk",
    "created": 1,
    "model": "gpt-4.1-nano",
    "choices": [{"index": 0, "delta": {"content": "word " * 100}, "finish_reason": None}],
}
EVENTS = (b"data: " + json.dumps(CHUNK).encode() + b"\n\n") * 16


class FloodUpstream:
    """An upstream streaming as fast as its client reads, until that client goes away (then
    ``closed`` is set)."""

    def __init__(self) -> None:
        self.closed = threading.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        while (await receive()).get("more_body"):
            pass
        async with anyio.create_task_group() as group:

            async def watch() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                self.closed.set()
                group.cancel_scope.cancel()

            group.start_soon(watch)
            headers = [(b"content-type", b"text/event-stream")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            while True:
                await send({"type": "http.response.body", "body": EVENTS, "more_body": True})
                await anyio.sleep(0)  # a send to a client gone returns at once: cancellable


@pytest.fixture(params=PARSERS)
def parser(request, monkeypatch) -> str:
    _force(monkeypatch, request.param)
    return str(request.param)


def _event(payload: dict[str, Any]) -> bytes:
    return b"data: " + json.dumps(payload).encode() + b"\n\n"


def _tasks(server: GatewayServer) -> int:
    async def count() -> int:
        return len(asyncio.all_tasks())

    assert server.loop is not None
    return asyncio.run_coroutine_threadsafe(count(), server.loop).result(5)


def _send_request(
    server: GatewayServer | GatewayProcess, extra: bytes = b""
) -> tuple[socket.socket, bytes]:
    """The stream request on a socket with a small receive buffer; its response head read
    (what came after it returned)."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(10)
    host, _, port = server.root_url.removeprefix("http://").rpartition(":")
    sock.connect((host, int(port)))
    sock.sendall(REQUEST.replace(b"\r\n\r\n", b"\r\n" + extra + b"\r\n", 1))
    head = b""
    while b"\r\n\r\n" not in head:
        piece = sock.recv(1024)
        assert piece, head
        head += piece
    assert head.startswith(b"HTTP/1.1 200 "), head
    return sock, head.partition(b"\r\n\r\n")[2]


def _rest(sock: socket.socket, *, within_s: float) -> tuple[bytes, bool]:
    """What comes on ``sock`` until it is closed or reset (for at most ``within_s``), read as
    fast as it comes; whether it was reset."""
    data = b""
    deadline = time.monotonic() + within_s
    try:
        while time.monotonic() < deadline:
            piece = sock.recv(65536)
            if not piece:
                return data, False
            data += piece
    except ConnectionResetError:
        return data, True
    finally:
        sock.close()
    raise AssertionError(f"the connection stayed open past {within_s} s")


def test_a_client_that_stops_reading_is_reset_at_the_deadline_and_the_upstream_closed(
    gateway, parser, caplog
):
    upstream = FloodUpstream()
    with GatewayServer(upstream) as flood:  # type: ignore[arg-type]  # any ASGI app serves
        timeouts = replace(TIMEOUTS, total_ms=DEADLINE_MS)
        server = gateway(contract_for(flood.base_url, timeouts=timeouts), env_for("sk-up"))
        baseline = _tasks(server)
        started = time.monotonic()
        sock, _ = _send_request(server)
        # The client reads nothing more: the gateway's writes wait, its upstream reads stop.
        assert upstream.closed.wait(DEADLINE_MS / 1000 + 5)
        assert time.monotonic() - started >= DEADLINE_MS / 1000 - 0.1
        data, reset = _rest(sock, within_s=10)
        # Never a clean end: the stream breaks off, it does not end its chunked body.
        assert reset
        assert not data.endswith(b"0\r\n\r\n")
        assert eventually(lambda: server.app.state.in_flight == 0)
        assert eventually(lambda: _tasks(server) == baseline)
    assert "did not read its stream by the call's deadline" in caplog.text
    assert "Traceback" not in caplog.text
    assert "without completing" not in caplog.text  # uvicorn's word for an app that broke off


def test_a_client_that_reads_slowly_and_stays_within_the_deadline_gets_the_whole_stream(
    gateway, parser
):
    pieces = [_event(CHUNK)] * 200
    finish = dict(CHUNK, choices=[{"index": 0, "delta": {}, "finish_reason": "stop"}])
    usage = dict(
        CHUNK, choices=[], usage={"prompt_tokens": 5, "completion_tokens": 200, "total_tokens": 205}
    )
    pieces += [_event(finish), _event(usage), b"data: [DONE]\n\n"]
    with GatewayServer(ScriptedStream(pieces, gap_s=0)) as scripted:  # type: ignore[arg-type]
        server = gateway(contract_for(scripted.base_url), env_for("sk-up"))
        sock, first = _send_request(server)
        time.sleep(0.5)  # a pause (the writes wait), well within the 10 s deadline
        data, reset = _read_stream(sock)
        data = first + data
        assert not reset
        assert data.endswith(b"data: [DONE]\n\n\r\n0\r\n\r\n")
        assert data.count(b'"content": "word') == 200


def _read_stream(sock: socket.socket) -> tuple[bytes, bool]:
    """The rest of a chunked stream, up to its last chunk (bounded by the socket timeout)."""
    data = b""
    try:
        while not data.endswith(b"0\r\n\r\n"):
            piece = sock.recv(65536)
            if not piece:
                break
            data += piece
    except ConnectionResetError:
        return data, True
    finally:
        sock.close()
    return data, False


def test_the_cli_gateway_says_on_stderr_that_it_cut_off_a_client(tmp_path):
    # The gateway's own warnings reach its operator (the package logger alone has only a
    # NullHandler: the CLI printed none of them).
    upstream = FloodUpstream()
    with GatewayServer(upstream) as flood:  # type: ignore[arg-type]  # any ASGI app serves
        path = tmp_path / "chatcontract.yaml"
        assert main(["init", "--path", str(path)]) == 0
        text = path.read_text().replace("https://api.cometapi.com/v1", flood.base_url)
        path.write_text(text)
        env = {**os.environ, "COMETAPI_KEY": "sk-up"}
        process = GatewayProcess(
            ["--contract", str(path), "--listen", "127.0.0.1:0", "--admin", "off"], env
        )
        try:
            sock, _ = _send_request(process, b"x-chatcontract-deadline-ms: %d\r\n" % DEADLINE_MS)
            assert upstream.closed.wait(DEADLINE_MS / 1000 + 5)
            _rest(sock, within_s=10)
            assert process.stop() == 0
            said = "\n".join(process.rest())
        finally:
            process.close()
    assert "a client did not read its stream by the call's deadline" in said
