"""Benchmark: the full default validate suite, and the instrumented transport's own overhead.

1. Wall time of ``chatcontract validate --simulate`` (the full default suite: 30 canary runs,
   5 latency samples per size) as a new user runs it, in a subprocess. Target: under 10 s.
2. Per-call cost of ``InstrumentedTransport`` against plain ``httpx2.HTTPTransport`` on the
   same simulator in the same run (the named baseline), non-streaming and streaming. All
   variants run interleaved: rounds of small batches in a shuffled order, so drift on a
   shared machine hits them alike, repeated with fresh clients (a connection can be a few
   percent faster than another, for no reason of ours). The simulator runs in a second process so
   every side talks to the same server. Reported per variant: the median latency against the
   baseline's (paired: the median over rounds of the ratio between batches run side by side;
   the ratio of the overall medians is shown too), and the client process's CPU per call
   against the baseline's. Every call is observed inline, before it returns. Variants: shapes
   sampled at 1% (``shape_sample_rate``, ``instrument()``'s default; failures are always
   fingerprinted) and shapes on every call (what ``validate`` and probes run).

Bounded: fixed request counts, every server and subprocess stopped at the end. Every
Exchange is counted and must match the number of calls.

    .venv/bin/python benchmarks/bench_validate.py [--repetitions 8] [--rounds 40] [--batch 10]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx2

from chatcontract.contract import Contract, load_preset
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


@dataclass
class Side:
    """One variant of the A/B run: its client, per-call latencies and client CPU seconds."""

    name: str
    client: httpx2.Client
    latencies: list[float] = field(default_factory=list)
    cpu_s: float = 0.0
    #: The median of each round's batch: paired with the baseline's batch of the same round.
    round_medians: list[float] = field(default_factory=list)


def _variants(contract: Contract, sink: list[object]) -> list[Side]:
    def observed(*, rate: float) -> httpx2.Client:
        transport = InstrumentedTransport(
            contract=contract, sinks=[sink.append], shape_sample_rate=rate
        )
        return httpx2.Client(transport=transport)

    return [
        Side(BASELINE, httpx2.Client(transport=httpx2.HTTPTransport())),
        Side(VARIANTS[0], observed(rate=0.01)),
        Side(VARIANTS[1], observed(rate=1.0)),
    ]


BASELINE = "plain httpx2 (baseline)"
#: The target row first: what instrument() runs in production.
VARIANTS = (
    "shapes sampled at 1% (instrument()'s default)",
    "shapes on every call (validate, probes)",
)


def bench_overhead(
    base: str, *, stream: bool, repetitions: int, rounds: int, batch: int
) -> list[Side]:
    """Every variant in the same run. Each repetition builds fresh clients (new connections:
    a connection can be a few percent faster than another for no reason of ours), then runs
    rounds of small batches in a shuffled order (seeded), so no variant always follows
    another. The Exchanges are counted and checked."""
    url = base + "/chat/completions"
    contract = load_preset("cometapi")
    order = random.Random(20261125)
    totals = {name: Side(name, httpx2.Client()) for name in (BASELINE, *VARIANTS)}
    for side in totals.values():
        side.client.close()  # placeholders: they only accumulate figures
    for _ in range(repetitions):
        sink: list[object] = []
        sides = _variants(contract, sink)
        try:
            for side in sides:  # warm-up: connections, imports, caches
                _calls(side.client, url, stream=stream, count=batch * 5)
            sink.clear()
            for _round in range(rounds):
                for side in order.sample(sides, len(sides)):
                    cpu = time.process_time()
                    latencies = _calls(side.client, url, stream=stream, count=batch)
                    total = totals[side.name]
                    total.cpu_s += time.process_time() - cpu
                    total.latencies.extend(latencies)
                    total.round_medians.append(statistics.median(latencies))
            expected = rounds * batch * (len(sides) - 1)
            if len(sink) != expected:
                raise SystemExit(f"{len(sink)} Exchanges recorded, {expected} expected")
        finally:
            for side in sides:
                side.client.close()
    return list(totals.values())


def paired_overhead(side: Side, baseline: Side) -> float:
    """The median over rounds of (this side's batch median / the baseline's batch median in
    the same round) - 1: each batch is compared with the baseline batch run beside it, so a
    machine that is slower for a while slows both sides of the ratio."""
    ratios = [
        ours / theirs
        for ours, theirs in zip(side.round_medians, baseline.round_medians, strict=True)
    ]
    return statistics.median(ratios) - 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repetitions", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--batch", type=int, default=10)
    args = parser.parse_args()

    elapsed = bench_suite()
    verdict = "met" if elapsed < SUITE_TARGET_S else "MISSED"
    print(f"validate --simulate (full default suite): {elapsed:.2f} s wall")
    print(f"  target < {SUITE_TARGET_S:.0f} s: {verdict}")

    with simulator_process() as base:
        for stream in (False, True):
            sides = bench_overhead(
                base,
                stream=stream,
                repetitions=args.repetitions,
                rounds=args.rounds,
                batch=args.batch,
            )
            calls = args.repetitions * args.rounds * args.batch
            plain = sides[0]
            plain_median = statistics.median(plain.latencies)
            label = "streaming" if stream else "non-streaming"
            print(
                f"\n{label}: {calls} calls per variant; {plain.name}: "
                f"{plain_median * 1e3:.3f} ms per call at the median, "
                f"{plain.cpu_s / calls * 1e6:.0f} us client CPU per call"
            )
            for side in sides[1:]:
                median = statistics.median(side.latencies)
                overhead = paired_overhead(side, plain)
                cpu = (side.cpu_s - plain.cpu_s) / calls * 1e6
                target = ""
                if side.name == VARIANTS[0]:
                    verdict = "met" if overhead < OVERHEAD_TARGET else "MISSED"
                    target = f"  target < {OVERHEAD_TARGET:.0%}: {verdict}"
                print(
                    f"  InstrumentedTransport {side.name}: {median * 1e3:.3f} ms "
                    f"({median / plain_median - 1:+.1%} on the overall medians), "
                    f"paired latency {overhead:+.1%}, client CPU {cpu:+.0f} us per call{target}"
                )


if __name__ == "__main__":
    main()
