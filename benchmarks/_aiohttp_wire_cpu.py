"""CPU per upstream call: chatcontract's transport stack on httpx2's wire against aiohttp's.

A companion of the gateway benchmarks (run by hand, bounded: a few seconds): a canned upstream
(raw asyncio, in its own process) answers the simulator-sized completion (about 700 bytes) and
a 25-event stream, one HTTP chunk per event. In this process, on uvloop, the same request goes
through each client stack, interleaved in rounds (a rotating order), at concurrency 1:

- ``httpx2``: ``httpx2.AsyncClient`` on ``AsyncHTTPTransport`` (httpcore2: h11 + anyio);
- ``aiohttp-wire``: ``httpx2.AsyncClient`` on ``AiohttpTransport`` (this package's);
- ``aiohttp-wire-no-hooks``: the same without its ``TraceConfig`` (what the timing hooks cost);
- ``instrumented+httpx2`` / ``instrumented+aiohttp-wire``: what the gateway runs per attempt,
  ``AsyncInstrumentedTransport`` (Exchange, stream parser) over the guard and the wire.

Reported: the median over rounds of this process's CPU (``time.process_time``) per request.

Run::

    .venv/bin/python benchmarks/_aiohttp_wire_cpu.py [--rounds 5] [--batch 300]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import statistics
import time
from collections.abc import Awaitable, Callable

import aiohttp
import httpx2
import orjson
import uvloop

from chatcontract.client._guard import AsyncGuardTransport
from chatcontract.contract import load_preset
from chatcontract.transport import AsyncInstrumentedTransport, install_backend
from chatcontract.transport._aiohttp import AiohttpTransport

CONTENT = "Here is a short answer. The model settles a stable shape for each reply. Again."
COMPLETION = orjson.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4.1-nano",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": CONTENT},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 12, "completion_tokens": 21, "total_tokens": 33},
    }
)


def _events() -> list[bytes]:
    base = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    words = CONTENT.split(" ")
    deltas = [{"role": "assistant", "content": ""}] + [
        {"content": (" " if i else "") + w} for i, w in enumerate(words[:21])
    ]
    chunks = [
        {**base, "choices": [{"index": 0, "delta": d, "finish_reason": None}]} for d in deltas
    ]
    chunks.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    chunks.append(
        {
            **base,
            "choices": [],
            "usage": {"prompt_tokens": 1, "completion_tokens": 21, "total_tokens": 22},
        }
    )
    return [b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks] + [b"data: [DONE]\n\n"]


def _serve(port: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    events = _events()
    plain = (
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
        b"content-length: %d\r\n\r\n" % len(COMPLETION) + COMPLETION
    )
    sse_head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    )

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                body = await reader.readexactly(length)
                if b'"stream":true' in body:
                    writer.write(sse_head)
                    for event in events:
                        writer.write(b"%x\r\n%s\r\n" % (len(event), event))
                        await writer.drain()
                    writer.write(b"0\r\n\r\n")
                else:
                    writer.write(plain)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port.put(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    uvloop.run(main())


async def measure(url: str, *, stream: bool, rounds: int, batch: int) -> dict[str, list[float]]:
    contract = load_preset("cometapi")
    body = orjson.dumps(
        {"model": "m", "messages": [{"role": "user", "content": "hi"}], "stream": stream}
    )
    headers = {"authorization": "Bearer sk-bench", "content-type": "application/json"}

    def httpx2_wire() -> httpx2.AsyncHTTPTransport:
        wire = httpx2.AsyncHTTPTransport()
        install_backend(wire, is_async=True)
        return wire

    def instrumented(wire: httpx2.AsyncBaseTransport) -> AsyncInstrumentedTransport:
        return AsyncInstrumentedTransport(
            contract=contract, inner=AsyncGuardTransport(wire, owns_inner=True)
        )

    clients = {
        "httpx2": httpx2.AsyncClient(transport=httpx2.AsyncHTTPTransport()),
        "aiohttp-wire": httpx2.AsyncClient(transport=AiohttpTransport()),
        "aiohttp-wire-no-hooks": httpx2.AsyncClient(
            transport=AiohttpTransport(trace_config=aiohttp.TraceConfig())
        ),
        "instrumented+httpx2": httpx2.AsyncClient(transport=instrumented(httpx2_wire())),
        "instrumented+aiohttp-wire": httpx2.AsyncClient(transport=instrumented(AiohttpTransport())),
    }

    def caller(client: httpx2.AsyncClient) -> Callable[[], Awaitable[None]]:
        async def call() -> None:
            request = client.build_request("POST", url, content=body, headers=headers)
            response = await client.send(request, stream=True)
            async for _ in response.aiter_raw():
                pass
            await response.aclose()

        return call

    calls = {name: caller(client) for name, client in clients.items()}
    results: dict[str, list[float]] = {name: [] for name in calls}
    for call in calls.values():
        for _ in range(50):  # warm-up: pools connected, caches filled
            await call()
    for index in range(rounds):
        names = list(calls)
        names = names[index % len(names) :] + names[: index % len(names)]
        for name in names:
            call = calls[name]
            started = time.process_time()
            for _ in range(batch):
                await call()
            results[name].append((time.process_time() - started) / batch * 1000)
    for client in clients.values():
        await client.aclose()
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--batch", type=int, default=300)
    args = parser.parse_args()
    queue: multiprocessing.Queue[int] = multiprocessing.Queue()
    upstream = multiprocessing.Process(target=_serve, args=(queue,), daemon=True)
    upstream.start()
    try:
        url = f"http://127.0.0.1:{queue.get(timeout=10)}/v1/chat/completions"
        for stream in (False, True):
            figures = uvloop.run(measure(url, stream=stream, rounds=args.rounds, batch=args.batch))
            mode = "streaming" if stream else "non-streaming"
            for name, values in figures.items():
                print(
                    f"{mode:13} {name:26} {statistics.median(values):.3f} CPU-ms/request "
                    f"(rounds: {' '.join(f'{v:.2f}' for v in values)})"
                )
    finally:
        upstream.terminate()
        upstream.join(5)


if __name__ == "__main__":
    main()
