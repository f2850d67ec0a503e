"""The gateway's OpenAI-compatible ASGI app: ``POST /v1/chat/completions``, ``GET /v1/models``.

A raw ASGI callable (no framework routing or middleware on the hot path): a dict lookup by
path, the gateway key compared in constant time, the body read up to the size limit, then the
call driven by ``GatewayUpstream`` (the client's ``CallPlan``).

Non-streamed answers are the provider's body as it came. Streams pass through chunk by chunk:

- Before the first text delta nothing is sent, so a failure there is retried or falls back
  invisibly and an error is a plain HTTP error (status and JSON), as for a non-streamed call.
- The response head and the chunks held so far go out with the first text delta (time to
  first token is not delayed); every later chunk as it arrives.
- After that, a route that declares ``continuation`` continues a broken stream: only new text
  is forwarded, under the first response's ``id``. Otherwise the stream ends with an in-band
  error event ``data: {"error": {...}}`` and no ``[DONE]``: never a clean end after half an
  answer.
- Keep-alive comments from upstream are passed on (as ``: keep-alive``) once streaming.
- Usage is always asked for upstream; the usage chunk reaches the client only if it asked
  (``stream_options.include_usage``).
- A client that goes away cancels the call: the upstream response is closed at once.
- The call's deadline covers the client's side too: a client that has not taken the stream
  when it passes (a write still waiting for it to read: it stopped reading, or reads too
  slowly) is disconnected, by the server's ``ABORT_EXTENSION``; its stream breaks off (no
  clean end) and the upstream call is closed, as for a client that went away.

Every response carries ``x-chatcontract-attempts``, ``x-chatcontract-route`` and
``x-chatcontract-classification`` (for a stream, what is known when its head is sent: the
attempt and route streaming, classification ``streaming``; the verdict follows in-band). An
answer the gateway gives by itself, nothing sent upstream (its own errors, ``/v1/models``),
says so: attempts ``0``, route ``none``, classification ``gateway/CODE`` (the error's
``code``: ``invalid_json``, ``model_not_found``, ``invalid_gateway_key``...) or ``success``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from chatcontract._log import get_logger
from chatcontract.client._core import PreparedCall
from chatcontract.client._plan import Finish
from chatcontract.client.errors import CallFailedError, NonRetryableError
from chatcontract.exchange import Exchange

from ._disconnect import DisconnectWatch, cancel_for_disconnect
from ._guard import ABORT_EXTENSION
from .errors import GatewayError, call_error
from .request import DEADLINE_HEADER, GatewayRequest, parse_request
from .state import GatewayState
from .stream import ChunkForwarder
from .upstream import Attempt, Payloads

__all__ = ["CHAT_PATH", "MODELS_PATH", "GatewayApp", "create_app"]

logger = get_logger("chatcontract.gateway")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

CHAT_PATH = "/v1/chat/completions"
MODELS_PATH = "/v1/models"

#: Allowed methods per path (anything else: 404, or 405 with ``Allow``).
_METHODS: dict[str, tuple[str, ...]] = {CHAT_PATH: ("POST",), MODELS_PATH: ("GET", "HEAD")}

_JSON = (b"content-type", b"application/json")
_SSE_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
]
_DONE = b"data: [DONE]\n\n"
_KEEP_ALIVE = b": keep-alive\n\n"
_DEADLINE = DEADLINE_HEADER.encode()
#: After the call's deadline, how often a stream's writes are looked at again (the deadline
#: found no write waiting: the next one may wait for a client that no longer reads).
_RECHECK_S = 1.0
_NO_ATTEMPTS = (b"x-chatcontract-attempts", b"0")
_NO_ROUTE = (b"x-chatcontract-route", b"none")
#: ``GET /v1/models``: answered by the gateway itself.
_MODELS_HEADERS = [_NO_ATTEMPTS, _NO_ROUTE, (b"x-chatcontract-classification", b"success")]


def create_app(state: GatewayState) -> GatewayApp:
    """The gateway's ASGI app serving ``state`` (one state per process; see ``GatewayState``)."""
    return GatewayApp(state)


class GatewayApp:
    """The raw ASGI app (see the module docstring). ``state`` is public: an admin app, tests
    and the server read it."""

    def __init__(self, state: GatewayState) -> None:
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.state.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -- routing ---------------------------------------------------------------------------

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        methods = _METHODS.get(path)
        if methods is None:
            await _send_error(
                send,
                GatewayError(
                    404,
                    "not_found_error",
                    "unknown_path",
                    f"no route {path[:200]!r}: this gateway serves POST {CHAT_PATH} and "
                    f"GET {MODELS_PATH} (point your SDK's base URL at http://HOST:PORT/v1)",
                ),
            )
            return
        if scope["method"] not in methods:
            allow = ", ".join(methods)
            await _send_error(
                send,
                GatewayError(
                    405,
                    "method_not_allowed_error",
                    "method_not_allowed",
                    f"{scope['method']} is not allowed on {path}: use {allow}",
                ),
                [(b"allow", allow.encode())],
            )
            return
        state = self.state
        headers = _headers(scope)
        if state.requires_key and not state.key_ok(_bearer(headers.get(b"authorization"))):
            await _send_error(
                send,
                GatewayError(
                    401,
                    "authentication_error",
                    "invalid_gateway_key",
                    "a gateway key is required: send Authorization: Bearer KEY with one of "
                    "the keys the gateway was started with (--keys-env)",
                ),
                [(b"www-authenticate", b"Bearer")],
            )
            return
        if path == MODELS_PATH:
            await self._models(send)
            return
        state.in_flight += 1
        tracked = _Tracked(send)
        try:
            await self._chat(scope, headers, receive, tracked)
        except Exception as exc:  # a bug: the client still gets an OpenAI-shaped answer
            logger.exception("chatcontract gateway: a request failed unexpectedly")
            await tracked.fail(exc)
        finally:
            state.in_flight -= 1
            state.served += 1

    async def _models(self, send: Send) -> None:
        data = [
            {"id": model, "object": "model", "created": 0, "owned_by": "chatcontract"}
            for model in self.state.table.models
        ]
        await _send_json(send, 200, orjson.dumps({"object": "list", "data": data}), _MODELS_HEADERS)

    # -- chat ------------------------------------------------------------------------------

    async def _chat(
        self, scope: Scope, headers: dict[bytes, bytes], receive: Receive, send: Send
    ) -> None:
        state = self.state
        try:
            body = await _read_body(receive, state.max_body_bytes, headers.get(b"content-length"))
            if body is None:  # the client went away before sending its request
                return
            deadline = headers.get(_DEADLINE)
            request = parse_request(
                body, state.table, deadline=None if deadline is None else deadline.decode("latin-1")
            )
            call = state.upstream.prepare(
                request.messages,
                request.params,
                stream=request.stream,
                deadline_s=request.deadline_s,
                routes=request.routes,
                # The admin switch; the core adds the contract's variable (read once).
                kill_switch=state.kill_switch,
                body=None if request.as_is_model is None else (request.as_is_model, body),
            )
        except GatewayError as error:
            await _send_error(send, error)
            return
        except NonRetryableError as error:  # the contract rejects the request: nothing sent
            failure = error.failure
            await _send_error(
                send, GatewayError(400, "invalid_request_error", failure.code, failure.message)
            )
            return
        # Run the call; if the client disconnects first, cancel it (closing the upstream call).
        # ``DisconnectWatch`` waits on ``receive`` with no task, and a disconnect cancels this
        # task (``cancel_for_disconnect``, taken back here with ``uncancel``): a task and a
        # cancel scope per request cost more CPU than the rest of a non-streamed call's own
        # work here. A client already gone before the call starts: nothing is sent.
        task = asyncio.current_task()
        assert task is not None  # an ASGI app runs in a task
        watch = DisconnectWatch(receive, lambda: cancel_for_disconnect(task))
        if watch.disconnected:
            return
        try:
            if request.stream:
                abort = scope.get("extensions", {}).get(ABORT_EXTENSION)
                await self._stream(call, request, send, abort)
            else:
                await self._complete(call, send)
        except asyncio.CancelledError:
            # Ours (the client left): the request ends here. Anyone else's (the server
            # shutting down) goes on.
            if watch.disconnected and task.uncancel() == 0:
                return
            raise
        else:
            if watch.disconnected:  # the work took the cancellation in and ended anyway
                task.uncancel()
        finally:
            watch.close()

    async def _complete(self, call: PreparedCall, send: Send) -> None:
        try:
            result, body = await self.state.upstream.complete_body(call)
        except CallFailedError as error:
            extra = _call_headers(error.attempts, error, route=_last_route(call, error))
            await _send_error(send, call_error(error), called=extra)
            return
        extra = _call_headers(result.attempts, None, route=result.route)
        await _send_json(send, 200, body, extra)

    async def _stream(
        self,
        call: PreparedCall,
        request: GatewayRequest,
        send: Send,
        abort: Callable[[], object] | None = None,
    ) -> None:
        forwarder = ChunkForwarder(client_usage=request.client_usage)
        # The deadline over the writes that leave the upstream call open (the last one ends
        # it: the upstream is closed by then).
        writes = None if abort is None else _Writes(abort, call.plan.deadline.remaining())
        # A body part with more to come changes nothing ``_Tracked`` remembers (the head went
        # out through it): those go straight to the server's ``send``.
        more = send.inner if isinstance(send, _Tracked) else send
        held: list[bytes] = []
        started = False
        attempt, route = 0, ""
        # The last payloads with the stream's end, ``[DONE]`` included (a Finish follows):
        # one piece, a write fewer.
        ending = b""
        items = self.state.upstream.stream_items(call)
        try:
            async for item in items:
                if isinstance(item, Payloads):
                    end = _DONE if item.last else b""
                    if started:
                        if item.pings:  # the upstream is alive: so is this stream
                            end = _KEEP_ALIVE + end
                        out = forwarder.encode(item.items, end)
                    elif item.delivered:  # the first text: the head, then what was held
                        held.extend(item.items)
                        await _start_stream(send, attempt, route)
                        started = True
                        out = forwarder.encode(held, end)
                        held.clear()
                    else:
                        held.extend(item.items)
                        continue
                    if item.last:
                        ending = out
                    elif out:
                        message = {"type": "http.response.body", "body": out, "more_body": True}
                        if writes is None:
                            await more(message)
                        else:
                            writes.waiting = True
                            await more(message)
                            writes.waiting = False
                elif isinstance(item, Attempt):
                    attempt, route = item.step.attempt, item.step.route.name
                    if started:
                        forwarder.next_attempt()
                    else:  # nothing of the failed attempt reached the client: forget it
                        held.clear()
                elif isinstance(item, Finish):
                    out = ending or _DONE
                    if not started:  # an answer without text (e.g. only a finish_reason)
                        await _start_stream(send, attempt, item.result.route)
                        out = forwarder.encode(held, _DONE)
                    await send({"type": "http.response.body", "body": out})
                    return
                else:  # Fail
                    error = call_error(item.error)
                    if not started:
                        route = _last_route(call, item.error)
                        extra = _call_headers(item.error.attempts, item.error, route=route)
                        await _send_error(send, error, called=extra)
                        return
                    event = b"data: " + error.body() + b"\n\n"
                    await send({"type": "http.response.body", "body": event})
                    return
        finally:
            if writes is not None:
                writes.close()
            await items.aclose()


# -- helpers ---------------------------------------------------------------------------------


class _Writes:
    """The call's deadline over a stream's writes to its client: one timer, firing at the
    deadline; a write still waiting then (``waiting``) means the client is not taking the
    stream, and the connection is dropped (``abort``); else it looks again every
    ``_RECHECK_S`` until the stream ends (``close``)."""

    __slots__ = ("_abort", "_timer", "waiting")

    def __init__(self, abort: Callable[[], object], remaining_s: float) -> None:
        self._abort = abort
        self.waiting = False
        self._timer: asyncio.TimerHandle | None = asyncio.get_running_loop().call_later(
            remaining_s, self._passed
        )

    def _passed(self) -> None:
        if not self.waiting:
            self._timer = asyncio.get_running_loop().call_later(_RECHECK_S, self._passed)
            return
        self._timer = None
        logger.warning(
            "chatcontract gateway: a client did not read its stream by the call's deadline; "
            "its connection is closed and the upstream call with it"
        )
        self._abort()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


class _Tracked:
    """``send``, remembering how far the response went (to end it right after a bug)."""

    __slots__ = ("done", "inner", "started", "streaming")

    def __init__(self, send: Send) -> None:
        self.inner = send
        self.started = self.streaming = self.done = False

    def __call__(self, message: Message) -> Awaitable[None]:
        # The server's own ``send`` awaitable, handed back as it is (no coroutine of ours
        # around it): every caller awaits it at once.
        if message["type"] == "http.response.start":
            self.started = True
            self.streaming = (b"content-type", _SSE_HEADERS[0][1]) in message["headers"]
        elif not message.get("more_body", False):
            self.done = True
        return self.inner(message)

    async def fail(self, exc: Exception) -> None:
        """End the response with a ``gateway_error`` (500, or in-band on a started stream)."""
        found: BaseException = exc
        while isinstance(found, BaseExceptionGroup) and len(found.exceptions) == 1:
            found = found.exceptions[0]  # the task group around the call wraps it
        error = GatewayError(
            500,
            "gateway_error",
            "internal_error",
            f"the gateway failed unexpectedly ({type(found).__name__}); its log has the details",
        )
        if not self.started:
            await _send_error(self, error)
        elif self.streaming and not self.done:
            await self({"type": "http.response.body", "body": b"data: " + error.body() + b"\n\n"})


def _headers(scope: Scope) -> dict[bytes, bytes]:
    return dict(scope["headers"])


def _bearer(value: bytes | None) -> bytes | None:
    if value is None or value[:7].lower() != b"bearer ":
        return None
    return value[7:].strip()


async def _read_body(receive: Receive, limit: int, length: bytes | None) -> bytes | None:
    """The request body, at most ``limit`` bytes (413 above it); None if the client left."""
    if length is not None and length.isdigit() and (len(length) > 18 or int(length) > limit):
        raise _too_large(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        if chunk:
            size += len(chunk)
            if size > limit:
                raise _too_large(limit)
            chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _too_large(limit: int) -> GatewayError:
    return GatewayError(
        413,
        "request_too_large_error",
        "request_too_large",
        f"the request body is over the gateway's limit of {limit} bytes: send a smaller "
        "request, or start the gateway with a larger --max-body-bytes",
    )


def _last_route(call: PreparedCall, error: CallFailedError) -> str:
    """The route a failed call tried last (the one it would have tried, if none)."""
    return error.attempts[-1].route if error.attempts else call.plan.route.name


def _call_headers(
    attempts: tuple[Exchange, ...], error: CallFailedError | None, *, route: str | None = None
) -> list[tuple[bytes, bytes]]:
    """The ``x-chatcontract-*`` headers of a finished call."""
    if error is not None:
        failure = error.failure
        verdict = f"{failure.kind}/{failure.category}/{failure.code}"
    else:
        verdict = "success"
    if route is None:
        route = attempts[-1].route if attempts else ""
    return [
        (b"x-chatcontract-attempts", str(len(attempts)).encode()),
        (b"x-chatcontract-route", route.encode()),
        (b"x-chatcontract-classification", verdict.encode()),
    ]


def _start_stream(send: Send, attempt: int, route: str) -> Awaitable[None]:
    """The stream's response head (``send``'s awaitable: await it at once)."""
    headers = [
        *_SSE_HEADERS,
        (b"x-chatcontract-attempts", str(attempt).encode()),
        (b"x-chatcontract-route", route.encode()),
        (b"x-chatcontract-classification", b"streaming"),
    ]
    return send({"type": "http.response.start", "status": 200, "headers": headers})


async def _send_json(
    send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    headers = [_JSON, (b"content-length", str(len(body)).encode())]
    if extra:
        headers.extend(extra)
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _send_error(
    send: Send,
    error: GatewayError,
    extra: list[tuple[bytes, bytes]] | None = None,
    *,
    called: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """An error answer: ``called``, the headers of a call that failed upstream; else the
    gateway answered by itself (nothing sent): 0 attempts, route ``none``, classification
    ``gateway/CODE``. ``extra``: more headers (``Allow``, ``WWW-Authenticate``)."""
    headers = _own_headers(error) if called is None else called
    if extra:
        headers = [*headers, *extra]
    await _send_json(send, error.status, error.body(), headers)


def _own_headers(error: GatewayError) -> list[tuple[bytes, bytes]]:
    """The ``x-chatcontract-*`` headers of an answer the gateway gave by itself."""
    return [
        _NO_ATTEMPTS,
        _NO_ROUTE,
        (b"x-chatcontract-classification", b"gateway/" + error.code.encode()),
    ]
