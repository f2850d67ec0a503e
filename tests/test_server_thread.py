"""``ServerThread``: the embedded servers' background uvicorn (simulator, probe, gateway,
admin port), started and stopped within bounds, its socket closed whatever happened."""

from __future__ import annotations

import socket

import httpx2
import uvicorn

from chatcontract._listen import listen_socket
from chatcontract._server_thread import ServerThread


async def hello(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"hi"})


def config(app=hello, lifespan="off"):
    return uvicorn.Config(app, lifespan=lifespan, log_level="critical", log_config=None)


def test_it_serves_until_stopped_then_closes_its_socket():
    sock = listen_socket("127.0.0.1", 0, backlog=8)
    port = sock.getsockname()[1]
    runner = ServerThread(config(), sock, "test-server")
    assert runner.start(10.0) and runner.alive and runner.loop is not None
    assert httpx2.get(f"http://127.0.0.1:{port}/").text == "hi"
    assert runner.stop(5.0) and not runner.alive
    assert sock.fileno() == -1  # closed


def test_a_server_that_cannot_start_says_so_with_what_ended_it():
    async def broken_lifespan(scope, receive, send):
        raise RuntimeError("no start")

    sock = listen_socket("127.0.0.1", 0, backlog=8)
    runner = ServerThread(config(broken_lifespan, lifespan="on"), sock, "test-broken")
    assert not runner.start(5.0)
    runner.stop(5.0)
    assert not runner.alive and sock.fileno() == -1


def test_stopping_one_never_started_closes_the_socket():
    sock = listen_socket("127.0.0.1", 0, backlog=8)
    runner = ServerThread(config(), sock, "test-idle")
    assert runner.stop(1.0)
    assert sock.fileno() == -1
    assert isinstance(sock, socket.socket)
