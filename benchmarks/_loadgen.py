"""The gateway benchmark's load generator: a second process, cheap on CPU, bounded.

It speaks just enough HTTP/1.1 over asyncio streams (uvloop when installed) with keep-alive: one
connection per concurrent worker, a ``Content-Length`` request, a ``Content-Length``, chunked or
read-to-close response. Per request it records the wall time to the complete answer and, for a
stream, the time to the first token: the first SSE event whose delta carries content (the role
chunk that opens an OpenAI stream has none).

It runs phases on command: one JSON object per line on stdin, one JSON result per line on stdout,
so the caller can read the server's CPU counters right before and right after each phase::

    {"port": 8791, "stream": false, "requests": 500, "concurrency": 1, "time_limit_s": 30}
    -> {"ok": 500, "errors": 0, "first_error": null, "elapsed_s": 0.41,
        "latency_ms": [...], "ttft_ms": [...]}

A phase stops at ``requests`` answers or ``time_limit_s``, whichever comes first. An answer is
an error unless it is a 200 whose body is complete (a stream ends with ``data: [DONE]``).
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
import time

from _gateway_upstream import PATH, request_body, run

HOST = "127.0.0.1"
REQUEST_TIMEOUT_S = 10.0
DONE_TAIL = b"data: [DONE]\n\n"
#: The first content delta of an OpenAI stream (the role chunk's ``"content":""`` does not match).
FIRST_TOKEN = re.compile(rb'"delta"\s*:\s*\{\s*"content"\s*:\s*"[^"]')


def http_request(port: int, *, stream: bool, key: str) -> bytes:
    """The raw HTTP/1.1 request the load generator sends for one call."""
    body = request_body(stream=stream)
    head = (
        f"POST {PATH} HTTP/1.1\r\nhost: {HOST}:{port}\r\ncontent-type: application/json\r\n"
        f"authorization: Bearer {key}\r\ncontent-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class ResponseError(Exception):
    """An answer that is not a complete 200."""


async def _one(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes, *, stream: bool
) -> tuple[float, float | None, bool]:
    """Send one request; return (latency s, ttft s or None, keep the connection)."""
    start = time.perf_counter()
    writer.write(raw)
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head[:-4].split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    length: int | None = None
    chunked = False
    keep = True
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        value = value.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding" and b"chunked" in value:
            chunked = True
        elif name == b"connection" and value == b"close":
            keep = False
    ttft: float | None = None
    if chunked:
        parts: list[bytes] = []
        seen = b""
        while True:
            size = int((await reader.readline()).split(b";")[0], 16)
            if size == 0:
                while (await reader.readline()) not in (b"\r\n", b""):
                    pass  # trailers
                break
            data = (await reader.readexactly(size + 2))[:-2]
            parts.append(data)
            if ttft is None and stream:
                seen = seen[-64:] + data
                if FIRST_TOKEN.search(seen):
                    ttft = time.perf_counter() - start
        body = b"".join(parts)
    elif length is not None:
        body = await reader.readexactly(length)
        if stream and ttft is None and FIRST_TOKEN.search(body):
            ttft = time.perf_counter() - start
    else:
        body = await reader.read()
        keep = False
    latency = time.perf_counter() - start
    if status != 200:
        raise ResponseError(f"status {status}: {body[:200]!r}")
    if stream and not body.endswith(DONE_TAIL):
        raise ResponseError(f"stream did not end with [DONE]: {body[-120:]!r}")
    if not stream and b'"chat.completion"' not in body:
        raise ResponseError(f"not a chat completion: {body[:200]!r}")
    return latency, ttft, keep


async def phase(command: dict[str, object]) -> dict[str, object]:
    """Run one bounded phase of load against ``127.0.0.1:port``."""
    port = int(command["port"])  # type: ignore[call-overload]
    stream = bool(command["stream"])
    total = int(command["requests"])  # type: ignore[call-overload]
    concurrency = int(command.get("concurrency", 1))  # type: ignore[call-overload]
    deadline = time.perf_counter() + float(command.get("time_limit_s", 60))  # type: ignore[arg-type]
    raw = http_request(port, stream=stream, key=str(command.get("key", "sk-bench")))
    latencies: list[float] = []
    ttfts: list[float] = []
    errors: list[str] = []
    issued = 0

    async def worker() -> None:
        nonlocal issued
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        try:
            while issued < total and time.perf_counter() < deadline:
                issued += 1
                try:
                    if reader is None or writer is None:
                        reader, writer = await asyncio.open_connection(HOST, port)
                    latency, ttft, keep = await asyncio.wait_for(
                        _one(reader, writer, raw, stream=stream), REQUEST_TIMEOUT_S
                    )
                except (OSError, EOFError, ValueError, ResponseError, TimeoutError) as exc:
                    errors.append(f"{type(exc).__name__}: {exc}")
                    keep = False
                else:
                    latencies.append(latency * 1000)
                    if ttft is not None:
                        ttfts.append(ttft * 1000)
                if not keep:
                    if writer is not None:
                        writer.close()
                    reader = writer = None
        finally:
            if writer is not None:
                writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    return {
        "ok": len(latencies),
        "errors": len(errors),
        "first_error": errors[0] if errors else None,
        "elapsed_s": elapsed,
        "latency_ms": latencies,
        "ttft_ms": ttfts,
    }


async def serve_commands() -> None:
    """Answer one phase per stdin line until stdin closes."""
    loop = asyncio.get_running_loop()
    while True:
        line = await loop.run_in_executor(None, sys.stdin.readline)
        if not line:
            return
        result = await phase(json.loads(line))
        sys.stdout.write(json.dumps(result) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    run(serve_commands())
