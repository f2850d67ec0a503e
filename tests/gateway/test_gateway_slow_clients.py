"""A client that sends its request slowly, never finishes it, or sends an endless header does not
hold the gateway: the head has a deadline and a size limit (``gateway._guard``), the body a
deadline (``app.BODY_TIMEOUT_S``), each answered OpenAI-shaped and the connection closed."""

from __future__ import annotations

import json
import socket
import time

import pytest
from gateway_helpers import PROMPT, contract_for, env_for, error_of, raw_request

from chatcontract.gateway import _guard, app, server

CHAT = "/v1/chat/completions"
BODY = json.dumps({"model": "gpt-4.1-nano", "messages": PROMPT}).encode()
HEAD = (
    b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
    b"content-length: %d\r\n\r\n" % len(BODY)
)


@pytest.fixture
def served(gateway, sims, monkeypatch):
    monkeypatch.setattr(_guard, "HEAD_TIMEOUT_S", 0.5)
    monkeypatch.setattr(app, "BODY_TIMEOUT_S", 0.5)
    sim = sims()
    return gateway(contract_for(sim.base_url), env_for(sim.api_key))


def _connect(served) -> socket.socket:
    sock = socket.create_connection((served.host, served.port), timeout=10)
    sock.settimeout(10)
    return sock


def _read_to_close(sock: socket.socket, within_s: float = 10.0) -> bytes:
    data = b""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            piece = sock.recv(65536)
        except ConnectionResetError:
            break
        if not piece:
            break
        data += piece
    sock.close()
    return data


def _status_and_error(data: bytes) -> tuple[int, dict]:
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"x-chatcontract-attempts: 0" in head
    return int(head.split()[1]), error_of(body)


def test_the_server_bounds_request_heads_when_it_runs_httptools(monkeypatch):
    config = server.server_config(app.create_app(_state_stub()))
    assert config.http is _guard.GuardedHttpToolsProtocol


def _state_stub():
    from chatcontract.gateway import GatewayState

    return GatewayState(contract_for("http://127.0.0.1:9/v1"), environ=env_for("sk-x"))


def test_a_head_that_never_ends_gets_408_and_the_connection_closed(served):
    sock = _connect(served)
    sock.sendall(HEAD[:30])  # a part of the head, then silence
    started = time.monotonic()
    status, error = _status_and_error(_read_to_close(sock))
    assert status == 408 and error["type"] == "request_timeout_error"
    assert error["code"] == "request_timeout"
    assert time.monotonic() - started < 5


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
    status, error = _status_and_error(_read_to_close(sock))
    assert status == 408 and error["code"] == "request_timeout"


def test_a_connection_that_sends_nothing_is_closed_quietly(served):
    sock = _connect(served)
    assert _read_to_close(sock) == b""


def test_a_body_that_never_comes_gets_408(served):
    sock = _connect(served)
    sock.sendall(HEAD + BODY[:10])  # the head, a part of the body, then silence
    head, _, body = _read_to_close(sock).partition(b"\r\n\r\n")
    assert head.split()[1] == b"408"
    error = error_of(body)
    assert (error["type"], error["code"]) == ("request_timeout_error", "request_timeout")


def test_an_endless_header_gets_431_and_the_connection_closed(served):
    sock = _connect(served)
    sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nx-big: ")
    sent = 0
    try:
        while sent < 4 * _guard.MAX_HEAD_BYTES:  # bounded; the gateway closes long before
            sock.sendall(b"a" * 16384)
            sent += 16384
    except OSError:
        pass
    status, error = _status_and_error(_read_to_close(sock))
    assert status == 431
    assert (error["type"], error["code"]) == ("request_too_large_error", "request_head_too_large")


def test_ordinary_requests_are_unaffected(served):
    # A large header under the limit, a kept-alive connection serving several requests, and a
    # stream outliving the head deadline are all fine.
    status, _, data = raw_request(
        served.root_url,
        "POST",
        CHAT,
        BODY,
        {"content-type": "application/json", "x-pad": "a" * 30000},
    )
    assert status == 200, data
    sock = _connect(served)
    for _ in range(3):
        sock.sendall(HEAD + BODY)
        data = b""
        while b"\r\n\r\n" not in data or len(data.partition(b"\r\n\r\n")[2]) < _length(data):
            piece = sock.recv(65536)
            assert piece
            data += piece
        assert data.startswith(b"HTTP/1.1 200")
        time.sleep(0.3)  # idle under the keep-alive timeout, not counted as a head
    sock.close()


def _length(data: bytes) -> int:
    for line in data.partition(b"\r\n\r\n")[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":")[1])
    return 0
