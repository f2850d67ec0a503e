"""One connection of the fault relay: read the request, forward it, stage the fault.

``relay.FaultRelay`` owns the socket, the thread and the upstream client; this module is what
happens on each accepted connection (HTTP/1.1 parsed with h11, one request per connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import threading
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Literal, get_args

import h11
import httpx2
import orjson

__all__ = [
    "FAULTS",
    "FAULT_HEADER",
    "ID_HEADER",
    "MAX_RELEASE_MS",
    "RELAY_HEADER_PREFIX",
    "RELEASE_HEADER",
    "Fault",
    "RelayRecord",
    "Track",
    "first_event_end",
    "serve_connection",
]

Fault = Literal["pass", "hold", "stall", "cut"]
FAULTS: tuple[str, ...] = get_args(Fault)

RELAY_HEADER_PREFIX = "x-chatcontract-relay-"
FAULT_HEADER = "X-Chatcontract-Relay-Fault"
RELEASE_HEADER = "X-Chatcontract-Relay-Release-Ms"
ID_HEADER = "X-Chatcontract-Relay-Id"

MAX_RELEASE_MS = 120_000
_DEFAULT_RELEASE_MS = 30_000
_MAX_HEAD = 64 * 1024
_MAX_BODY = 16 * 1024 * 1024
_MAX_EVENT_SEARCH = 1024 * 1024  # give up staging if no event arrives in the first MiB
_READ_SIZE = 64 * 1024
_CLIENT_READ_S = 30.0  # a client that does not finish sending its request in time is dropped

# Hop-by-hop headers (RFC 9110 §7.6.1) and the ones the relay recomputes on each side.
_HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
_NOT_FORWARDED_UP = _HOP_BY_HOP | {b"host", b"content-length"}
# The body is forwarded decoded (so the relay can find SSE events) and re-framed as chunks.
_NOT_FORWARDED_DOWN = _HOP_BY_HOP | {b"content-length", b"content-encoding"}
_CONTROL_PREFIX = RELAY_HEADER_PREFIX.encode()

_BLANK_LINE = re.compile(rb"\r\n\r\n|\n\n|\r\r")


def first_event_end(buffer: bytes) -> int | None:
    """The offset just past the first complete SSE event carrying a ``data`` field, or None.

    Comment-only blocks (``: ping``) are not events: a stall or cut after one would prove
    nothing about the answer.
    """
    start = 0
    for match in _BLANK_LINE.finditer(buffer):
        block = buffer[start : match.start()]
        if any(line.startswith(b"data") for line in block.splitlines()):
            return match.end()
        start = match.end()
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class RelayRecord:
    """What the relay did with one request. No header, no body: nothing secret.

    Attributes:
        fault: the fault asked for.
        staged: the fault was applied (the answer held; or the stream stalled or cut after
            its first event). False when the endpoint's answer had no event to stage it on.
        staged_at: ``time.perf_counter()`` when the hold, stall or cut began (same process
            as the caller, so it can be compared with the caller's own clock).
        released: the hold or stall lasted until ``release`` and the rest was forwarded.
        client_left: the client closed its connection while the fault was staged.
        upstream_status: the endpoint's status, when it answered before the client left.
        upstream_content_type: its media type (no parameters).
        upstream_error: the exception class name when the endpoint could not be reached.
        events_forwarded: SSE events sent before the stall or cut.
    """

    fault: Fault
    staged: bool = False
    staged_at: float | None = None
    released: bool = False
    client_left: bool = False
    upstream_status: int | None = None
    upstream_content_type: str | None = None
    upstream_error: str | None = None
    events_forwarded: int = 0


class Track:
    """The mutable record of one request while the relay works on it (relay thread only;
    other threads read it through ``freeze()`` once ``done`` is set)."""

    __slots__ = (
        "client_left",
        "done",
        "events_forwarded",
        "fault",
        "released",
        "staged",
        "staged_at",
        "upstream_content_type",
        "upstream_error",
        "upstream_status",
    )

    def __init__(self, fault: Fault) -> None:
        self.fault: Fault = fault
        self.staged = False
        self.staged_at: float | None = None
        self.released = False
        self.client_left = False
        self.upstream_status: int | None = None
        self.upstream_content_type: str | None = None
        self.upstream_error: str | None = None
        self.events_forwarded = 0
        self.done = threading.Event()

    def stage(self) -> None:
        self.staged = True
        self.staged_at = time.perf_counter()

    def freeze(self) -> RelayRecord:
        return RelayRecord(
            fault=self.fault,
            staged=self.staged,
            staged_at=self.staged_at,
            released=self.released,
            client_left=self.client_left,
            upstream_status=self.upstream_status,
            upstream_content_type=self.upstream_content_type,
            upstream_error=self.upstream_error,
            events_forwarded=self.events_forwarded,
        )


class _BadRequestError(Exception):
    """The client's request cannot be relayed; ``status`` says how to answer it."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _header(request: h11.Request, name: str) -> str | None:
    wanted = name.lower().encode()
    for key, value in request.headers:
        if key == wanted:
            return bytes(value).decode("latin-1").strip()
    return None


def _fault_of(request: h11.Request) -> Fault:
    value = (_header(request, FAULT_HEADER) or "pass").lower()
    if value not in FAULTS:
        raise _BadRequestError(
            400, f"unknown relay fault {value!r}; use one of {', '.join(FAULTS)}"
        )
    return value  # type: ignore[return-value]  # checked against FAULTS just above


def _release_s(request: h11.Request) -> float:
    value = _header(request, RELEASE_HEADER)
    if value is None:
        return _DEFAULT_RELEASE_MS / 1000
    try:
        ms = float(value)
    except ValueError:
        raise _BadRequestError(400, f"{RELEASE_HEADER} must be a number of milliseconds") from None
    if not 0 <= ms <= MAX_RELEASE_MS:  # also refuses nan
        raise _BadRequestError(400, f"{RELEASE_HEADER} must be between 0 and {MAX_RELEASE_MS}")
    return ms / 1000


def _media_type(value: str | None) -> str | None:
    return None if value is None else value.split(";", 1)[0].strip().lower() or None


async def serve_connection(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    *,
    client: httpx2.AsyncClient,
    upstream: str,
    remember: Callable[[str, Track], None],
) -> None:
    """Relay one request from ``reader`` to ``upstream`` (an origin) and the answer back."""
    # A zero high-water mark makes drain() wait until the bytes reached the socket, so a
    # stall or cut really happens after the event was sent.
    writer.transport.set_write_buffer_limits(high=0)
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_HEAD)
    try:
        request, body = await asyncio.wait_for(_read_request(conn, reader), _CLIENT_READ_S)
        track = Track(_fault_of(request))
        release_s = _release_s(request)
        upstream_request = _upstream_request(client, upstream, request, body)
    except _BadRequestError as exc:
        await _send_error(conn, writer, exc.status, str(exc))
        return
    except h11.RemoteProtocolError:
        await _send_error(conn, writer, 400, "malformed HTTP request")
        return
    request_id = _header(request, ID_HEADER)
    if request_id:
        remember(request_id, track)
    session = _Session(conn=conn, writer=writer, track=track, release_s=release_s)
    try:
        await session.relay(client, upstream_request, reader)
    finally:
        track.done.set()


async def _read_request(
    conn: h11.Connection, reader: asyncio.StreamReader
) -> tuple[h11.Request, bytes]:
    request: h11.Request | None = None
    body = bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(await reader.read(_READ_SIZE))
        elif isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.Data):
            body += event.data
            if len(body) > _MAX_BODY:
                raise _BadRequestError(413, f"request body above {_MAX_BODY >> 20} MiB")
        elif isinstance(event, h11.EndOfMessage) and request is not None:
            return request, bytes(body)
        elif isinstance(event, h11.ConnectionClosed):
            raise ConnectionResetError("the client left before sending its request")


def _upstream_request(
    client: httpx2.AsyncClient, upstream: str, request: h11.Request, body: bytes
) -> httpx2.Request:
    target = bytes(request.target)
    if not target.startswith(b"/"):
        raise _BadRequestError(400, "the relay takes origin-form targets only (/path?query)")
    # Everything the client sent goes on untouched (the auth header included), except the
    # hop-by-hop headers, Host and Content-Length (httpx2 sets them) and the relay's own.
    headers = [
        (bytes(key), bytes(value))
        for key, value in request.headers
        if key not in _NOT_FORWARDED_UP and not key.startswith(_CONTROL_PREFIX)
    ]
    return client.build_request(
        bytes(request.method).decode("ascii"),
        upstream + target.decode("latin-1"),
        headers=headers,
        content=body,
    )


async def _until_client_leaves(reader: asyncio.StreamReader) -> None:
    """Returns when the client closed its side (HTTP/1.1 clients send nothing more)."""
    with contextlib.suppress(ConnectionError):
        while await reader.read(_READ_SIZE):
            pass


async def _write(writer: asyncio.StreamWriter, data: bytes | None) -> None:
    if data:
        writer.write(data)
        await writer.drain()


async def _send_error(
    conn: h11.Connection, writer: asyncio.StreamWriter, status: int, message: str
) -> None:
    """A small JSON error from the relay itself (only before any response byte was sent)."""
    if conn.our_state not in (h11.IDLE, h11.SEND_RESPONSE):
        return
    body = orjson.dumps(
        {"error": {"message": f"chatcontract relay: {message}", "type": "relay_error"}}
    )
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
    ]
    with contextlib.suppress(h11.LocalProtocolError, ConnectionError):
        await _write(writer, conn.send(h11.Response(status_code=status, headers=headers)))
        await _write(writer, conn.send(h11.Data(data=body)))
        await _write(writer, conn.send(h11.EndOfMessage()))


@dataclass(slots=True, kw_only=True)
class _Session:
    """The answer side of one relayed request."""

    conn: h11.Connection
    writer: asyncio.StreamWriter
    track: Track
    release_s: float

    async def relay(
        self,
        client: httpx2.AsyncClient,
        request: httpx2.Request,
        reader: asyncio.StreamReader,
    ) -> None:
        track = self.track
        opening = asyncio.ensure_future(client.send(request, stream=True))
        gone = asyncio.ensure_future(_until_client_leaves(reader))
        try:
            if track.fault == "hold":
                track.stage()  # the request is on its way; nothing goes back until release
                await asyncio.wait({gone}, timeout=self.release_s)
                if gone.done():
                    track.client_left = True
                    return
                track.released = True
            await asyncio.wait({opening, gone}, return_when=asyncio.FIRST_COMPLETED)
            if not opening.done():  # the client gave up before the endpoint answered
                track.client_left = True
                return
            try:
                response = opening.result()
            except httpx2.HTTPError as exc:
                track.upstream_error = type(exc).__name__
                message = f"the relay could not reach the endpoint ({track.upstream_error})"
                await _send_error(self.conn, self.writer, 502, message)
                return
            try:
                await self._forward(response, gone)
            finally:
                await response.aclose()
        finally:
            gone.cancel()
            opening.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await (await opening).aclose()

    async def _forward(self, response: httpx2.Response, gone: asyncio.Future[None]) -> None:
        track = self.track
        track.upstream_status = response.status_code
        track.upstream_content_type = _media_type(response.headers.get("content-type"))
        headers = [
            (key, value)
            for key, value in response.headers.raw
            if key.lower() not in _NOT_FORWARDED_DOWN
        ]
        headers.append((b"connection", b"close"))
        reason = response.reason_phrase.encode("latin-1", "replace")
        await self._send(
            h11.Response(status_code=response.status_code, headers=headers, reason=reason)
        )
        chunks = response.aiter_bytes()
        rest = b""
        if (
            track.fault in ("stall", "cut")
            and response.is_success
            and track.upstream_content_type == "text/event-stream"
        ):
            staged = await self._stage(chunks, gone)
            if staged is None:  # cut, or the client left during the stall
                return
            rest = staged
        if rest:
            await self._send(h11.Data(data=rest))
        async for chunk in chunks:
            if chunk:
                await self._send(h11.Data(data=chunk))
        await self._send(h11.EndOfMessage())

    async def _stage(
        self, chunks: AsyncIterator[bytes], gone: asyncio.Future[None]
    ) -> bytes | None:
        """Forward the first event, then stall or cut. Returns the bytes still to forward
        (the stream goes on), or None when the connection was cut or the client left."""
        track = self.track
        buffer = b""
        async for chunk in chunks:
            buffer += chunk
            end = first_event_end(buffer)
            if end is not None:
                break
            if len(buffer) > _MAX_EVENT_SEARCH:
                return buffer  # no event in sight: pass the stream through, not staged
        else:
            return buffer  # the stream ended before its first event: nothing to stage on
        await self._send(h11.Data(data=buffer[:end]))
        track.events_forwarded = 1
        track.stage()
        if track.fault == "cut":
            self.writer.close()  # FIN mid-body: no final chunk, as a dropped connection
            return None
        await asyncio.wait({gone}, timeout=self.release_s)
        if gone.done():
            track.client_left = True
            return None
        track.released = True
        return buffer[end:]

    async def _send(self, event: h11.Event) -> None:
        await _write(self.writer, self.conn.send(event))
