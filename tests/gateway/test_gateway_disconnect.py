"""A client that goes away cancels its call: the upstream request is closed at once (the
upstream sees the disconnect), and the gateway keeps no task, no in-flight count."""

from __future__ import annotations

import asyncio
import http.client
import json
import socket
import threading
from typing import Any

import anyio
import openai
import pytest
from gateway_helpers import PROMPT, contract_for, env_for, eventually

from chatcontract.gateway import GatewayServer

CHUNK = {
    "id": "chatcmpl-endless",
    "object": "chat.completion.chunk",
    "created": 1,
    "model": "gpt-4.1-nano",
    "choices": [{"index": 0, "delta": {"content": "word "}, "finish_reason": None}],
}


class EndlessUpstream:
    """An upstream that streams a chunk every 20 ms (or holds a non-streamed answer) until
    its client goes away, and records that it saw the disconnect."""

    def __init__(self) -> None:
        self.requests = threading.Event()
        self.closed = threading.Event()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        stream = json.loads(body).get("stream", False)
        self.requests.set()
        async with anyio.create_task_group() as group:

            async def watch() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                self.closed.set()
                group.cancel_scope.cancel()

            group.start_soon(watch)
            if not stream:
                await anyio.sleep(30)  # an answer that takes its time
                return
            headers = [(b"content-type", b"text/event-stream")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            event = b"data: " + json.dumps(CHUNK).encode() + b"\n\n"
            while True:
                await send({"type": "http.response.body", "body": event, "more_body": True})
                await anyio.sleep(0.02)


@pytest.fixture
def endless():
    app = EndlessUpstream()
    with GatewayServer(app) as server:  # type: ignore[arg-type]  # any ASGI app serves
        yield server, app


def _tasks(server: GatewayServer) -> int:
    async def count() -> int:
        return len(asyncio.all_tasks())

    assert server.loop is not None
    return asyncio.run_coroutine_threadsafe(count(), server.loop).result(5)


def test_a_client_closing_a_stream_cancels_the_upstream_stream(gateway, endless):
    upstream, app = endless
    server = gateway(contract_for(upstream.base_url), env_for("sk-upstream"))
    baseline = _tasks(server)
    with openai.OpenAI(base_url=server.base_url, api_key="k", max_retries=0) as client:
        stream = client.chat.completions.create(
            model=server.app.state.routes[0].model, messages=PROMPT, stream=True
        )
        for _, chunk in zip(range(3), stream, strict=False):
            assert chunk.choices[0].delta.content == "word "
        stream.close()
    assert app.closed.wait(5)
    assert eventually(lambda: server.app.state.in_flight == 0)
    assert eventually(lambda: _tasks(server) == baseline)


def test_a_client_leaving_a_non_streamed_call_cancels_the_upstream_request(gateway, endless):
    upstream, app = endless
    server = gateway(contract_for(upstream.base_url), env_for("sk-upstream"))
    baseline = _tasks(server)
    connection = http.client.HTTPConnection(server.root_url.removeprefix("http://"), timeout=5)
    body = json.dumps({"messages": PROMPT}).encode()
    connection.request("POST", "/v1/chat/completions", body, {"content-type": "application/json"})
    assert app.requests.wait(5)
    assert connection.sock is not None
    connection.sock.shutdown(socket.SHUT_RDWR)
    connection.close()
    assert app.closed.wait(5)
    assert eventually(lambda: server.app.state.in_flight == 0)
    assert eventually(lambda: _tasks(server) == baseline)
