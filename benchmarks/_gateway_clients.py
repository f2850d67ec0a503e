"""Where an httpx2 upstream call spends its CPU: one client layer at a time, in one process.

A companion of ``bench_gateway.py`` (run by hand): the same canned upstream in a subprocess, and
in this process, on uvloop, the same request sent through each layer of the upstream client a
gateway could use, interleaved in rounds (a rotating order), at concurrency 1:

- ``httpx2.AsyncClient`` (what the floors and chatcontract's transport use);
- ``httpx2.AsyncHTTPTransport`` alone (no client: no URL merging, cookies, auth, redirects);
- ``httpcore2.AsyncConnectionPool`` alone (the pool, h11 and anyio underneath httpx2);
- ``httpx2.AsyncClient`` on an aiohttp transport (httpx2's API, aiohttp's C parser on the wire);
- ``aiohttp.ClientSession`` alone.

Reported: the median over rounds of this process's CPU (``time.process_time``) per request.

Run::

    .venv/bin/python benchmarks/_gateway_clients.py [--rounds 6] [--batch 500]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import httpcore2
import httpx2

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _gateway_floors import _CLIENTS, UPSTREAM_ENV, _aiohttp, _httpx2_over_aiohttp  # noqa: E402
from _gateway_upstream import PATH, request_body, run  # noqa: E402
from bench_gateway import Target, free_port  # noqa: E402

HEADERS = [(b"authorization", b"Bearer sk-bench"), (b"content-type", b"application/json")]


async def measure(port: int, *, stream: bool, rounds: int, batch: int) -> dict[str, list[float]]:
    url = f"http://127.0.0.1:{port}{PATH}"
    body = request_body(stream=stream)
    client = httpx2.AsyncClient()
    transport = httpx2.AsyncHTTPTransport()
    pool = httpcore2.AsyncConnectionPool()
    session: aiohttp.ClientSession = _aiohttp()
    hybrid = _httpx2_over_aiohttp()

    async def via_client(c: Any = client) -> None:
        response = await c.send(
            c.build_request("POST", url, content=body, headers=HEADERS), stream=True
        )
        async for _ in response.aiter_raw():
            pass
        await response.aclose()

    async def via_hybrid() -> None:
        await via_client(hybrid)

    async def via_transport() -> None:
        request = httpx2.Request("POST", url, content=body, headers=HEADERS)
        response = await transport.handle_async_request(request)
        async for _ in response.stream:  # type: ignore[union-attr]
            pass
        await response.aclose()

    async def via_pool() -> None:
        async with pool.stream("POST", url, content=body, headers=HEADERS) as response:
            async for _ in response.aiter_stream():
                pass

    async def via_aiohttp() -> None:
        headers = {k.decode(): v.decode() for k, v in HEADERS}
        async with session.post(url, data=body, headers=headers) as response:
            async for _ in response.content.iter_any():
                pass

    layers: dict[str, Callable[[], Awaitable[None]]] = {
        "httpx2.AsyncClient": via_client,
        "httpx2.AsyncHTTPTransport": via_transport,
        "httpcore2.AsyncConnectionPool": via_pool,
        "httpx2.AsyncClient on aiohttp": via_hybrid,
        "aiohttp.ClientSession": via_aiohttp,
    }
    results: dict[str, list[float]] = {name: [] for name in layers}
    for call in layers.values():
        for _ in range(50):  # warm-up: pools connected, caches filled
            await call()
    for index in range(rounds):
        names = list(layers)
        names = names[index % len(names) :] + names[: index % len(names)]
        for name in names:
            call = layers[name]
            started = time.process_time()
            for _ in range(batch):
                await call()
            results[name].append((time.process_time() - started) / batch * 1000)
    await client.aclose()
    await transport.aclose()
    await pool.aclose()
    await hybrid.aclose()
    await session.close()
    _CLIENTS.clear()  # bound to this event loop; the next mode runs on a new one
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--batch", type=int, default=500)
    args = parser.parse_args()
    port = free_port()
    upstream = Target(
        name="upstream",
        summary="",
        argv=[sys.executable, str(HERE / "_gateway_upstream.py"), "--port", str(port)],
        port=port,
    )
    os.environ[UPSTREAM_ENV] = f"http://127.0.0.1:{port}"
    with tempfile.TemporaryDirectory() as tmp:
        upstream.start(Path(tmp))
        try:
            upstream.wait_ready()
            for stream in (False, True):
                figures = run(measure(port, stream=stream, rounds=args.rounds, batch=args.batch))
                mode = "streaming" if stream else "non-streaming"
                for name, values in figures.items():
                    print(
                        f"{mode:13} {name:32} {statistics.median(values):.3f} CPU-ms/request "
                        f"(rounds: {' '.join(f'{v:.2f}' for v in values)})"
                    )
        finally:
            upstream.stop()


if __name__ == "__main__":
    main()
