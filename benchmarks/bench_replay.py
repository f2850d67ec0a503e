"""Benchmark: what ``instrument()`` adds to an openai SDK call, without sockets or a server.

The simulator's answers are recorded once (raw HTTP bytes, in the pieces the socket returned:
one non-streamed completion, one 100-token stream), then replayed by a fake httpcore2 network
backend under a real ``httpx2.HTTPTransport``: the SDK, httpx2, httpcore2 and h11 do all their
usual work, only the socket is gone. That takes the network and the simulator's CPU out of the
figures, which makes them steadier than ``bench_client.py``'s on a shared machine.

Variants, interleaved in rounds (a rotating order) in one process; reported: process CPU per
call added over the plain SDK (median of the per-round differences):

- ``bare``: ``instrument()`` with no sink (the observer, the Exchange, redaction);
- ``prom``: with a Prometheus sink;
- ``full``: with a Prometheus sink and the JSON event log at its shadow rate.

``--layers`` (streams only) asks instead what a streamed chunk pays for, layer by layer, each
added over the plain SDK with its 95% confidence interval (``_stats.median_ci``):

- ``wrap``: the response stream passed through one generator of ours, nothing else;
- ``parser``: the same generator feeding each read to a ``StreamParser`` that holds its reads
  and decodes them in batches, as ``instrument()``'s observer does (no observer, no sink);
- ``bare``: ``instrument()`` with no sink, as above.

``--callgrind KIND N`` makes N calls of one variant after a warm-up and exits, for
``valgrind --tool=callgrind``: instruction counts do not move with the machine's load. Run two
N and difference them to remove start-up (``benchmarks/callgrind_client.sh`` does this)::

    .venv/bin/python benchmarks/bench_replay.py [--stream] [--rounds 20] [--batch 300]
    .venv/bin/python benchmarks/bench_replay.py --stream --layers --rounds 250 --batch 6
    benchmarks/callgrind_client.sh nonstream bare full
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import logging
import os
import random
import socket
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpcore2
import httpx2
import openai
from prometheus_client import CollectorRegistry

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_client  # the simulator and the prompts of the socket benchmark
from _stats import median_ci
from chatcontract import instrument
from chatcontract.telemetry import DEFAULT_SHADOW_RATE
from chatcontract.transport._httpx_seam import set_network_backend
from chatcontract.transport._timing import TimedBackend
from chatcontract.wire import StreamParser

API_KEY = bench_client.API_KEY
MODEL = bench_client.MODEL
KINDS = ("plain", "bare", "prom", "full")
#: ``--layers``: what a streamed chunk pays for, from nothing of ours to ``instrument()``.
LAYERS = ("plain", "wrap", "parser", "bare")
#: The recorded answers, kept between runs (the callgrind runs must not start a simulator).
RECORDING = Path(os.environ.get("CHATCONTRACT_REPLAY_FILE", "/tmp/chatcontract-replay.json"))
RECV_TIMEOUT_S = 5.0


# --- recording ----------------------------------------------------------------------------------


def _raw_call(port: int, body: dict[str, Any]) -> list[bytes]:
    """One POST to the simulator on a raw socket: the answer's bytes, read by read."""
    data = json.dumps(body).encode()
    head = (
        f"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Authorization: Bearer {API_KEY}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(data)}\r\n\r\n"
    ).encode()
    pieces: list[bytes] = []
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=RECV_TIMEOUT_S) as sock:
        sock.sendall(head + data)
        for _ in range(10_000):  # bounded: an answer is far fewer reads
            piece = sock.recv(65536)
            if not piece:
                break
            pieces.append(piece)
            received += piece
            top, sep, rest = received.partition(b"\r\n\r\n")
            if not sep:
                continue
            lower = top.lower()
            if b"content-length:" in lower:
                length = int(lower.split(b"content-length:")[1].split(b"\r\n")[0])
                if len(rest) >= length:
                    break
            elif rest.endswith(b"0\r\n\r\n"):
                break
    return pieces


def record() -> dict[str, list[bytes]]:
    """Record both answers from a simulator subprocess (or read them back from RECORDING)."""
    if RECORDING.exists():
        stored = json.loads(RECORDING.read_text())
        return {
            name: [base64.b64decode(piece) for piece in pieces] for name, pieces in stored.items()
        }
    with bench_client.simulator() as base_url:
        port = int(base_url.rsplit(":", 1)[1].split("/")[0])
        recorded = {
            "nonstream": _raw_call(port, {"model": MODEL, "messages": bench_client.SHORT}),
            "stream": _raw_call(
                port,
                {
                    "model": MODEL,
                    "messages": bench_client.LONG,
                    "stream": True,
                    "stream_options": {"include_usage": True},
                },
            ),
        }
    RECORDING.write_text(
        json.dumps(
            {name: [base64.b64encode(p).decode() for p in ps] for name, ps in recorded.items()}
        )
    )
    return recorded


# --- the replaying network ----------------------------------------------------------------------


class ReplayStream(httpcore2.NetworkStream):
    """A kept-alive connection: each request written is answered with the recorded pieces."""

    def __init__(self, pieces: list[bytes]) -> None:
        self._pieces = pieces
        self._pending: list[bytes] = []

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        if not self._pending:
            return b""
        piece = self._pending.pop()
        if len(piece) > max_bytes:
            self._pending.append(piece[max_bytes:])
            piece = piece[:max_bytes]
        return piece

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not self._pending:  # the request's first write: queue its answer
            self._pending = list(reversed(self._pieces))

    def close(self) -> None:
        self._pending = []

    def start_tls(self, *args: Any, **kwargs: Any) -> httpcore2.NetworkStream:
        return self

    def get_extra_info(self, info: str) -> Any:
        return False if info == "is_readable" else None


class ReplayBackend(httpcore2.NetworkBackend):
    def __init__(self, pieces: list[bytes]) -> None:
        self._pieces = pieces

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Any = None,
    ) -> httpcore2.NetworkStream:
        return ReplayStream(self._pieces)

    def sleep(self, seconds: float) -> None:
        return None


def _transport(pieces: list[bytes], *, timed: bool) -> httpx2.HTTPTransport:
    transport = httpx2.HTTPTransport()
    backend = ReplayBackend(pieces)
    set_network_backend(transport, TimedBackend(backend) if timed else backend)
    return transport


class PassThroughStream(httpx2.SyncByteStream):
    """A response stream as it came, through one generator of ours; with a parser, each read
    is fed to it first (``feed``, then ``close`` at the end), as the observer feeds its own."""

    def __init__(self, inner: httpx2.SyncByteStream, parser: StreamParser | None) -> None:
        self._inner = inner
        self.parser = parser

    def __iter__(self) -> Iterator[bytes]:
        parser = self.parser
        if parser is None:
            yield from self._inner
            return
        feed = parser.feed
        for chunk in self._inner:
            feed(chunk)
            yield chunk

    def close(self) -> None:
        if self.parser is not None and self.parser.result is None:
            self.parser.close()
        self._inner.close()


class PassThrough(httpx2.BaseTransport):
    """``inner``, each response's stream passed through :class:`PassThroughStream`."""

    def __init__(self, inner: httpx2.BaseTransport, *, parse: bool) -> None:
        self._inner = inner
        self._parse = parse

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        response = self._inner.handle_request(request)
        parser = None
        if self._parse:  # what the observer makes for a 200 text/event-stream
            parser = StreamParser(
                expect_usage=True, clock=time.perf_counter, defer=True, windows=True
            )
        assert isinstance(response.stream, httpx2.SyncByteStream)
        return httpx2.Response(
            response.status_code,
            headers=response.headers,
            stream=PassThroughStream(response.stream, parser),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._inner.close()


def _event_logger() -> None:
    log = logging.getLogger("chatcontract.events")
    log.handlers[:] = [logging.StreamHandler(open(os.devnull, "w"))]  # noqa: SIM115 - process-long
    log.setLevel(logging.INFO)
    log.propagate = False


def make_call(kind: str, *, stream: bool, recorded: dict[str, list[bytes]]) -> Callable[[], int]:
    """One call of variant ``kind``; returns the chunks the caller received (1: a whole answer)."""
    pieces = recorded["stream" if stream else "nonstream"]
    if kind == "plain":
        http = httpx2.Client(transport=_transport(pieces, timed=False))
    elif kind in ("wrap", "parser"):
        passing = PassThrough(_transport(pieces, timed=False), parse=kind == "parser")
        http = httpx2.Client(transport=passing)
    elif kind == "bare":
        http = instrument(
            transport=_transport(pieces, timed=True), event_log=False, secrets=[API_KEY]
        )
    elif kind == "prom":
        http = instrument(
            transport=_transport(pieces, timed=True), registry=CollectorRegistry(),
            event_log=False, secrets=[API_KEY],
        )  # fmt: skip
    else:
        _event_logger()
        http = instrument(
            transport=_transport(pieces, timed=True), registry=CollectorRegistry(),
            shadow_rate=DEFAULT_SHADOW_RATE, secrets=[API_KEY],
        )  # fmt: skip
    sdk = openai.OpenAI(
        base_url="http://127.0.0.1:9/v1", api_key=API_KEY, max_retries=0, http_client=http
    )
    if stream:

        def call_stream() -> int:
            chunks = sdk.chat.completions.create(
                model=MODEL,
                messages=bench_client.LONG,  # type: ignore[arg-type]
                stream=True,
                stream_options={"include_usage": True},
            )
            return sum(1 for _ in chunks)

        return call_stream

    def call() -> int:
        completion = sdk.chat.completions.create(model=MODEL, messages=bench_client.SHORT)  # type: ignore[arg-type]
        if not completion.choices[0].message.content:
            raise SystemExit("the replayed answer has no content")
        return 1

    return call


def report_layers(per: dict[str, list[float]], chunks: dict[str, float]) -> str:
    """Each layer's CPU over the plain SDK's, per call and per chunk: the median of the
    per-round differences with its 95% confidence interval (``per``: µs per call by round)."""
    lines = []
    base = per["plain"]
    for kind in LAYERS[1:]:
        added = [x - y for x, y in zip(per[kind], base, strict=True)]
        median, low, high = median_ci(added)
        count = chunks[kind]
        lines.append(
            f"{kind}: {median:+.1f} µs per call (95% CI {low:+.1f} .. {high:+.1f}), "
            f"{median / count:+.2f} µs per chunk (95% CI {low / count:+.2f} .. "
            f"{high / count:+.2f})"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--stream", action="store_true", help="the 100-token stream")
    parser.add_argument("--rounds", type=int, default=20, help="interleaved rounds (default 20)")
    parser.add_argument("--batch", type=int, default=300, help="calls per variant per round")
    parser.add_argument(
        "--layers",
        action="store_true",
        help="with --stream: what a chunk pays for, layer by layer (wrap, parser, bare)",
    )
    parser.add_argument(
        "--callgrind", nargs=2, metavar=("KIND", "N"), help="make N calls of KIND and exit"
    )
    args = parser.parse_args(argv)
    if not 1 <= args.rounds <= 1000 or not 1 <= args.batch <= 100_000:
        parser.error("--rounds: 1 to 1000; --batch: 1 to 100000")
    if args.layers and not args.stream:
        parser.error("--layers measures a stream's chunks: add --stream")
    known = KINDS + LAYERS[1:3]
    if args.callgrind:
        kind, count = args.callgrind[0], args.callgrind[1]
        if kind not in known or not count.isdigit() or not 0 <= int(count) <= 100_000:
            parser.error(f"--callgrind KIND N: KIND one of {', '.join(known)}, N 0 to 100000")
        if kind in LAYERS[1:3] and not args.stream:
            parser.error(f"--callgrind {kind} measures a stream's chunks: add --stream")
    recorded = record()
    if args.callgrind:
        kind, count = args.callgrind[0], int(args.callgrind[1])
        call = make_call(kind, stream=args.stream, recorded=recorded)
        # Shape fingerprints and event-log lines are sampled per call (``random.random``): a
        # fixed seed makes the sampled calls the same ones in every run and in every checkout.
        random.seed(0)
        for _ in range(30):  # the same warm-up for every N
            call()
        # What start-up and the warm-up left is frozen: a full collection that happens to fall
        # in one run and not the other would otherwise walk it all and swamp the difference.
        gc.collect()
        gc.freeze()
        for _ in range(count):
            call()
        return 0
    kinds = LAYERS if args.layers else KINDS
    calls = {kind: make_call(kind, stream=args.stream, recorded=recorded) for kind in kinds}
    for call in calls.values():
        for _ in range(50):
            call()
    per: dict[str, list[float]] = {kind: [] for kind in kinds}
    chunks = dict.fromkeys(kinds, 1.0)
    for index in range(args.rounds):
        shift = index % len(kinds)
        for kind in kinds[shift:] + kinds[:shift]:
            call, received = calls[kind], 0
            started = time.process_time()
            for _ in range(args.batch):
                received += call()
            per[kind].append((time.process_time() - started) / args.batch * 1e6)
            chunks[kind] = received / args.batch
    base = per["plain"]
    plain = statistics.median(base)
    print(f"plain SDK: {plain:.1f} µs CPU per call, {chunks['plain']:.0f} chunk(s)")
    if args.layers:
        print(report_layers(per, chunks))
        return 0
    for kind in KINDS[1:]:
        added = statistics.median([x - y for x, y in zip(per[kind], base, strict=True)])
        line = f"{kind}: +{added:.1f} µs per call"
        if args.stream:
            line += f", +{added / chunks[kind]:.2f} µs per chunk"
        print(line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
