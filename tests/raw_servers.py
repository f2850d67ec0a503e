"""Hand-written HTTP/1.1 servers on 127.0.0.1 for faults a real framework will not produce:
response heads dripped one byte at a time, bodies trickled, keep-alive connections dropped
without ``Connection: close``.

Each ``RawServer`` runs an asyncio server in its own thread and gives every connection to an
``async handler(reader, writer, server)``; everything is bounded in time (each handler loop
ends when the client goes away, and ``close()`` cancels what is left).
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import socket
import struct
import threading
import time
import zlib
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import orjson

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "RawServer"], Awaitable[None]]

COMPLETION = orjson.dumps(
    {
        "id": "chatcmpl-raw-1",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4.1-nano",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "pong"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 1, "total_tokens": 13},
    }
)
SERVER_ERROR = b'{"error":{"message":"upstream failed","type":"server_error","code":"boom"}}'


class RawServer:
    """An asyncio TCP server on a free 127.0.0.1 port, run in a thread.

    Attributes:
        requests: how many requests the handlers read (``read_request`` counts them).
        connections: how many connections were accepted.
    """

    def __init__(self, handler: Handler) -> None:
        self._handler = handler
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0
        self.requests = 0
        self.connections = 0
        self.state: dict[str, Any] = {}

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def url(self) -> str:
        return self.base_url + "/chat/completions"

    def start(self) -> RawServer:
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._open(), self._loop)
        future.result(timeout=5)
        return self

    async def _open(self) -> None:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        if task is not None:
            self._tasks.add(task)
        try:
            await asyncio.wait_for(self._handler(reader, writer, self), timeout=30)
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.transport.abort()  # closes the socket now, whatever state it is in
            if task is not None:
                self._tasks.discard(task)

    async def _shutdown(self) -> None:
        if self._server is not None:
            self._server.close()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        # Let each handler's ``finally`` close its socket before the loop stops.
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def __enter__(self) -> RawServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def raw_server(handler: Handler) -> Iterator[RawServer]:
    """A started ``RawServer`` for the block."""
    with RawServer(handler) as server:
        yield server


async def read_request(reader: asyncio.StreamReader, server: RawServer) -> bytes | None:
    """One request's head and body (Content-Length framing); None when the client closed."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    length = 0
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    body = await reader.readexactly(length) if length else b""
    server.requests += 1
    return body


async def read_request_fields(
    reader: asyncio.StreamReader, server: RawServer
) -> tuple[dict[bytes, bytes], bytes] | None:
    """One request's header fields (lower-case names) and body (Content-Length framing);
    None when the client closed."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    fields = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        fields[name.strip().lower()] = value.strip()
    length = int(fields.get(b"content-length", b"0"))
    body = await reader.readexactly(length) if length else b""
    server.requests += 1
    return fields, body


def response(
    status: int,
    body: bytes,
    *,
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> bytes:
    """A keep-alive HTTP/1.1 response (no ``Connection: close``)."""
    reason = {200: "OK", 500: "Internal Server Error"}.get(status, "Status")
    extra = "".join(f"{name}: {value}\r\n" for name, value in (headers or {}).items())
    head = (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\n{extra}"
        f"content-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


def reset(writer: asyncio.StreamWriter) -> None:
    """Drop the connection with a TCP reset (SO_LINGER 0), not a clean close."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def drip(writer: asyncio.StreamWriter, data: bytes, interval_s: float) -> None:
    """Write ``data`` one byte at a time, ``interval_s`` apart."""
    for index in range(len(data)):
        writer.write(data[index : index + 1])
        await writer.drain()
        await asyncio.sleep(interval_s)


def dripping_head(interval_s: float = 0.1, header_bytes: int = 300) -> Handler:
    """Reads the request, then sends the response head one byte per ``interval_s`` (each byte
    arrives well within any read timeout; the whole head takes ``header_bytes`` intervals)."""

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: RawServer
    ) -> None:
        if await read_request(reader, server) is None:
            return
        head = b"HTTP/1.1 200 OK\r\nx-slow: " + b"a" * header_bytes + b"\r\n"
        await drip(writer, head, interval_s)

    return handler


def trickling_body(
    interval_s: float, *, content_type: str = "application/json", size: int = 1000
) -> Handler:
    """Reads the request, sends a complete head at once, then the body one byte per
    ``interval_s`` (``size`` bytes announced, never all sent in time)."""

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: RawServer
    ) -> None:
        if await read_request(reader, server) is None:
            return
        writer.write(
            f"HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\n"
            f"content-length: {size}\r\n\r\n".encode()
        )
        await writer.drain()
        await drip(writer, b":" * size, interval_s)

    return handler


def content_every(interval_s: float) -> Handler:
    """Reads the request, sends an SSE head, then one content event every ``interval_s``
    until the client goes away: data keeps flowing, the answer never ends."""

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: RawServer
    ) -> None:
        if await read_request(reader, server) is None:
            return
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"
        )
        while True:
            writer.write(content_event("x") + b"\n")
            await writer.drain()
            await asyncio.sleep(interval_s)

    return handler


def gzips_when_accepted(stream_body: bytes) -> Handler:
    """A server that honours ``Accept-Encoding``: the answer (``COMPLETION``, or
    ``stream_body`` as SSE when the request says ``"stream": true``) is gzip-compressed when
    the request accepts gzip, and sent as it is otherwise. ``server.state["encodings"]``
    lists the ``Accept-Encoding`` of each request."""

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: RawServer
    ) -> None:
        while (request := await read_request_fields(reader, server)) is not None:
            fields, body = request
            accepted = fields.get(b"accept-encoding", b"").decode()
            server.state.setdefault("encodings", []).append(accepted)
            streamed = b'"stream":true' in body.replace(b" ", b"")
            answer = stream_body if streamed else COMPLETION
            extra = ""
            if "gzip" in accepted:
                answer = gzip.compress(answer)
                extra = "content-encoding: gzip\r\n"
            kind = "text/event-stream" if streamed else "application/json"
            writer.write(
                f"HTTP/1.1 200 OK\r\ncontent-type: {kind}\r\n{extra}"
                f"content-length: {len(answer)}\r\n\r\n".encode()
                + answer
            )
            await writer.drain()

    return handler


def coded_answer(
    pieces: Callable[[], Iterator[bytes]],
    *,
    encoding: str | tuple[str, ...] = "gzip",
    content_type: str = "application/json",
    status: int = 200,
) -> Handler:
    """Answers every request (keep-alive) with ``content-encoding: encoding`` whatever it asked
    for (a tuple: one ``content-encoding`` line per value), and a chunked body: each of the
    pieces ``pieces()`` yields (made lazily, so a huge body is never held) is one HTTP chunk,
    written as the client reads.
    ``server.state["encodings"]`` lists the ``Accept-Encoding`` of each request."""
    lines = (encoding,) if isinstance(encoding, str) else encoding
    coding_lines = "".join(f"content-encoding: {line}\r\n" for line in lines)

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: RawServer
    ) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return
            fields = {}
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                fields[name.strip().lower()] = value.strip()
            length = int(fields.get(b"content-length", b"0"))
            if length:
                await reader.readexactly(length)
            server.requests += 1
            server.state.setdefault("encodings", []).append(
                fields.get(b"accept-encoding", b"").decode()
            )
            writer.write(
                f"HTTP/1.1 {status} Status\r\ncontent-type: {content_type}\r\n"
                f"{coding_lines}transfer-encoding: chunked\r\n\r\n".encode()
            )
            for piece in pieces():
                if piece:
                    writer.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                    await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()

    return handler


def _stream_chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
    chunk = {
        "id": "chatcmpl-gz",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4.1-nano",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        **extra,
    }
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


_WORDS = [f"w{i} " for i in range(40)]
#: A complete SSE answer, one event per item: the role, 40 words (``STREAM_TEXT``), the finish
#: with usage (52 tokens), ``[DONE]``.
STREAM_EVENTS = [
    _stream_chunk({"role": "assistant", "content": ""}),
    *(_stream_chunk({"content": word}) for word in _WORDS),
    _stream_chunk(
        {}, "stop", usage={"prompt_tokens": 12, "completion_tokens": 40, "total_tokens": 52}
    ),
    b"data: [DONE]\n\n",
]
STREAM_TEXT = "".join(_WORDS)


async def write_chunked(writer: asyncio.StreamWriter, pieces: list[bytes]) -> None:
    """``pieces`` as a chunked body, each (non-empty) piece its own chunk, then its end."""
    for piece in pieces:
        if piece:
            writer.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
            await writer.drain()
    writer.write(b"0\r\n\r\n")
    await writer.drain()


def gzips_anyway() -> Handler:
    """A server that gzips its answer whatever the request accepts: ``COMPLETION``, or
    ``STREAM_EVENTS`` as one gzip stream flushed per event (``gzip_events``) when the request
    says ``"stream": true``; chunked, keep-alive. ``server.state["encodings"]`` lists the
    ``Accept-Encoding`` of each request."""

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: RawServer
    ) -> None:
        while (request := await read_request_fields(reader, server)) is not None:
            fields, body = request
            server.state.setdefault("encodings", []).append(
                fields.get(b"accept-encoding", b"").decode()
            )
            streamed = orjson.loads(body).get("stream") is True
            pieces = list(gzip_events(STREAM_EVENTS)) if streamed else [gzip.compress(COMPLETION)]
            kind = "text/event-stream" if streamed else "application/json"
            writer.write(
                f"HTTP/1.1 200 OK\r\ncontent-type: {kind}\r\ncontent-encoding: gzip\r\n"
                "transfer-encoding: chunked\r\n\r\n".encode()
            )
            await write_chunked(writer, pieces)

    return handler


def labelled(
    content_type: str | None, pieces: list[bytes], *, coding: str | None = None
) -> Handler:
    """Answers every request (streamed or not) with ``pieces`` as one 200 body labelled
    ``content_type`` (None: no ``Content-Type`` at all), each piece its own chunk, and
    ``coding`` as its ``Content-Encoding`` when given; chunked, keep-alive. A relay that
    mislabels a stream: ``labelled("application/json", STREAM_EVENTS)``; a provider that
    ignores ``stream``: ``labelled("application/json", [COMPLETION])``."""
    head = "HTTP/1.1 200 OK\r\n"
    if content_type is not None:
        head += f"content-type: {content_type}\r\n"
    if coding is not None:
        head += f"content-encoding: {coding}\r\n"
    head += "transfer-encoding: chunked\r\n\r\n"

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: RawServer
    ) -> None:
        while await read_request(reader, server) is not None:
            writer.write(head.encode())
            await write_chunked(writer, pieces)

    return handler


def gzip_events(events: list[bytes], *, level: int = 6) -> Iterator[bytes]:
    """``events`` as ONE gzip stream, flushed after each event (``Z_SYNC_FLUSH``), so every
    piece decodes to whole events as it arrives, as a compressing proxy sends a stream."""
    packer = zlib.compressobj(level, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    for event in events:
        yield packer.compress(event) + packer.flush(zlib.Z_SYNC_FLUSH)
    yield packer.flush()


def gzip_zeros(total: int, *, piece: int = 1 << 20) -> Iterator[bytes]:
    """A gzip stream of ``total`` zero bytes, compressed a piece at a time (a decompression
    bomb of about ``total / 1000`` bytes on the wire, never held whole)."""
    packer = zlib.compressobj(9, zlib.DEFLATED, zlib.MAX_WBITS | 16)
    zeros = bytes(piece)
    for _ in range(total // piece):
        out = packer.compress(zeros)
        if out:
            yield out
    yield packer.flush()


def endless_body(total: int = 256 * 1024 * 1024) -> Handler:
    """Reads the request, announces a 200 JSON body of ``total`` bytes and sends it as fast as
    the client reads it (``server.state["sent"]``: how many body bytes were written)."""

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: RawServer
    ) -> None:
        if await read_request(reader, server) is None:
            return
        writer.write(
            f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            f"content-length: {total}\r\n\r\n".encode()
        )
        piece = b" " * 65536
        server.state["sent"] = 0
        for _ in range(total // len(piece)):
            writer.write(piece)
            await writer.drain()
            server.state["sent"] += len(piece)

    return handler


def drops_reused_connections(
    answers: list[bytes], *, how: str = "close", drop_first: bool = False
) -> Handler:
    """Answers the first request of each connection with the next of ``answers`` (keep-alive,
    no ``Connection: close``), and drops the connection (``how``: ``close`` or ``reset``) when
    a second request arrives on it, before any byte of an answer. ``drop_first``: drop even
    the first request of every connection (a server that is simply broken)."""
    queue = list(answers)

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: RawServer
    ) -> None:
        served = 0
        while True:
            if await read_request(reader, server) is None:
                return
            if served or drop_first:
                if how == "reset":
                    reset(writer)
                else:
                    writer.close()
                return
            writer.write(queue.pop(0) if queue else response(200, COMPLETION))
            await writer.drain()
            served += 1

    return handler


def in_order(answers: list[bytes], *, then_close: bool = False) -> Handler:
    """Answers the requests with ``answers`` in turn (the last one repeats), keep-alive;
    ``then_close``: close the connection after each answer (for raw bodies without framing)."""
    queue = list(answers)

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: RawServer
    ) -> None:
        while await read_request(reader, server) is not None:
            writer.write(queue.pop(0) if len(queue) > 1 else queue[0])
            await writer.drain()
            if then_close:
                return

    return handler


def content_event(content: str) -> bytes:
    """One ``data:`` line of a chat chunk carrying ``content`` (without its blank line)."""
    chunk = {
        "id": "chatcmpl-abandon",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4.1-nano",
        "choices": [{"index": 0, "delta": {"content": content}, "finish_reason": None}],
    }
    return b"data: " + orjson.dumps(chunk) + b"\n"


def stall_after_a_torn_event(head: str, tail: str, *, silent_s: float) -> Handler:
    """A stream of one whole event (``head``) and one whose blank line never comes (``tail``),
    then silence until the peer goes away (at most ``silent_s``)."""

    async def handle(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: RawServer
    ) -> None:
        if await read_request(reader, server) is None:
            return
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"
            + content_event(head)
            + b"\n"  # a whole event
            + content_event(tail)  # its blank line never comes: complete only when the body ends
        )
        await writer.drain()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(reader.read(1), timeout=silent_s)

    return handle


def timeouts_counted(registry: Any) -> dict[tuple[str, str], float]:
    """``llm_client_timeout_total`` by (route, code) in a Prometheus ``registry``: what the
    client and the gateway counted when the caller abandoned a stalled stream."""
    counted: dict[tuple[str, str], float] = {}
    for metric in registry.collect():
        for sample in metric.samples:
            if sample.name == "llm_client_timeout_total" and sample.value:
                key = (sample.labels["route"], sample.labels["code"])
                counted[key] = counted.get(key, 0.0) + sample.value
    return counted


def read_to_close(sock: socket.socket, within_s: float = 10.0) -> bytes:
    """What a server sends on ``sock`` until it closes it (or resets it), for at most
    ``within_s`` (each read bounded by the socket's own timeout); the socket is closed."""
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


def quiet_between(before: list[bytes], after: list[bytes], *, quiet_s: float) -> Handler:
    """A stream as a proxy relays a slow model (LiteLLM): the SSE head and the events of
    ``before`` at once, then silence for ``quiet_s`` (less if the client goes away first),
    then the events of ``after``; a streamed request only (others get ``COMPLETION``). With
    ``before`` empty the head comes after the silence too (no byte at all until then)."""

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: RawServer
    ) -> None:
        body = await read_request(reader, server)
        if body is None:
            return
        if not orjson.loads(body).get("stream"):
            writer.write(response(200, COMPLETION))
            await writer.drain()
            return
        head = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n"
        if before:
            writer.write(head + b"".join(before))
            await writer.drain()
        with contextlib.suppress(TimeoutError):
            if not await asyncio.wait_for(reader.read(1), timeout=quiet_s):
                return  # the client went away during the silence
        writer.write((b"" if before else head) + b"".join(after))
        await writer.drain()

    return handler


def late_answer(delay_s: float) -> Handler:
    """Reads the request and answers ``COMPLETION`` after ``delay_s`` of silence (a model
    slow to start behind a proxy that sends nothing before the whole answer), or not at all
    if the client goes away first."""

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: RawServer
    ) -> None:
        while await read_request(reader, server) is not None:
            with contextlib.suppress(TimeoutError):
                if not await asyncio.wait_for(reader.read(1), timeout=delay_s):
                    return  # the client went away
            writer.write(response(200, COMPLETION))
            await writer.drain()

    return handler
