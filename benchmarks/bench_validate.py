"""Benchmark: the full default validate suite, and the instrumented transport's own overhead.

1. Wall time of ``chatcontract validate --simulate`` (the full default suite: 30 canary runs,
   5 latency samples per size) as a new user runs it, in a subprocess. Target: under 10 s.
2. Per-call cost of ``InstrumentedTransport`` against plain ``httpx2.HTTPTransport`` on the
   same simulator in the same run (the named baseline), non-streaming and streaming,
   interleaved A/B rounds so drift on a shared machine cancels out. Target: under 5% at the
   median. The simulator runs in a second process so both sides share the same server.
   Two modes: every call fingerprinted (what ``validate`` and probes use) and shapes sampled
   at 1% (``shape_sample_rate=0.01``, what a production hot path uses; failures are always
   fingerprinted).

Bounded: fixed request counts, every server and subprocess stopped at the end.

    .venv/bin/python benchmarks/bench_validate.py [--rounds 20] [--calls 50]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator

import httpx2

from chatcontract.contract import load_preset
from chatcontract.simulator import DEFAULT_API_KEY
from chatcontract.transport import InstrumentedTransport

SUITE_TARGET_S = 10.0
OVERHEAD_TARGET = 0.05
BODY = {
    "model": "gpt-4.1-nano",
    "max_tokens": 16,
    "messages": [{"role": "user", "content": "Reply with exactly: pong"}],
}
HEADERS = {"Authorization": f"Bearer {DEFAULT_API_KEY}"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def simulator_process() -> Iterator[str]:
    """The simulator in its own process, so its CPU is not charged to the client side."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "chatcontract", "simulate", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx2.get(base + "/models", headers=HEADERS, timeout=1)
                break
            except httpx2.HTTPError:
                time.sleep(0.1)
        else:
            raise SystemExit("the simulator did not start within 20 s")
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def bench_suite() -> float:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMET", "OPENAI"))}
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-m", "chatcontract", "validate", "--simulate", "--format", "json"],
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"validate failed (exit {result.returncode}): {result.stderr[-500:]!r}")
    return elapsed


def _calls(client: httpx2.Client, url: str, *, stream: bool, count: int) -> list[float]:
    body = dict(BODY, stream=True, stream_options={"include_usage": True}) if stream else BODY
    timings = []
    for _ in range(count):
        started = time.perf_counter()
        with client.stream("POST", url, json=body, headers=HEADERS) as response:
            response.read()
        timings.append(time.perf_counter() - started)
    return timings


def bench_overhead(
    base: str, *, stream: bool, rounds: int, calls: int, shape_rate: float
) -> tuple[float, float]:
    url = base + "/chat/completions"
    contract = load_preset("cometapi")
    sink: list[object] = []
    plain = httpx2.Client(transport=httpx2.HTTPTransport())
    instrumented = httpx2.Client(
        transport=InstrumentedTransport(
            contract=contract, sinks=[sink.append], shape_sample_rate=shape_rate
        )
    )
    sides: dict[str, list[float]] = {"plain": [], "instrumented": []}
    runs: list[tuple[str, Callable[[], list[float]]]] = [
        ("plain", lambda: _calls(plain, url, stream=stream, count=calls)),
        ("instrumented", lambda: _calls(instrumented, url, stream=stream, count=calls)),
    ]
    try:
        for _side, run in runs:  # warm-up: connections, imports, caches
            run()
        for index in range(rounds):
            order = runs if index % 2 == 0 else runs[::-1]
            for side, run in order:
                sides[side].extend(run())
            sink.clear()
    finally:
        plain.close()
        instrumented.close()
    return statistics.median(sides["plain"]), statistics.median(sides["instrumented"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--calls", type=int, default=50)
    args = parser.parse_args()

    elapsed = bench_suite()
    verdict = "met" if elapsed < SUITE_TARGET_S else "MISSED"
    print(f"validate --simulate (full default suite): {elapsed:.2f} s wall")
    print(f"  target < {SUITE_TARGET_S:.0f} s: {verdict}")

    with simulator_process() as base:
        for shape_rate, mode in ((1.0, "shapes on every call"), (0.01, "shapes sampled at 1%")):
            for stream in (False, True):
                plain, ours = bench_overhead(
                    base, stream=stream, rounds=args.rounds, calls=args.calls, shape_rate=shape_rate
                )
                overhead = ours / plain - 1
                label = "streaming" if stream else "non-streaming"
                verdict = "met" if overhead < OVERHEAD_TARGET else "MISSED"
                print(
                    f"{label}, {mode}: plain httpx2 {plain * 1e3:.3f} ms (baseline), "
                    f"InstrumentedTransport {ours * 1e3:.3f} ms per call at the median"
                )
                print(
                    f"  overhead {overhead:+.1%} ({(ours - plain) * 1e6:.0f} us)  "
                    f"target < {OVERHEAD_TARGET:.0%}: {verdict}"
                )


if __name__ == "__main__":
    main()
