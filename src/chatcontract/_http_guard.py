"""Bounds on reading a request, which uvicorn's HTTP protocols have none of, for every server
chatcontract runs with uvicorn (the gateway's client and admin ports, the probe's HTTP server,
the simulator).

uvicorn times out only an idle keep-alive connection after a response: a new connection, a
request head sent a byte at a time, a head that never ends, or a body that never comes, is held
for as long as the client likes, and ``httptools`` buffers a header of any size (a client
sending an endless header grows the process without bound). All of it happens before the app
sees a request (before the gateway key is checked), so any client that can reach the port can
exhaust the process's file descriptors or memory.

``GuardedHttpToolsProtocol`` (and ``GuardedH11Protocol``, the fallback without ``httptools``)
adds:

- a head deadline (``head_timeout_s``, from the connection or from the first byte of the next
  request on a kept-alive one, to the end of its headers): past it the connection gets a
  ``408`` and is closed; a connection that sent nothing is just closed, as uvicorn closes an
  idle kept-alive one. While a response is still being sent the next head's deadline waits;
- a body deadline (``body_timeout_s``, from the end of the head to the end of the body): past
  it, if the app has not started its response, a ``408`` and the connection closed (the app
  sees the client disconnect; what it sends after is dropped);
- a head size limit (``max_head_bytes``, request line and headers, ``httptools`` only: ``h11``
  already bounds it with ``h11_max_incomplete_event_size``, 16 KiB): above it, a ``431`` and
  the connection closed;
- bytes the parser refuses (not HTTP/1.1) get a JSON ``400`` instead of uvicorn's plain text,
  and uvicorn's WARNING for them is rate-limited (``limit_invalid_request_logs``);
- optionally (``guarded_protocol(max_connections=N)``), at most N connections open at once: one
  more gets a ``503`` and is closed at once. A port beside the gateway's (its admin port) shares
  the process's file descriptors: without a cap, connections held open there (each for up to
  the head deadline, renewed at will) leave none for the client port.

- every request's scope offers ``scope["extensions"][ABORT_EXTENSION]``, a callable that drops
  the connection at once (the bytes still waiting for the client discarded, the app's
  ``receive`` saying the client left): for an app whose client stopped reading, which no ASGI
  message can end (each ``send`` waits for the client to take the bytes before it).

The answers are JSON, ``{"error": "..."}`` as the admin port's and the probe's own; a server
whose errors have another shape overrides the ``_answer_*`` methods (the gateway's are
OpenAI-shaped: ``gateway/_guard.py``). The deadlines are read from the module when the timer
fires (tests shorten them); ``guarded_protocol()`` picks the class for the installed parser.

Cost per request: the gateway's CPU per request is a tracked target, so nothing here makes or
cancels a timer per request. Each connection has one timer (``loop.call_later``, armed when it
opens, cancelled when it is lost); the request's callbacks only record its phase and the
``loop.time()`` the phase began (twice a request), and the timer, when it fires, reads them and
either acts or re-arms itself for the time left. The timer's delay is never longer than the
shorter deadline, so a phase that begins while it is armed is still judged on time.

The subclasses use these uvicorn internals: the protocol's ``loop``, ``transport``, ``flow``,
``cycle`` (``response_started``, ``response_complete``, ``disconnected``, ``message_event``)
and ``pipeline`` (``httptools``) or ``conn`` (``h11``), and the ``httptools`` parser callbacks
``on_message_begin``, ``on_headers_complete``, ``on_message_complete``, the ``h11`` protocol's
``handle_events`` and the cycle's ``scope``.
``tests/test_http_guard.py`` checks that they are there.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import logging
import socket
import struct
import time
from collections.abc import Callable
from typing import Any

import h11
import orjson
from uvicorn.protocols.http.h11_impl import H11Protocol

try:  # the ``gateway`` extra
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # pragma: no cover - without httptools the h11 protocol is used
    HttpToolsProtocol = None  # type: ignore[assignment,misc]

__all__ = [
    "BODY_TIMEOUT_S",
    "HEAD_TIMEOUT_S",
    "INVALID_REQUEST_LOG",
    "MAX_HEAD_BYTES",
    "GuardedH11Protocol",
    "GuardedHttpToolsProtocol",
    "InvalidRequestLogLimit",
    "capped",
    "guarded_protocol",
    "limit_invalid_request_logs",
]

#: The longest a request head may take to arrive, in seconds.
HEAD_TIMEOUT_S = 30.0
#: The longest a request body may take to arrive once its head has, in seconds.
BODY_TIMEOUT_S = 60.0
#: The largest request head (request line and headers) accepted, in bytes (``httptools``).
MAX_HEAD_BYTES = 64 * 1024

REASONS = {
    400: b"Bad Request",
    408: b"Request Timeout",
    431: b"Request Header Fields Too Large",
    503: b"Service Unavailable",
}

# The connection's phase, as the timer judges it.
_AWAIT = 0  # no byte of the next head yet (or its first bytes not yet seen by the parser)
_HEAD = 1  # a head has begun, its headers are not all in
_BODY = 2  # the head is in, the body not all yet


def raw_answer(status: int, body: bytes, headers: bytes = b"") -> bytes:
    """A whole ``status`` response with a JSON ``body``, closing the connection (``headers``:
    more header lines, each ending in CRLF)."""
    return b"".join(
        [
            b"HTTP/1.1 %d %s\r\n" % (status, REASONS[status]),
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            headers,
            b"connection: close\r\n\r\n",
            body,
        ]
    )


def _error(status: int, message: str) -> bytes:
    return raw_answer(status, orjson.dumps({"error": message}))


#: What uvicorn logs (at WARNING) for each request its parser refuses.
INVALID_REQUEST_LOG = "Invalid HTTP request received."


class InvalidRequestLogLimit(logging.Filter):
    """uvicorn's :data:`INVALID_REQUEST_LOG` warning at most once per ``interval_s``; the next
    one logged says how many were left out. A client needs no key to send bytes that are not
    HTTP, so without a limit anyone who reaches the port writes the process's log."""

    def __init__(self, interval_s: float = 60.0, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self._interval_s = interval_s
        self._clock = clock
        self._last: float | None = None
        self._left_out = 0

    def filter(self, record: logging.LogRecord) -> bool:
        if record.msg != INVALID_REQUEST_LOG:
            return True
        now = self._clock()
        if self._last is not None and now - self._last < self._interval_s:
            self._left_out += 1
            return False
        if self._left_out:
            record.msg = (
                f"{INVALID_REQUEST_LOG} ({self._left_out} more since the last one logged, "
                f"at most one every {self._interval_s:g} s)"
            )
        self._last = now
        self._left_out = 0
        return True


def limit_invalid_request_logs(logger: logging.Logger) -> None:
    """Add an :class:`InvalidRequestLogLimit` to ``logger`` (uvicorn's ``uvicorn.error``),
    once."""
    if not any(isinstance(found, InvalidRequestLogLimit) for found in logger.filters):
        logger.addFilter(InvalidRequestLogLimit())


#: The scope extension dropping a request's connection at once (see the module docstring).
ABORT_EXTENSION = "chatcontract.abort"
#: ``SO_LINGER`` on, 0 s: closing the socket resets the connection.
_RESET = struct.pack("ii", 1, 0)


class _Guard:
    """The per-connection timer both guarded protocols share (see the module's docstring).

    A subclass keeps ``_phase`` and ``_since`` (the ``loop.time()`` the phase began, or None:
    not known, counted from when the timer next sees it), and says what a response in flight
    means for it. A server with its own error shape overrides ``_deadlines`` and the
    ``_answer_*`` methods (each a whole response closing the connection)."""

    # uvicorn's, set by its protocol (declared for the type checker)
    loop: asyncio.AbstractEventLoop
    transport: asyncio.Transport
    cycle: Any
    connections: set[Any]

    _phase = _AWAIT
    _since: float | None = None
    _timer: asyncio.TimerHandle | None = None
    #: the largest request head accepted (``httptools``), in bytes
    max_head_bytes = MAX_HEAD_BYTES
    #: the most connections open at once (None: no limit)
    max_connections: int | None = None

    def _deadlines(self) -> tuple[float, float]:
        """The head's and the body's deadlines, in seconds (read when the timer fires)."""
        return HEAD_TIMEOUT_S, BODY_TIMEOUT_S

    def _answer_head_timeout(self) -> bytes:
        head_s = self._deadlines()[0]
        return _error(408, f"the request head did not arrive within {head_s:g} s: send it at once")

    def _answer_body_timeout(self) -> bytes:
        body_s = self._deadlines()[1]
        return _error(
            408,
            f"the request body did not arrive within {body_s:g} s of its head: send it at once",
        )

    def _answer_head_too_large(self) -> bytes:
        return _error(
            431, f"the request line and headers are over the limit of {self.max_head_bytes} bytes"
        )

    def _answer_invalid_http(self) -> bytes:
        return _error(
            400,
            "the request is not valid HTTP/1.1 (its request line, a header or its framing): "
            "send a well-formed request",
        )

    def _answer_too_many_connections(self) -> bytes:
        return _error(
            503,
            f"this port serves at most {self.max_connections} connections at once: close idle "
            "ones, or try again shortly",
        )

    def _guard_start(self) -> None:
        cap = self.max_connections
        if cap is not None and len(self.connections) > cap:  # this one included
            self._refuse(self._answer_too_many_connections())
            return
        self._since = self.loop.time()
        self._timer = self.loop.call_later(min(self._deadlines()), self._on_timer)

    def _offer_abort(self, scope: dict[str, Any]) -> None:
        """Put ``ABORT_EXTENSION`` in a new request's scope (before its app runs)."""
        extensions = scope.get("extensions")
        if extensions is None:
            scope["extensions"] = extensions = {}
        extensions[ABORT_EXTENSION] = self._abort

    def _abort(self) -> None:
        """Drop the connection now, with a reset (uvicorn's ``connection_lost`` tells the app):
        the bytes the kernel still holds for the client are dropped too, not sent at its pace
        from a socket no one owns any more."""
        sock = self.transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
        self.transport.abort()

    def _guard_stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def _observe(self) -> int:
        """The phase now (the h11 protocol reads it from h11; httptools' callbacks keep it)."""
        return self._phase

    def _waiting(self, phase: int) -> bool:
        """Whether this phase's deadline waits: an earlier response is still being sent (or,
        for a body, the app answered without it and is still sending)."""
        raise NotImplementedError

    def _on_timer(self) -> None:
        self._timer = None
        transport = self.transport
        protocol: object = transport.get_protocol()
        if transport.is_closing() or protocol is not self:
            return  # closed, or handed over (an upgrade): not ours to time any more
        now = self.loop.time()
        head_s, body_s = self._deadlines()
        phase = self._observe()
        limit = body_s if phase == _BODY else head_s
        since = self._since
        if self._waiting(phase):
            # A response is on its way: this deadline counts from after it (not known
            # exactly: from the first firing that no longer finds it).
            self._since = None
        elif since is None:
            self._since = now
        elif now - since >= limit:
            self._expire(phase)
            return
        else:
            limit -= now - since
        self._timer = self.loop.call_later(min(limit, head_s, body_s), self._on_timer)

    def _expire(self, phase: int) -> None:
        cycle = self.cycle
        if phase == _HEAD:
            self._refuse(self._answer_head_timeout())
        elif phase == _BODY and cycle is not None and not cycle.response_started:
            self._refuse(self._answer_body_timeout())
        else:  # nothing of a request sent, or the body stalled after the app's answer
            self.transport.close()

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to bytes its parser refuses (not an HTTP/1.1 request), here JSON
        like the server's own answers (``_answer_invalid_http``); the connection closed."""
        self._refuse(self._answer_invalid_http())

    def _refuse(self, answer: bytes) -> None:
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            # As uvicorn's ``connection_lost`` will: the app's ``receive`` says the client
            # left, and what it sends from now on is dropped (not written after the answer).
            cycle.disconnected = True
            cycle.message_event.set()
        transport = self.transport
        if not transport.is_closing():
            transport.write(answer)
            transport.close()


if HttpToolsProtocol is not None:

    class GuardedHttpToolsProtocol(_Guard, HttpToolsProtocol):
        """uvicorn's ``httptools`` protocol with deadlines on each request's head and body and
        a size limit on its head."""

        # The bytes read since the last message ended, while no body was being read: the
        # head's, and the body's in the read that brought its end. Counted from the read that
        # began a message on a connection with none before it in that read (a pipelined head
        # is counted from its next read on: the limit is soft by at most one read).
        _head_bytes = 0

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            HttpToolsProtocol.connection_made(self, transport)
            self._guard_start()

        def connection_lost(self, exc: Exception | None) -> None:
            self._guard_stop()
            HttpToolsProtocol.connection_lost(self, exc)

        def data_received(self, data: bytes) -> None:
            if self._phase != _BODY:
                self._head_bytes += len(data)
            HttpToolsProtocol.data_received(self, data)
            if self._phase == _HEAD and self._head_bytes > self.max_head_bytes:
                self._head_over_limit()

        def on_message_begin(self) -> None:
            HttpToolsProtocol.on_message_begin(self)
            self._offer_abort(self.scope)  # type: ignore[arg-type]
            self._phase = _HEAD
            self._since = self.loop.time()

        def on_headers_complete(self) -> None:
            self._phase = _BODY
            self._since = self.loop.time()
            HttpToolsProtocol.on_headers_complete(self)

        def on_message_complete(self) -> None:
            HttpToolsProtocol.on_message_complete(self)
            self._phase = _AWAIT
            self._since = None
            self._head_bytes = 0

        def _waiting(self, phase: int) -> bool:
            cycle = self.cycle
            if phase == _BODY:
                # queued behind an earlier response (uvicorn stopped reading), or answered
                return bool(self.pipeline) or (
                    cycle is not None and cycle.response_started and not cycle.response_complete
                )
            return cycle is not None and not cycle.response_complete

        def _head_over_limit(self) -> None:
            if self.transport.is_closing():
                return
            if self._waiting(_HEAD):
                # A response is still being sent: the 431 cannot go out in the middle of it.
                # Read no more (uvicorn reads on once the response is done, and the next read
                # is refused then); the head deadline still runs.
                self.flow.pause_reading()
                return
            self._refuse(self._answer_head_too_large())

else:  # pragma: no cover
    GuardedHttpToolsProtocol = None  # type: ignore[assignment,misc]


class GuardedH11Protocol(_Guard, H11Protocol):
    """uvicorn's ``h11`` protocol with deadlines on each request's head and body (h11 bounds
    the head's size itself).

    h11 has no parser callbacks: the phase is read from h11's state after each read (an
    attribute and a comparison or two), its start stamped when a read changes it."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        H11Protocol.connection_made(self, transport)
        self._guard_start()

    def connection_lost(self, exc: Exception | None) -> None:
        self._guard_stop()
        H11Protocol.connection_lost(self, exc)

    def data_received(self, data: bytes) -> None:
        H11Protocol.data_received(self, data)
        their = self.conn.their_state
        if their is h11.IDLE:  # bytes of a head came: it has begun
            if self._phase != _HEAD:
                self._phase = _HEAD
                self._since = self.loop.time()
        elif their is h11.SEND_BODY:
            if self._phase != _BODY:
                self._phase = _BODY
                self._since = self.loop.time()
        else:  # the request is in: whatever comes next is timed from the timer's next look
            self._phase = _AWAIT
            self._since = None

    def handle_events(self) -> None:
        # Where uvicorn makes each request's scope and cycle (the app's task not yet run).
        before = self.cycle
        H11Protocol.handle_events(self)
        cycle = self.cycle
        if cycle is not None and cycle is not before:
            self._offer_abort(cycle.scope)

    def _observe(self) -> int:
        conn = self.conn
        their = conn.their_state
        phase = _AWAIT
        if their is h11.SEND_BODY:
            phase = _BODY
        elif (
            their is h11.IDLE
            and conn.our_state is h11.IDLE
            # a read showed a head begun (h11 may have dropped its first bytes: blank lines),
            # or a pipelined head's bytes wait in h11's buffer
            and (self._phase == _HEAD or conn.trailing_data[0])
        ):
            phase = _HEAD
        if phase != self._phase:
            # A change no read showed (the next head's first bytes, read while the previous
            # response was sent, parsed once it was done; a connection gone idle): counted
            # from now on.
            self._phase = phase
            self._since = None
        return phase

    def _waiting(self, phase: int) -> bool:
        cycle = self.cycle
        if phase == _BODY:
            return cycle is not None and cycle.response_started and not cycle.response_complete
        return cycle is not None and not cycle.response_complete


def guarded_protocol(
    *, max_connections: int | None = None
) -> type[GuardedHttpToolsProtocol] | type[GuardedH11Protocol]:
    """The guarded protocol for uvicorn's ``http=``: ``httptools``'s if installed (the
    ``gateway`` extra; what uvicorn's ``auto`` picks), else ``h11``'s; with ``max_connections``,
    a subclass that keeps at most that many open (the same class for the same number).
    uvicorn's invalid-request warning is rate-limited from then on."""
    from ._log import library_logger

    limit_invalid_request_logs(library_logger("uvicorn.error"))
    if GuardedHttpToolsProtocol is not None and importlib.util.find_spec("httptools") is not None:
        base: type[GuardedHttpToolsProtocol] | type[GuardedH11Protocol] = GuardedHttpToolsProtocol
    else:
        base = GuardedH11Protocol
    return base if max_connections is None else capped(base, max_connections)


_CAPPED: dict[tuple[type, int], Any] = {}


def capped(base: type[_Guard], max_connections: int) -> Any:
    """``base`` keeping at most ``max_connections`` connections open (one class per number)."""
    if max_connections < 1:
        raise ValueError(f"max_connections must be at least 1, got {max_connections}")
    key = (base, max_connections)
    if key not in _CAPPED:
        name = f"{base.__name__}Max{max_connections}"
        attrs = {"max_connections": max_connections, "__module__": __name__}
        _CAPPED[key] = type(name, (base,), attrs)
    return _CAPPED[key]
