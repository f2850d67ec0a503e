"""Benchmark: the simulator against a minimal Starlette baseline on the same uvicorn config.

Each server runs in its own subprocess (one uvicorn worker, the same Config: ``log_level=warning``,
``access_log=False``, ``lifespan=off``). The load comes from this process over loopback, through
a minimal asyncio HTTP/1.1 keep-alive client: an ``httpx2.AsyncClient`` tops out near 1,300
requests/s in one process, so it would measure itself rather than the server.

Phases (bounded in count and in time): non-streaming requests and streaming requests, each run
against the baseline and then the simulator after a short warm-up; it prints requests/s, p50 and
p99 latency, and the simulator/baseline ratio. Run with ``make bench`` or::

    .venv/bin/python benchmarks/bench_simulator.py [--requests 3000] [--stream-requests 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import selectors
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from chatcontract.simulator import create_app
from chatcontract.simulator.answers import answer_for

PROMPT = "Say hello to the benchmark and describe the contract in one sentence."
API_KEY = "sk-chatcontract-local"
PHASE_TIMEOUT_S = 120.0
STARTUP_TIMEOUT_S = 15.0


# --- servers (run in subprocesses) --------------------------------------------------------------


def _baseline_app(stream_events: int) -> Starlette:
    """A minimal Starlette app: a fixed JSON body, and a fixed SSE stream of the same length."""
    body = b'{"hello":"world"}'
    event = b"data: " + b'{"object":"chat.completion.chunk","choices":[]}'.ljust(300) + b"\n\n"

    async def events() -> AsyncIterator[bytes]:
        for _ in range(stream_events):
            yield event
        yield b"data: [DONE]\n\n"

    async def chat(request: Request) -> Response:
        payload = await request.body()
        if b'"stream":true' in payload:
            return StreamingResponse(events(), media_type="text/event-stream")
        return Response(body, media_type="application/json")

    return Starlette(routes=[Route("/v1/chat/completions", chat, methods=["POST"])])


def _serve(kind: str, stream_events: int) -> None:
    """Bind a free loopback port, print it, and serve until terminated."""
    app = create_app() if kind == "simulator" else _baseline_app(stream_events)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # TCP_NODELAY
    sock.bind(("127.0.0.1", 0))
    sock.listen(2048)
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])


class ServerProcess:
    """A server subprocess; ``port`` is read from its first stdout line (bounded)."""

    def __init__(self, kind: str, stream_events: int) -> None:
        argv = [sys.executable, __file__, "--serve", kind, "--stream-events", str(stream_events)]
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        self.port = self._read_port()

    def _read_port(self) -> int:
        assert self.proc.stdout is not None
        selector = selectors.DefaultSelector()
        selector.register(self.proc.stdout, selectors.EVENT_READ)
        try:
            if not selector.select(STARTUP_TIMEOUT_S):
                self.close()
                raise SystemExit("server subprocess did not report its port in time")
        finally:
            selector.close()
        line = self.proc.stdout.readline()
        if not line.startswith("PORT "):
            self.close()
            raise SystemExit(f"server subprocess failed to start: {line!r}")
        return int(line.split()[1])

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


# --- the load driver ----------------------------------------------------------------------------


def _request(body: bytes) -> bytes:
    return (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Authorization: Bearer " + API_KEY.encode() + b"\r\n"
        b"Content-Type: application/json\r\nContent-Length: "
        + str(len(body)).encode()
        + b"\r\n\r\n"
        + body
    )


async def _read_response(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    """Read one HTTP/1.1 response (Content-Length or chunked) from a keep-alive connection."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    headers: dict[bytes, bytes] = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    if b"content-length" in headers:
        return status, await reader.readexactly(int(headers[b"content-length"]))
    parts: list[bytes] = []
    while True:
        size = int((await reader.readuntil(b"\r\n")).strip(), 16)
        data = await reader.readexactly(size + 2)
        if size == 0:
            return status, b"".join(parts)
        parts.append(data[:-2])


@dataclass(frozen=True, slots=True, kw_only=True)
class Result:
    name: str
    requests: int
    seconds: float
    latencies_ms: Sequence[float]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds

    def percentile(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _drive(port: int, payload: bytes, count: int, concurrency: int, check: bytes) -> Result:
    request = _request(payload)
    remaining = iter(range(count))
    latencies: list[float] = []

    async def worker() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for _ in remaining:
                started = time.perf_counter()
                writer.write(request)
                status, body = await _read_response(reader)
                latencies.append((time.perf_counter() - started) * 1000)
                if status != 200 or check not in body:
                    raise SystemExit(f"unexpected response: {status} {body[:200]!r}")
        finally:
            writer.close()
            await writer.wait_closed()

    started = time.perf_counter()
    await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(concurrency))), PHASE_TIMEOUT_S)
    return Result(
        name="", requests=count, seconds=time.perf_counter() - started, latencies_ms=latencies
    )


def _phase(port: int, payload: bytes, count: int, concurrency: int, check: bytes) -> Result:
    asyncio.run(_drive(port, payload, min(200, count), concurrency, check))  # warm-up
    return asyncio.run(_drive(port, payload, count, concurrency, check))


def _row(label: str, result: Result) -> str:
    return (
        f"  {label:<34} {result.requests:>6} {result.rps:>9,.0f} "
        f"{result.percentile(0.50):>8.2f} {result.percentile(0.99):>8.2f}"
    )


def _installed(module: str) -> str:
    return "yes" if importlib.util.find_spec(module) else "no"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000, help="non-streaming requests")
    parser.add_argument("--stream-requests", type=int, default=1000, help="streaming requests")
    parser.add_argument("--concurrency", type=int, default=16, help="keep-alive connections")
    parser.add_argument("--serve", choices=("simulator", "baseline"), help=argparse.SUPPRESS)
    parser.add_argument("--stream-events", type=int, default=20, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    messages = [{"role": "user", "content": PROMPT}]
    # role chunk + one per token + finish chunk + usage chunk: the baseline streams as many events.
    stream_events = len(answer_for(messages).pieces) + 3
    if args.serve:
        _serve(args.serve, args.stream_events)
        return 0

    plain = orjson.dumps({"model": "gpt-4o-mini", "messages": messages})
    streaming = orjson.dumps(
        {
            "model": "gpt-4o-mini",
            "messages": messages,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    )
    print(
        f"chatcontract simulator benchmark: 1 uvicorn worker per server subprocess, "
        f"driver = this process, {args.concurrency} keep-alive connections over loopback"
    )
    print(
        f"  python {sys.version.split()[0]}, cpus {os.cpu_count()}, "
        f"uvloop installed: {_installed('uvloop')}, httptools installed: {_installed('httptools')}"
    )
    print(f"  {'':<34} {'count':>6} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8}")
    results: dict[tuple[str, str], Result] = {}
    for kind in ("baseline", "simulator"):
        server = ServerProcess(kind, stream_events)
        try:
            results[kind, "plain"] = _phase(
                server.port, plain, args.requests, args.concurrency, b"{"
            )
            results[kind, "stream"] = _phase(
                server.port, streaming, args.stream_requests, args.concurrency, b"data: [DONE]"
            )
        finally:
            server.close()
    labels = {
        ("baseline", "plain"): "baseline  non-stream (hello JSON)",
        ("simulator", "plain"): "simulator non-stream",
        ("baseline", "stream"): f"baseline  stream ({stream_events} events)",
        ("simulator", "stream"): f"simulator stream ({stream_events} events)",
    }
    for mode in ("plain", "stream"):
        for kind in ("baseline", "simulator"):
            print(_row(labels[kind, mode], results[kind, mode]))
        ratio = results["simulator", mode].rps / results["baseline", mode].rps
        name = "non-stream" if mode == "plain" else "stream"
        print(f"  {name}: simulator/baseline = {ratio:.2f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
