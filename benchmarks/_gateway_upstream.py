"""The gateway benchmark's upstream: the simulator's answers, served canned from raw asyncio.

The bytes come from the real simulator (``chatcontract.simulator.create_app``, flavor
``cometapi``, scenario ``ok``), captured once at start-up through ``httpx2.ASGITransport`` for
the benchmark's prompt: the non-streaming completion, and the default stream with and without
``stream_options.include_usage``. Each captured body is served byte for byte as the simulator
sends it (the stream as one HTTP chunk per SSE event, written back to back as the simulator's
``ok`` plan does, plus the ``[DONE]`` event), with the simulator's own response headers. Only the
envelope differs from a live simulator: every response repeats the captured ``id``/``created``.

Why canned: the upstream shares the machine's two cores with the proxy under test and the load
generator, so it must cost next to nothing (a raw ``asyncio.Protocol``, no HTTP library, on
uvloop when it is installed). Every key is accepted; any path ending in ``/chat/completions``
answers; anything else is a 404.

Run::

    python benchmarks/_gateway_upstream.py --port 8790 [--event-gap-ms 0]
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import socket
from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx2
import orjson

MODEL = "gpt-4.1-nano"
PROMPT = "Say hello to the benchmark in one sentence."
PATH = "/v1/chat/completions"
T = TypeVar("T")
DONE_EVENT = b"data: [DONE]\n\n"
#: Response headers a hop must not copy (the canned server frames the body itself).
_HOP_HEADERS = frozenset({b"content-length", b"transfer-encoding", b"connection", b"date"})


def request_body(*, stream: bool) -> bytes:
    """The benchmark's request: one short user turn; streams ask for usage."""
    body: dict[str, object] = {"model": MODEL, "messages": [{"role": "user", "content": PROMPT}]}
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return orjson.dumps(body)


@dataclass(frozen=True, slots=True)
class Canned:
    """One captured answer: its status line and headers, and its body (events for a stream)."""

    head: bytes
    parts: tuple[bytes, ...]
    stream: bool


def _head(status: int, headers: list[tuple[bytes, bytes]], *, framing: bytes) -> bytes:
    lines = [f"HTTP/1.1 {status} OK".encode()]
    lines += [k + b": " + v for k, v in headers if k.lower() not in _HOP_HEADERS]
    lines.append(framing)
    return b"\r\n".join(lines) + b"\r\n\r\n"


def _split_events(body: bytes) -> tuple[bytes, ...]:
    events = [event + b"\n\n" for event in body.split(b"\n\n") if event]
    if b"".join(events) != body:
        raise RuntimeError("the simulator's stream is not a sequence of SSE events")
    return tuple(events)


async def capture() -> dict[tuple[bool, bool], Canned]:
    """Ask the real simulator, in-process, for the benchmark's answers.

    Keys are ``(stream, include_usage)``.
    """
    from chatcontract.simulator import DEFAULT_API_KEY, create_app

    app = create_app(flavor="cometapi", scenario="ok")
    transport = httpx2.ASGITransport(app=app)
    canned: dict[tuple[bool, bool], Canned] = {}
    for stream, usage in ((False, False), (True, False), (True, True)):
        payload = orjson.loads(request_body(stream=stream))
        if stream and not usage:
            del payload["stream_options"]
        response = await _ask(transport, DEFAULT_API_KEY, orjson.dumps(payload))
        if response.status_code != 200:
            raise RuntimeError(f"the simulator answered {response.status_code}")
        raw = list(response.headers.raw)
        body = response.content
        if stream:
            events = _split_events(body)
            if events[-1] != DONE_EVENT:
                raise RuntimeError("the simulator's default stream did not end with [DONE]")
            head = _head(200, raw, framing=b"transfer-encoding: chunked")
            canned[(True, usage)] = Canned(head, events, True)
        else:
            head = _head(200, raw, framing=f"content-length: {len(body)}".encode())
            canned[(False, False)] = Canned(head, (body,), False)
    return canned


async def _ask(transport: httpx2.ASGITransport, key: str, body: bytes) -> httpx2.Response:
    async with httpx2.AsyncClient(transport=transport, base_url="http://simulator") as client:
        return await client.post(
            PATH, content=body, headers={"authorization": f"Bearer {key}"}, timeout=10
        )


_NOT_FOUND_BODY = b'{"error":{"message":"no such route","type":"invalid_request_error"}}'
_NOT_FOUND = (
    b"HTTP/1.1 404 Not Found\r\ncontent-type: application/json\r\n"
    + f"content-length: {len(_NOT_FOUND_BODY)}\r\n\r\n".encode()
    + _NOT_FOUND_BODY
)


class _Upstream(asyncio.Protocol):
    """HTTP/1.1 keep-alive, just enough of it: Content-Length request bodies, no pipelining."""

    def __init__(
        self, canned: dict[tuple[bool, bool], Canned], gap_s: float, one_write: bool = False
    ) -> None:
        self.canned = canned
        self.gap_s = gap_s
        self.one_write = one_write
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # uvloop's is not a subclass
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end]
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            self._answer(head.split(b" ", 2)[1], body)

    def _answer(self, target: bytes, body: bytes) -> None:
        transport = self.transport
        assert transport is not None
        if not target.split(b"?")[0].rstrip(b"/").endswith(b"/chat/completions"):
            transport.write(_NOT_FOUND)
            return
        request = orjson.loads(body)
        stream = bool(request.get("stream"))
        usage = stream and bool((request.get("stream_options") or {}).get("include_usage"))
        canned = self.canned[(stream, usage)]
        if not canned.stream:
            transport.write(canned.head + canned.parts[0])
            return
        if self.gap_s > 0:
            asyncio.get_running_loop().create_task(self._paced(transport, canned))
            return
        chunks = [b"%x\r\n%b\r\n" % (len(event), event) for event in canned.parts]
        if self.one_write:  # the whole answer in one write: read in one piece, run after run
            transport.write(b"".join([canned.head, *chunks, b"0\r\n\r\n"]))
            return
        transport.write(canned.head)
        for chunk in chunks:
            transport.write(chunk)
        transport.write(b"0\r\n\r\n")

    async def _paced(self, transport: asyncio.Transport, canned: Canned) -> None:
        transport.write(canned.head)
        for event in canned.parts:
            await asyncio.sleep(self.gap_s)
            if transport.is_closing():
                return
            transport.write(b"%x\r\n%b\r\n" % (len(event), event))
        transport.write(b"0\r\n\r\n")


async def serve(host: str, port: int, gap_s: float, one_write: bool = False) -> None:
    """Serve the captured answers on ``host:port`` until SIGTERM or SIGINT."""
    canned = await capture()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: _Upstream(canned, gap_s, one_write), host, port, backlog=512
    )
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"upstream ready on http://{host}:{port}", flush=True)
    async with server:
        await stop.wait()


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` on uvloop when it is installed, else on asyncio's default loop."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(coro)
    return uvloop.run(coro)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--event-gap-ms",
        type=float,
        default=0.0,
        help="wait between stream events (default 0: back to back, as the simulator's ok plan)",
    )
    parser.add_argument(
        "--one-write",
        action="store_true",
        help="write each stream in one piece (the reader gets it in one read, run after run: "
        "for instruction counts under callgrind)",
    )
    args = parser.parse_args()
    run(serve(args.host, args.port, args.event_gap_ms / 1000, args.one_write))


if __name__ == "__main__":
    main()
