"""Bounds on reading a request head, which uvicorn's ``httptools`` protocol has none of.

uvicorn times out only an idle keep-alive connection after a response: a new connection, or a
request head sent a byte at a time, or a head that never ends, is held for as long as the
client likes, and ``httptools`` buffers a header of any size (a client sending an endless
header grows the process without bound). Both happen before the gateway key is checked, so
any client that can reach the port can exhaust the process's file descriptors or memory.

``GuardedHttpToolsProtocol`` adds, per request head (from the connection, or from the first
byte of the next request on a kept-alive one, to the end of its headers):

- a deadline (``HEAD_TIMEOUT_S``): past it the connection gets a ``408`` and is closed (a
  connection that sent nothing is just closed, as uvicorn closes an idle kept-alive one);
- a size limit (``MAX_HEAD_BYTES``, request line and headers): above it, a ``431`` and the
  connection closed.

Both answers are OpenAI-shaped JSON, like the gateway's own. The body's deadline is the app's
(``app._read_body``). The ``h11`` fallback already bounds the head's size
(``h11_max_incomplete_event_size``).
"""

from __future__ import annotations

import asyncio

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .errors import GatewayError

__all__ = ["HEAD_TIMEOUT_S", "MAX_HEAD_BYTES", "GuardedHttpToolsProtocol"]

#: The longest a request head may take to arrive, in seconds.
HEAD_TIMEOUT_S = 30.0
#: The largest request head (request line and headers) accepted, in bytes.
MAX_HEAD_BYTES = 64 * 1024

_REASONS = {408: b"Request Timeout", 431: b"Request Header Fields Too Large"}


def _answer(error: GatewayError) -> bytes:
    body = error.body()
    return b"".join(
        [
            b"HTTP/1.1 %d %s\r\n" % (error.status, _REASONS[error.status]),
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"x-chatcontract-attempts: 0\r\n",
            b"x-chatcontract-route: none\r\n",
            b"x-chatcontract-classification: gateway/" + error.code.encode() + b"\r\n",
            b"connection: close\r\n\r\n",
            body,
        ]
    )


_HEAD_TIMEOUT = _answer(
    GatewayError(
        408,
        "request_timeout_error",
        "request_timeout",
        f"the request head did not arrive within {HEAD_TIMEOUT_S:g} s: send the whole request "
        "at once",
    )
)
_HEAD_TOO_LARGE = _answer(
    GatewayError(
        431,
        "request_too_large_error",
        "request_head_too_large",
        f"the request line and headers are over the gateway's limit of {MAX_HEAD_BYTES} bytes",
    )
)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's ``httptools`` protocol with a deadline and a size limit on each request head."""

    _head_open = False
    _head_bytes = 0
    _head_timer: asyncio.TimerHandle | None = None
    _head_started = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._await_head()

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._head_open:
            self._head_bytes += len(data)
        super().data_received(data)
        # Still in a head after this read: every byte counted was the head's.
        if self._head_open and self._head_bytes > MAX_HEAD_BYTES:
            self._refuse(_HEAD_TOO_LARGE)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if not self._head_open:  # pipelined: the previous message ended in this same read
            self._await_head()
        self._head_started = True

    def on_headers_complete(self) -> None:
        self._head_open = False
        self._stop_head_timer()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._await_head()

    # -- the head's bounds -----------------------------------------------------------------

    def _await_head(self) -> None:
        """A new head may start now: count its bytes, time it."""
        self._head_open = True
        self._head_bytes = 0
        self._head_started = False
        self._stop_head_timer()
        self._head_timer = self.loop.call_later(HEAD_TIMEOUT_S, self._head_timed_out)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_timed_out(self) -> None:
        self._head_timer = None
        if not self._head_open or self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            # The previous request is still being answered (a long stream): its response
            # comes first, and the next head is timed once that one is done.
            self._head_timer = self.loop.call_later(HEAD_TIMEOUT_S, self._head_timed_out)
            return
        if self._head_started or self._head_bytes:
            self._refuse(_HEAD_TIMEOUT)
        else:  # nothing sent: close quietly, as an idle kept-alive connection is
            self.transport.close()

    def _refuse(self, answer: bytes) -> None:
        self._head_open = False
        self._stop_head_timer()
        if not self.transport.is_closing():
            self.transport.write(answer)
            self.transport.close()
