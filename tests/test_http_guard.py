"""The servers other than the gateway's client port (the gateway's admin port, the probe's HTTP
server, the simulator) bound a request's arrival as the client port does (``_http_guard``): a
client that sends nothing, never ends its head or body, sends an endless header or bytes that
are not HTTP is answered in JSON (or just closed) instead of held forever or buffered without
end. The deadlines are shortened here; the gateway's own port: tests/gateway."""

from __future__ import annotations

import importlib.util
import json
import logging
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from chatcontract import _http_guard
from chatcontract.contract import load_preset
from chatcontract.gateway import admin
from chatcontract.gateway.admin import AdminApp, AdminServer, Readiness, bind_admin
from chatcontract.probe import AppServer, ProbeStore, create_probe_app, service
from chatcontract.simulator import SimulatorServer
from raw_servers import read_to_close

DEADLINE_S = 0.5
SERVERS = ["admin", "probe", "simulator"]


class _Source:
    """An admin source with nothing behind it."""

    def __init__(self) -> None:
        self.on = False

    def metrics(self) -> bytes:
        return b""

    def readiness(self) -> Readiness:
        return Readiness(True)

    def workers(self) -> list[dict[str, Any]]:
        return []

    def kill_switch(self) -> dict[str, bool]:
        return {"on": self.on, "env": False, "effective": self.on}

    def set_kill_switch(self, on: bool) -> None:
        self.on = on


def _start(kind: str, tmp_path: Path) -> tuple[Any, Callable[[], None]]:
    if kind == "admin":
        served = AdminServer(AdminApp(_Source()), bind_admin("127.0.0.1", 0)).start()
        return served, served.stop
    if kind == "probe":
        store = ProbeStore.open(tmp_path / "probe.db")
        app = create_probe_app(
            store=store,
            registry=CollectorRegistry(),
            clock=time.time,
            contract=load_preset("cometapi"),
        )
        probe = AppServer(app).start()

        def stop() -> None:
            probe.stop()
            store.close()

        return probe, stop
    simulator = SimulatorServer(port=0).start()
    return simulator, simulator.stop


@pytest.fixture
def deadlines(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_http_guard, "HEAD_TIMEOUT_S", DEADLINE_S)
    monkeypatch.setattr(_http_guard, "BODY_TIMEOUT_S", DEADLINE_S)


@pytest.fixture(params=SERVERS)
def port(request: pytest.FixtureRequest, tmp_path: Path, deadlines: None) -> Iterator[int]:
    server, stop = _start(request.param, tmp_path)
    try:
        yield server.port
    finally:
        stop()


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.settimeout(10)  # a read past it fails the test: the server held the connection
    return sock


def _status_and_error(data: bytes) -> tuple[int, str]:
    head, _, body = data.partition(b"\r\n\r\n")
    assert b"content-type: application/json" in head, data[:300]
    assert b"connection: close" in head
    return int(head.split()[1]), json.loads(body)["error"]


def test_every_server_is_served_with_the_guarded_protocol(tmp_path: Path) -> None:
    caps = {"admin": admin.MAX_ADMIN_CONNECTIONS, "probe": service.MAX_HTTP_CONNECTIONS}
    for kind in SERVERS:
        server, stop = _start(kind, tmp_path)
        try:
            protocol = server._runner.server.config.http
            assert issubclass(protocol, _http_guard.guarded_protocol()), kind
            assert protocol.max_connections == caps.get(kind), kind
        finally:
            stop()


def test_the_admin_port_keeps_at_most_its_connection_cap_open(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The admin port shares the gateway's file descriptors: connections held open there
    # must not be able to leave none for the client port.
    monkeypatch.setattr(admin, "MAX_ADMIN_CONNECTIONS", 4)
    server, stop = _start("admin", tmp_path)
    held = [_connect(server.port) for _ in range(4)]
    try:
        status, error = _status_and_error(read_to_close(_connect(server.port)))
        assert status == 503 and "at most 4 connections" in error
        held.pop().close()
        answer = b""
        for _ in range(200):  # bounded: until the server has seen the close
            sock = _connect(server.port)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            answer = read_to_close(sock)
            if not answer.startswith(b"HTTP/1.1 503"):
                break
            time.sleep(0.01)
        assert answer.startswith(b"HTTP/1.1 200 OK\r\n")
    finally:
        for sock in held:
            sock.close()
        stop()


def test_a_connection_cap_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        _http_guard.guarded_protocol(max_connections=0)


def test_the_same_cap_is_the_same_class() -> None:
    first = _http_guard.guarded_protocol(max_connections=7)
    assert first is _http_guard.guarded_protocol(max_connections=7)
    assert first is not _http_guard.guarded_protocol(max_connections=8)


def test_a_connection_that_sends_nothing_is_closed(port: int) -> None:
    assert read_to_close(_connect(port)) == b""


def test_a_head_that_never_ends_gets_408(port: int) -> None:
    sock = _connect(port)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\n")  # no blank line, then silence
    status, error = _status_and_error(read_to_close(sock))
    assert status == 408 and "request head" in error


def test_a_head_dripped_a_byte_at_a_time_gets_408(port: int) -> None:
    sock = _connect(port)
    head = b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-slow: " + b"a" * 200
    for byte in head:  # bounded: one pass, stopped once the server has answered
        try:
            sock.sendall(bytes([byte]))
        except OSError:
            break
        time.sleep(0.02)
    status, _ = _status_and_error(read_to_close(sock))
    assert status == 408


def test_a_body_shorter_than_its_content_length_gets_408_on_the_admin_port(
    tmp_path: Path, deadlines: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    served, stop = _start("admin", tmp_path)
    try:
        sock = _connect(served.port)
        sock.sendall(
            b"POST /kill-switch HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json"
            b'\r\ncontent-length: 100\r\n\r\n{"on"'
        )
        status, error = _status_and_error(read_to_close(sock))
        assert status == 408 and "request body" in error
        assert served.app.source.on is False
    finally:
        stop()
    # the app saw the client leave and ended quietly
    logged = [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert not logged, [r.getMessage() for r in logged]


def test_a_body_that_never_comes_to_the_simulator_gets_408_and_logs_no_traceback(
    tmp_path: Path, deadlines: None, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    simulator, stop = _start("simulator", tmp_path)
    try:
        auth = f"authorization: Bearer {simulator.api_key}\r\n".encode()
        head = (
            b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
        )
        sock = _connect(simulator.port)
        sock.sendall(head + auth + b'content-length: 500\r\n\r\n{"model"')
        status, error = _status_and_error(read_to_close(sock))
        assert status == 408 and "request body" in error
        # the simulator serves on (and by then its app has seen the client leave)
        body = b'{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}'
        sock = _connect(simulator.port)
        sock.sendall(
            head + auth + b"connection: close\r\ncontent-length: %d\r\n\r\n" % len(body) + body
        )
        assert read_to_close(sock).startswith(b"HTTP/1.1 200 OK\r\n")
    finally:
        stop()
    logged = [r for r in caplog.records if r.levelno >= logging.WARNING or r.exc_info]
    assert not logged, [r.getMessage() for r in logged]


def _force_h11(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "httptools" else real(name, *a),
    )


@pytest.mark.parametrize("parser", ["httptools", "h11"])
def test_an_endless_header_is_refused_not_buffered(
    parser: str, tmp_path: Path, deadlines: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    if parser == "h11":
        _force_h11(monkeypatch)
    for kind in SERVERS:
        server, stop = _start(kind, tmp_path / kind)
        try:
            sock = _connect(server.port)
            sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: x\r\nx-big: ")
            sent = 0
            try:
                while sent < 4 * _http_guard.MAX_HEAD_BYTES:  # bounded: refused long before
                    sock.sendall(b"a" * 16384)
                    sent += 16384
            except OSError:
                pass
            status, error = _status_and_error(read_to_close(sock))
            if parser == "h11":  # h11 bounds the head itself (16 KiB): a JSON 400
                assert status == 400, kind
            else:
                assert status == 431 and str(_http_guard.MAX_HEAD_BYTES) in error, kind
        finally:
            stop()


def test_an_absurd_path_is_refused_in_json(port: int) -> None:
    sock = _connect(port)
    sock.sendall(b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nhost: x\r\n\r\n")
    status, _ = _status_and_error(read_to_close(sock))
    assert status in (400, 431)


def test_bytes_that_are_not_http_get_a_json_400_and_the_log_is_not_flooded(
    port: int, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="uvicorn.error")
    for _ in range(5):  # bounded
        sock = _connect(port)
        sock.sendall(b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03 not http\r\n\r\n")
        status, error = _status_and_error(read_to_close(sock))
        assert status == 400 and "not valid HTTP/1.1" in error
    logged = [r for r in caplog.records if _http_guard.INVALID_REQUEST_LOG in r.getMessage()]
    assert len(logged) <= 1  # at most one a minute, whatever an earlier test logged


def test_many_idle_connections_are_all_closed(port: int) -> None:
    socks = [_connect(port) for _ in range(50)]  # bounded
    assert all(read_to_close(sock) == b"" for sock in socks)


def test_an_ordinary_request_is_unaffected(port: int) -> None:
    sock = _connect(port)
    sock.sendall(b"GET /healthz HTTP/1.1\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n")
    assert read_to_close(sock).startswith(b"HTTP/1.1 200 OK\r\n")


def test_the_guards_answers_name_their_limits() -> None:
    protocol = _http_guard.GuardedH11Protocol.__new__(_http_guard.GuardedH11Protocol)
    answers = {
        protocol._answer_head_timeout(): (408, f"{_http_guard.HEAD_TIMEOUT_S:g} s"),
        protocol._answer_body_timeout(): (408, f"{_http_guard.BODY_TIMEOUT_S:g} s"),
        protocol._answer_head_too_large(): (431, str(_http_guard.MAX_HEAD_BYTES)),
        protocol._answer_invalid_http(): (400, "HTTP/1.1"),
    }
    for answer, (status, named) in answers.items():
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 %d " % status)
        assert f"content-length: {len(body)}".encode() in head
        assert named in json.loads(body)["error"]
