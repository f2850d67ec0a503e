"""CPU per call of the gateway's ASGI app (or ``AsyncChatClient``, or the floor's app), in-process.

No HTTP server and no load generator: the app is called in a loop with a synthetic ASGI
scope, so what is measured is the app's own CPU plus its upstream client against the canned
upstream (``_gateway_upstream.py``, which must run in another process). On uvloop.

Prints ``process_time`` per call (µs) after ``--warmup`` calls. For a deterministic figure
run it twice under callgrind with two ``-n`` and take the difference::

    valgrind --tool=callgrind --callgrind-out-file=/dev/null \\
        python benchmarks/_gateway_inprocess.py --upstream-port 8790 -n 200

For streams, start the upstream with ``--one-write`` too: how back-to-back events coalesce
into reads otherwise varies from run to run. Pass ``--seed 0`` as well: the gateway
fingerprints the shapes of 1% of its calls, chosen by ``random``; unseeded, one more or one
fewer fingerprinted call in a run moves a stream's figure by tens of thousands (seeded, runs
of the same code agree within about 5 k).

Instructions alone under-predict the wall clock here: between two requests the server's,
the upstream client's and the other processes' work evict the gateway's code and data from the
core's 1 MiB L2, and the gateway runs more distinct code per request than a bare proxy. Give
callgrind this machine's caches to count those misses (``--cache-sim=yes --LL=1048576,8,64
--I1=32768,8,64 --D1=32768,8,64``), and ``--footprint`` (with ``-n 20``) counts the distinct
bytecode positions the calls run (``docs/gateway-performance.md``, "What the wall clock sees").

A/B between two checkouts: run this file with ``PYTHONPATH=OTHER/src`` (the other checkout's
package) in alternation with this one, against one upstream.

Run::

    python benchmarks/_gateway_upstream.py --port 8790 &
    python benchmarks/_gateway_inprocess.py --upstream-port 8790 --target gateway --stream
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import random
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _gateway_upstream import PROMPT, request_body

KEY_ENV = "OPENAI_API_KEY"
MESSAGES = [{"role": "user", "content": PROMPT}]


def _contract(path: Path, port: int) -> Any:
    """The openai preset (as ``bench_gateway.py`` writes it), pointed at the upstream."""
    import yaml

    from chatcontract.contract import load

    data = yaml.safe_load(path.read_text())
    data["endpoint"]["base_url"] = f"http://127.0.0.1:{port}/v1"
    data["fallbacks"] = []
    data["owner"] = "bench"
    out = path.with_name(f"inprocess-{os.getpid()}.yaml")
    out.write_text(yaml.safe_dump(data, sort_keys=False))
    try:
        return load(out)
    finally:
        out.unlink()


def _asgi_call(app: Any, body: bytes) -> Call:
    """One request through an ASGI app: returns the bytes of the response body."""
    headers = [
        (b"host", b"gateway"),
        (b"content-type", b"application/json"),
        (b"authorization", b"Bearer bench"),
        (b"content-length", str(len(body)).encode()),
    ]
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/v1/chat/completions",
        "raw_path": b"/v1/chat/completions",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 2),
    }

    async def call() -> int:
        sent = False
        done = asyncio.Event()
        size = 0

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            await done.wait()
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            nonlocal size
            if message["type"] == "http.response.start":
                if message["status"] != 200:
                    raise RuntimeError(f"status {message['status']}")
                return
            size += len(message.get("body", b""))
            if not message.get("more_body", False):
                done.set()

        await app(dict(scope), receive, send)
        return size

    return call


Call = Callable[[], Awaitable[int]]
Close = Callable[[], Awaitable[None]]


def _client_call(port: int, contract_path: Path, stream: bool) -> tuple[Call, Close]:
    from prometheus_client import CollectorRegistry

    from chatcontract.client import AsyncChatClient
    from chatcontract.telemetry import PrometheusSink
    from chatcontract.transport._aiohttp import AiohttpTransport

    contract = _contract(contract_path, port)
    sinks = [PrometheusSink(CollectorRegistry(), contract=contract)]
    client = AsyncChatClient(
        contract, transport=AiohttpTransport(), environ={KEY_ENV: "k"}, telemetry_sinks=sinks
    )

    async def complete() -> int:
        result = await client.complete(MESSAGES)
        return len(result.content or "")

    async def streamed() -> int:
        size = 0
        async with client.stream(MESSAGES) as deltas:
            async for delta in deltas:
                size += len(delta.content)
        return size

    return (streamed if stream else complete), client.aclose


def _target(args: argparse.Namespace) -> tuple[Call, Close]:
    body = request_body(stream=args.stream)
    if args.target == "client":
        return _client_call(args.upstream_port, args.contract, args.stream)
    if args.target == "floor":
        import _gateway_floors

        os.environ[_gateway_floors.UPSTREAM_ENV] = f"http://127.0.0.1:{args.upstream_port}"
        client = _gateway_floors._httpx2_over_aiohttp()
        return _asgi_call(_gateway_floors.asgi_httpx2_over_aiohttp, body), client.aclose
    from prometheus_client import CollectorRegistry

    from chatcontract.gateway.app import create_app
    from chatcontract.gateway.state import GatewayState
    from chatcontract.telemetry import PrometheusSink

    contract = _contract(args.contract, args.upstream_port)
    sinks = [PrometheusSink(CollectorRegistry(), contract=contract)] if args.metrics else []
    state = GatewayState(contract, environ={KEY_ENV: "k"}, telemetry_sinks=sinks)
    return _asgi_call(create_app(state), body), state.aclose


def _footprint(positions: set[tuple[Any, int]], executed: int, calls: int) -> None:
    """Print how much distinct Python code the calls ran (see ``--footprint``)."""
    by_file: Counter[str] = Counter()
    codes = set()
    for code, _ in positions:
        by_file[os.path.basename(code.co_filename)] += 1
        codes.add(code)
    print(
        f"{len(positions)} distinct bytecode positions in {len(codes)} code objects "
        f"({sum(len(code.co_code) for code in codes)} bytes of bytecode); "
        f"{executed / calls:.0f} bytecodes executed per call (n={calls})"
    )
    for name, count in by_file.most_common(15):
        print(f"  {count:6d}  {name}")


async def _traced(call: Call, n: int) -> None:
    """``n`` calls under ``sys.settrace``, counting bytecodes: ``--footprint``."""
    positions: set[tuple[Any, int]] = set()
    executed = 0

    def trace(frame: Any, event: str, arg: Any) -> Any:
        nonlocal executed
        frame.f_trace_opcodes = True
        if event == "opcode":
            executed += 1
            positions.add((frame.f_code, frame.f_lasti))
        return trace

    sys.settrace(trace)
    try:
        for _ in range(n):
            await call()
    finally:
        sys.settrace(None)
    _footprint(positions, executed, n)


async def _run(args: argparse.Namespace) -> None:
    call, close = _target(args)
    for _ in range(args.warmup):
        await call()
    if args.footprint:
        await _traced(call, args.n)
        await close()
        return
    # What start-up and the warm-up left is frozen: a full collection that falls in one of two
    # callgrind runs and not the other would walk it all and swamp their difference.
    gc.collect()
    gc.freeze()
    sizes = 0
    start = time.process_time()
    for _ in range(args.n):
        sizes += await call()
    spent = time.process_time() - start
    await close()
    if sizes == 0:
        raise RuntimeError("no answer came back")
    mode = "stream" if args.stream else "complete"
    print(f"{args.target} {mode}: {spent / args.n * 1e6:.1f} µs CPU per call (n={args.n})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream-port", type=int, required=True)
    parser.add_argument("--target", choices=("gateway", "client", "floor"), default="gateway")
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("-n", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the run")
    parser.add_argument(
        "--footprint",
        action="store_true",
        help="count the distinct bytecode positions the calls run (sys.settrace; use -n 20)",
    )
    parser.add_argument("--no-metrics", dest="metrics", action="store_false")
    parser.add_argument(
        "--seed",
        type=int,
        default=None,
        help="seed the process's random (which calls' shapes are fingerprinted): for callgrind",
    )
    parser.add_argument(
        "--contract",
        type=Path,
        default=Path(os.environ.get("BENCH_CONTRACT", "/tmp/gwc/contract.yaml")),
        help="a contract from 'chatcontract init --preset openai' (pointed at the upstream)",
    )
    args = parser.parse_args()
    if args.seed is not None:
        random.seed(args.seed)
    import uvloop

    if args.profile:
        import cProfile

        cProfile.runctx("uvloop.run(_run(args))", globals(), locals(), sort="tottime")
    else:
        uvloop.run(_run(args))


if __name__ == "__main__":
    main()
