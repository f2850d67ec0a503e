"""A stream's last payloads go out with its end: the read that brought the upstream's
``[DONE]`` and the gateway's own ``data: [DONE]`` are one body message (a write fewer per
stream), while every earlier read still goes out as it arrives; when the call does not finish
there (a failure after ``[DONE]``), nothing is held back and nothing is lost.

The gateway's ASGI app is called in process with a recording ``send``, in front of a scripted
upstream served on 127.0.0.1 (each piece one body message of the upstream, 50 ms apart: one
read of the gateway's each)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from gateway_helpers import PROMPT, ScriptedStream, contract_for, env_for

from chatcontract.gateway import GatewayServer, GatewayState, create_app

Message = dict[str, Any]
CHUNK = {
    "id": "chatcmpl-end",
    "object": "chat.completion.chunk",
    "created": 1,
    "model": "gpt-4.1-nano",
}
USAGE = {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}


def _event(payload: dict[str, Any] | str) -> bytes:
    text = payload if isinstance(payload, str) else json.dumps(payload, separators=(",", ":"))
    return b"data: " + text.encode() + b"\n\n"


def _text(content: str) -> bytes:
    choice = {"index": 0, "delta": {"content": content}, "finish_reason": None}
    return _event({**CHUNK, "choices": [choice]})


def _finish(reason: str = "stop") -> bytes:
    return _event({**CHUNK, "choices": [{"index": 0, "delta": {}, "finish_reason": reason}]})


def _usage() -> bytes:
    return _event({**CHUNK, "choices": [], "usage": USAGE})


DONE = _event("[DONE]")


class _Client:
    """The client side of one ASGI request: its body, then it stays until the response's
    last body message, and records every message it was sent."""

    def __init__(self, body: bytes) -> None:
        self.body: bytes | None = body
        self.sent: list[Message] = []
        self.ended = asyncio.Event()

    async def receive(self) -> Message:
        if self.body is not None:
            body, self.body = self.body, None
            return {"type": "http.request", "body": body, "more_body": False}
        await self.ended.wait()
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        self.sent.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body"):
            self.ended.set()


def _messages(upstream_url: str, *, include_usage: bool = True) -> list[Message]:
    """The ASGI messages the gateway sends its client for one streamed request."""
    state = GatewayState(contract_for(upstream_url), environ=env_for("sk-upstream"))
    app = create_app(state)
    request = {"model": state.routes[0].model, "messages": PROMPT, "stream": True}
    if include_usage:
        request["stream_options"] = {"include_usage": True}
    body = json.dumps(request).encode()
    scope = {
        "type": "http",
        "method": "POST",
        "path": "/v1/chat/completions",
        "headers": [(b"content-type", b"application/json")],
    }
    client = _Client(body)

    async def run() -> None:
        try:
            await asyncio.wait_for(app(scope, client.receive, client.send), 10)
        finally:
            await state.aclose()

    asyncio.run(run())
    return client.sent


def _bodies(sent: list[Message]) -> list[tuple[bytes, bool]]:
    return [
        (m["body"], bool(m.get("more_body")))
        for m in sent
        if m["type"] == "http.response.body" and m["body"]
    ]


@pytest.fixture
def upstream():
    servers: list[GatewayServer] = []

    def serve(pieces: list[bytes]) -> str:
        server = GatewayServer(ScriptedStream(pieces, gap_s=0.05)).start()  # type: ignore[arg-type]
        servers.append(server)
        return server.base_url

    yield serve
    for server in servers:
        server.stop()


def test_the_read_with_done_goes_out_with_the_end_of_the_stream(upstream):
    pieces = [_text("Hello"), _text(" there"), _text(" friend") + _finish() + _usage() + DONE]
    sent = _messages(upstream(pieces))
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 200
    bodies = _bodies(sent)
    # Each earlier read as it came, then one message: the last read's chunks and [DONE].
    assert [more for _, more in bodies] == [True, True, False]
    assert bodies[0][0] == _text("Hello")
    assert bodies[1][0] == _text(" there")
    assert bodies[2][0] == _text(" friend") + _finish() + _usage() + DONE


def test_a_whole_answer_in_one_read_is_one_body_message(upstream):
    bodies = _bodies(_messages(upstream([_text("Hi") + _finish() + _usage() + DONE])))
    assert bodies == [(_text("Hi") + _finish() + _usage() + DONE, False)]


def test_without_usage_asked_the_end_still_carries_the_last_chunks(upstream):
    """The client did not ask for usage: the gateway drops the usage chunk it asked for, and
    the finish chunk still goes out with [DONE]."""
    pieces = [_text("Hi"), _finish() + _usage() + DONE]
    bodies = _bodies(_messages(upstream(pieces), include_usage=False))
    assert bodies == [(_text("Hi"), True), (_finish() + DONE, False)]


def test_a_failure_after_done_loses_nothing_and_ends_in_band(upstream):
    """[DONE] without a finish_reason (a truncated stream) after text: the call fails, so
    the last read goes out at once and the stream ends with the in-band error, no [DONE]."""
    pieces = [_text("Half"), _text(" an answer") + _usage() + DONE]
    bodies = _bodies(_messages(upstream(pieces)))
    data = b"".join(body for body, _ in bodies)
    assert data.startswith(_text("Half") + _text(" an answer"))
    assert DONE not in data
    last = data.rsplit(b"\n\n", 2)[-2]
    assert last.startswith(b"data: ") and b'"error"' in last
    assert [more for _, more in bodies][-1] is False
