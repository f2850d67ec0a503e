"""The client-disconnect watch without a task: ``DisconnectWatch`` on its own, then the chat
app called in-process, a client leaving in each phase of a call (before it starts, while a
stream's first chunks are held, while a retry waits) and a server cancelling it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import httpx2
import pytest
from gateway_helpers import PROMPT, contract_for, env_for

from chatcontract.gateway._disconnect import DisconnectWatch, cancel_for_disconnect
from chatcontract.gateway.app import create_app
from chatcontract.gateway.state import GatewayState
from chatcontract.gateway.upstream import _aclose_shielded

DISCONNECT = {"type": "http.disconnect"}


class Server:
    """A server's ``receive`` after the body was read: waits until the client goes."""

    def __init__(self) -> None:
        self.gone = asyncio.Event()
        self.pending = 0  # receive() calls not finished (returned or cancelled)
        self.calls = 0

    async def receive(self) -> dict[str, Any]:
        self.calls += 1
        self.pending += 1
        try:
            await self.gone.wait()
            return DISCONNECT
        finally:
            self.pending -= 1


def _watch(receive: Any) -> tuple[DisconnectWatch, list[int]]:
    seen: list[int] = []
    return DisconnectWatch(receive, lambda: seen.append(1)), seen


async def _turns(n: int = 3) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


@pytest.mark.anyio
async def test_a_watch_calls_back_once_when_the_client_goes():
    server = Server()
    watch, seen = _watch(server.receive)
    await _turns()
    assert (seen, watch.disconnected) == ([], False)
    server.gone.set()
    await _turns()
    assert (seen, watch.disconnected, server.pending, server.calls) == ([1], True, 0, 1)
    watch.close()
    assert seen == [1]


@pytest.mark.anyio
async def test_a_watch_closed_first_cancels_its_receive_and_never_calls_back():
    server = Server()
    watch, seen = _watch(server.receive)
    await _turns()
    watch.close()
    assert server.pending == 0  # the receive's finally ran
    assert not server.gone._waiters  # nothing left waiting on the server's event
    server.gone.set()
    await _turns()
    assert (seen, watch.disconnected) == ([], False)


@pytest.mark.anyio
async def test_a_watch_closed_after_the_wake_up_was_scheduled_never_calls_back():
    server = Server()
    watch, seen = _watch(server.receive)
    server.gone.set()  # the callback is scheduled, not run yet
    watch.close()
    await _turns()
    assert (seen, server.pending) == ([], 0)


@pytest.mark.anyio
async def test_a_client_already_gone_is_seen_when_the_watch_returns():
    async def receive() -> dict[str, Any]:
        return DISCONNECT

    watch, seen = _watch(receive)
    assert (seen, watch.disconnected) == ([], True)  # the caller reads it: no call back
    watch.close()


@pytest.mark.anyio
async def test_late_body_parts_are_skipped_and_bare_yields_are_resumed():
    messages = [{"type": "http.request", "body": b"", "more_body": False}, DISCONNECT]

    async def receive() -> dict[str, Any]:
        await asyncio.sleep(0)  # a bare yield, as a task allows
        return messages.pop(0)

    watch, seen = _watch(receive)
    assert seen == []
    await _turns(4)
    assert (seen, messages, watch.disconnected) == ([1], [], True)


@pytest.mark.anyio
async def test_a_receive_that_fails_ends_the_watch_and_not_the_request():
    async def receive() -> dict[str, Any]:
        await asyncio.sleep(0)
        raise OSError("the server broke")

    watch, seen = _watch(receive)
    await _turns()
    assert (seen, watch.disconnected) == ([], False)
    watch.close()


@pytest.mark.anyio
async def test_a_receive_yielding_what_no_task_accepts_is_an_error():
    class Odd:
        def __await__(self) -> Any:
            yield "not a future"
            return DISCONNECT

    with pytest.raises(RuntimeError, match="not an asyncio future"):
        DisconnectWatch(Odd, lambda: None)  # type: ignore[arg-type]


# -- the chat app, in-process ----------------------------------------------------------------


class _Held(httpx2.AsyncByteStream):
    """A stream that sends ``first`` and then nothing until it is closed."""

    def __init__(self, first: bytes, upstream: Upstream) -> None:
        self._first = first
        self._upstream = upstream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield self._first
        await asyncio.sleep(30)

    async def aclose(self) -> None:
        self._upstream.closed.set()


class Upstream(httpx2.AsyncBaseTransport):
    """The provider: ``mode`` ``held`` (a stream whose first chunk carries no text, then
    silence), ``hang`` (no answer for 30 s) or ``retry`` (a 429 asking for a 2 s wait)."""

    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.requests = 0
        self.closed = asyncio.Event()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        self.requests += 1
        if self.mode == "retry":
            return httpx2.Response(
                429,
                headers={"retry-after": "2", "content-type": "application/json"},
                content=b'{"error": {"message": "slow down", "type": "rate_limit"}}',
            )
        if self.mode == "hang":
            try:
                await asyncio.sleep(30)
            finally:
                self.closed.set()
        chunk = {
            "id": "c1",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}],
        }
        return httpx2.Response(
            200,
            headers={"content-type": "text/event-stream"},
            stream=_Held(b"data: " + json.dumps(chunk).encode() + b"\n\n", self),
        )


class Client:
    """The client side of one ASGI request: its body, then ``gone`` to leave."""

    def __init__(self, body: dict[str, Any], *, gone: bool = False) -> None:
        self._body: bytes | None = json.dumps(body).encode()
        self.gone = asyncio.Event()
        if gone:
            self.gone.set()
        self.sent: list[dict[str, Any]] = []

    async def receive(self) -> dict[str, Any]:
        if self._body is not None:
            body, self._body = self._body, None
            return {"type": "http.request", "body": body, "more_body": False}
        await self.gone.wait()
        return DISCONNECT

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)


SCOPE = {
    "type": "http",
    "method": "POST",
    "path": "/v1/chat/completions",
    "headers": [(b"content-type", b"application/json")],
}


def _app(upstream: Upstream) -> Any:
    contract = contract_for("http://upstream.test/v1")
    return create_app(GatewayState(contract, environ=env_for("sk-up"), transport=upstream))


async def _serve(app: Any, client: Client) -> asyncio.Task[None]:
    task = asyncio.get_running_loop().create_task(app(dict(SCOPE), client.receive, client.send))
    await _turns()
    return task


@pytest.mark.anyio
@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
async def test_a_client_gone_before_the_call_starts_sends_nothing_upstream(stream):
    upstream = Upstream("hang")
    app = _app(upstream)
    client = Client({"messages": PROMPT, "stream": stream}, gone=True)
    await asyncio.wait_for(app(dict(SCOPE), client.receive, client.send), 5)
    assert (upstream.requests, client.sent, app.state.in_flight) == (0, [], 0)
    await app.state.aclose()


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("mode", "stream"),
    [("hang", False), ("held", True)],
    ids=["waiting-for-the-answer", "stream-before-its-first-token"],
)
async def test_a_client_leaving_mid_call_closes_the_upstream_and_ends_the_request(mode, stream):
    upstream = Upstream(mode)
    app = _app(upstream)
    client = Client({"messages": PROMPT, "stream": stream})
    task = await _serve(app, client)
    await asyncio.wait_for(_until(lambda: upstream.requests == 1), 5)
    await _turns()
    assert not task.done()
    client.gone.set()
    await _ended(task, 5)  # by itself: no CancelledError reaches the server
    assert upstream.closed.is_set()
    assert (client.sent, app.state.in_flight, task.cancelling()) == ([], 0, 0)
    await app.state.aclose()


@pytest.mark.anyio
async def test_a_client_leaving_while_a_retry_waits_stops_the_call():
    upstream = Upstream("retry")
    app = _app(upstream)
    client = Client({"messages": PROMPT})
    task = await _serve(app, client)
    await asyncio.wait_for(_until(lambda: upstream.requests == 1), 5)
    await _turns()
    assert not task.done()  # waiting the 2 s the provider asked for
    client.gone.set()
    await _ended(task, 1)
    assert (upstream.requests, client.sent, app.state.in_flight) == (1, [], 0)
    await app.state.aclose()


@pytest.mark.anyio
async def test_a_server_cancelling_the_request_still_cancels_it():
    upstream = Upstream("hang")
    app = _app(upstream)
    client = Client({"messages": PROMPT})
    task = await _serve(app, client)
    await asyncio.wait_for(_until(lambda: upstream.requests == 1), 5)
    task.cancel()  # a server shutting down: not the client leaving
    with pytest.raises(asyncio.CancelledError):
        await task
    assert upstream.closed.is_set()
    assert app.state.in_flight == 0
    await app.state.aclose()


async def _ended(task: asyncio.Task[None], seconds: float) -> None:
    await asyncio.wait({task}, timeout=seconds)  # never cancels it
    assert task.done()
    task.result()


async def _until(condition: Any) -> None:
    while not condition():
        await asyncio.sleep(0.005)


# -- closing an upstream response, never cut short -------------------------------------------


class _Response:
    """A response whose ``aclose`` waits ``waits`` times (0: it never waits)."""

    def __init__(self, waits: int) -> None:
        self.waits = waits
        self.closed = False

    async def aclose(self) -> None:
        for _ in range(self.waits):
            await asyncio.sleep(0.001)
        self.closed = True


@pytest.mark.anyio
@pytest.mark.parametrize("waits", [0, 3], ids=["close-that-never-waits", "close-that-waits"])
async def test_a_response_closed_while_its_call_is_cancelled_is_closed_to_the_end(waits):
    response = _Response(waits)

    async def call() -> None:
        with anyio.CancelScope() as scope:
            scope.cancel()  # cancelled from the start: every wait outside a shield is cut
            try:
                await asyncio.sleep(1)
            finally:
                await _aclose_shielded(response)  # type: ignore[arg-type]

    await asyncio.wait_for(call(), 5)
    assert response.closed


@pytest.mark.anyio
async def test_a_client_leaving_during_a_close_that_waits_cancels_the_call_after_it():
    response = _Response(3)
    closing = asyncio.Event()

    async def call() -> None:
        closing.set()
        await _aclose_shielded(response)  # type: ignore[arg-type]
        await asyncio.sleep(5)  # the rest of the call: cut

    task = asyncio.get_running_loop().create_task(call())
    await closing.wait()
    await asyncio.sleep(0)  # the task is in the close's first wait
    cancel_for_disconnect(task)
    with pytest.raises(asyncio.CancelledError):
        await asyncio.wait_for(task, 2)
    assert response.closed


class _Body(httpx2.AsyncByteStream):
    """An upstream body whose close counts, and raises ``error`` if given."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error
        self.closes = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        yield b""

    async def aclose(self) -> None:
        self.closes += 1
        if self.error is not None:
            raise self.error


def _httpx2_response(body: httpx2.AsyncByteStream) -> httpx2.Response:
    request = httpx2.Request("POST", "http://127.0.0.1:9/v1/chat/completions")
    return httpx2.Response(200, stream=body, request=request)


@pytest.mark.anyio
async def test_an_httpx2_response_is_closed_once_as_its_own_aclose_closes_it():
    body = _Body()
    response = _httpx2_response(body)
    await _aclose_shielded(response)
    await _aclose_shielded(response)
    await response.aclose()
    assert (response.is_closed, body.closes) == (True, 1)


@pytest.mark.anyio
async def test_a_close_that_fails_leaves_the_response_open_and_names_its_request():
    body = _Body(httpx2.ReadError("reset"))
    response = _httpx2_response(body)
    with pytest.raises(httpx2.ReadError) as caught:
        await _aclose_shielded(response)
    assert caught.value.request is response.request
    assert response.is_closed is False  # a later aclose() tries again, as httpx2's does
    body.error = None
    await _aclose_shielded(response)
    assert (response.is_closed, body.closes) == (True, 2)


@pytest.mark.anyio
async def test_a_response_with_a_sync_stream_fails_as_httpx2s_aclose_does():
    response = httpx2.Response(200, stream=_SyncOnly())
    with pytest.raises(RuntimeError, match="async close on a sync stream"):
        await _aclose_shielded(response)


class _SyncOnly(httpx2.SyncByteStream):
    def __iter__(self) -> Iterator[bytes]:
        yield b"{}"
