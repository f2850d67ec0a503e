"""Benchmark: the probe process's idle memory, and its HTTP latency over 30 days of history.

Memory: ``chatcontract probe --simulate --interval 3600s`` runs in a subprocess (the embedded
simulator included, as a user runs it). Once its first cycle is stored and it has been idle for a
few seconds, its ``VmRSS`` is read from ``/proc/<pid>/status``. Baseline, in the same run: a bare
uvicorn + Starlette "hello" app with the same uvicorn settings. Target: under 80 MB.

Latency: a probe store is seeded with one probe run per minute for 30 days (43,200 runs, with
failures of every kind, retries, fallbacks, drift events and daily validations). A subprocess
serves ``create_probe_app`` on it, wired as the CLI wires it, with the clock at the end of the
history; this process then times sequential keep-alive requests over loopback. Baseline, in the
same run: ``/healthz`` of the same app. Target: ``/metrics`` and ``/api/summary`` under 50 ms.

Figures are printed, never asserted. Every wait is bounded. Run with ``make bench`` or::

    .venv/bin/python benchmarks/bench_probe.py [--requests 200] [--days 30] [--idle 3]
"""

from __future__ import annotations

import argparse
import os
import random
import re
import selectors
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict, TypeVar, Unpack

import httpx2
import uvicorn
from prometheus_client import CollectorRegistry
from starlette.applications import Starlette

from chatcontract.contract import load_preset
from chatcontract.identity import TargetIdentity
from chatcontract.probe import (
    DriftEvent,
    ProbeMetrics,
    ProbeRun,
    ProbeStore,
    ValidationRun,
    create_probe_app,
)
from chatcontract.probe.summary import summary_target

STARTUP_TIMEOUT_S = 30.0
FIRST_CYCLE_TIMEOUT_S = 60.0
REQUEST_TIMEOUT_S = 30.0
RSS_TARGET_MB = 80.0
LATENCY_TARGET_MS = 50.0
MODEL = "gpt-4o-mini"
# The seeded rows are the served target's: the page counts only its rows.
TARGET = TargetIdentity.real(load_preset("cometapi").endpoint.base_url, MODEL).key
T = TypeVar("T")


# --- servers run in subprocesses ----------------------------------------------------------------


# The memory baseline runs from source text so that it imports uvicorn and Starlette only
# (this module imports chatcontract, httpx2 and prometheus_client).
_HELLO_SERVER = """
import socket
import uvicorn
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

async def hello(request):
    return PlainTextResponse("hello\\n")

sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
sock.bind(("127.0.0.1", 0))
sock.listen(128)
print(f"PORT {sock.getsockname()[1]}", flush=True)
config = uvicorn.Config(Starlette(routes=[Route("/", hello)]), log_level="warning",
                        access_log=False, lifespan="off")
uvicorn.Server(config).run(sockets=[sock])
"""


def _store_app(db: str, now: float) -> Starlette:
    """``create_probe_app`` over an existing store, wired as ``chatcontract probe`` wires it."""
    store = ProbeStore.open(db)
    contract = load_preset("cometapi")
    registry = CollectorRegistry()
    metrics = ProbeMetrics(registry, contract=contract)
    return create_probe_app(
        store=store,
        registry=registry,
        clock=lambda: now,
        contract=contract,
        metrics=metrics,
        target=summary_target(contract.endpoint.base_url, simulated=False, model=MODEL),
    )


def _serve(app: Starlette) -> None:
    """Bind a free loopback port, print it, and serve until terminated."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])


# --- subprocess plumbing ------------------------------------------------------------------------


class Server:
    """A server subprocess whose address is read (bounded) from a line of its output."""

    def __init__(
        self, argv: Sequence[str], *, pattern: str, stream: str, cwd: str | None = None
    ) -> None:
        env = {k: v for k, v in os.environ.items() if "API_KEY" not in k and "COMET" not in k}
        self.proc = subprocess.Popen(
            list(argv),
            text=True,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE if stream == "stdout" else None,
            stderr=subprocess.PIPE if stream == "stderr" else None,
        )
        self.output = self.proc.stdout if stream == "stdout" else self.proc.stderr
        self.url = self._wait_for(re.compile(pattern))

    def _wait_for(self, pattern: re.Pattern[str]) -> str:
        assert self.output is not None
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        seen: list[str] = []
        with selectors.DefaultSelector() as selector:
            selector.register(self.output, selectors.EVENT_READ)
            while (remaining := deadline - time.monotonic()) > 0:
                if not selector.select(remaining):
                    break
                line = self.output.readline()
                if not line:
                    break
                seen.append(line)
                if match := pattern.search(line):
                    return f"http://127.0.0.1:{match.group(1)}"
        self.close()
        raise SystemExit(f"{self.proc.args!r} did not start:\n{''.join(seen)[-2000:]}")

    def rss_kib(self, field: str = "VmRSS") -> int:
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
        raise SystemExit(f"no {field} in /proc/{self.proc.pid}/status")

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        if self.output is not None:
            self.output.close()


def _store_server(*args: str) -> Server:
    return Server([sys.executable, __file__, *args], pattern=r"^PORT (\d+)", stream="stdout")


# --- memory -------------------------------------------------------------------------------------


def _idle_rss_mb(server: Server, idle_s: float) -> tuple[float, float]:
    """VmRSS after ``idle_s`` without requests (the highest of three samples), and VmHWM."""
    time.sleep(idle_s)
    samples = []
    for _ in range(3):
        samples.append(server.rss_kib())
        time.sleep(0.5)
    return max(samples) / 1024, server.rss_kib("VmHWM") / 1024


def _wait_first_cycle(url: str) -> int:
    deadline = time.monotonic() + FIRST_CYCLE_TIMEOUT_S
    with httpx2.Client(base_url=url, timeout=REQUEST_TIMEOUT_S) as client:
        while time.monotonic() < deadline:
            response = client.get("/api/summary")
            if response.status_code == 200 and (probes := response.json()["totals"]["probes"]):
                return int(probes)
            time.sleep(0.2)
    raise SystemExit(f"the probe stored no cycle within {FIRST_CYCLE_TIMEOUT_S} s")


def _probe_command_available() -> bool:
    check = subprocess.run(
        [sys.executable, "-m", "chatcontract", "probe", "--help"],
        capture_output=True,
        timeout=STARTUP_TIMEOUT_S,
        check=False,
    )
    return check.returncode == 0


def memory(idle_s: float) -> None:
    print("Idle memory (VmRSS)")
    if not _probe_command_available():
        print("  skipped: 'python -m chatcontract probe' is not available in this checkout\n")
        return
    baseline = Server(
        [sys.executable, "-c", _HELLO_SERVER], pattern=r"^PORT (\d+)", stream="stdout"
    )
    try:
        httpx2.get(baseline.url + "/", timeout=REQUEST_TIMEOUT_S).raise_for_status()
        base_rss, base_hwm = _idle_rss_mb(baseline, idle_s)
    finally:
        baseline.close()

    with tempfile.TemporaryDirectory(prefix="bench-probe-") as home:
        argv = [
            sys.executable,
            "-m",
            "chatcontract",
            "probe",
            "--simulate",
            "--interval",
            "3600s",
            "--listen",
            "127.0.0.1:0",
            "--db",
            str(Path(home) / "probe.db"),
        ]
        probe = Server(
            argv, pattern=r"serving http://127\.0\.0\.1:(\d+)/", stream="stderr", cwd=home
        )
        try:
            stored = _wait_first_cycle(probe.url)
            probe_rss, probe_hwm = _idle_rss_mb(probe, idle_s)
            with httpx2.Client(base_url=probe.url, timeout=REQUEST_TIMEOUT_S) as client:
                for _ in range(50):
                    for path in ("/", "/static/dashboard.js", "/api/summary", "/metrics"):
                        client.get(path).raise_for_status()
            served_rss, _ = _idle_rss_mb(probe, 1.0)
        finally:
            probe.close()

    print(f"  {'process':<52} {'RSS MB':>8} {'peak MB':>8} {'× baseline':>11}")
    print(f"  {'baseline: uvicorn + Starlette hello app':<52} {base_rss:>8.1f} {base_hwm:>8.1f}")
    print(
        f"  {'chatcontract probe --simulate, idle after a cycle':<52} {probe_rss:>8.1f} "
        f"{probe_hwm:>8.1f} {probe_rss / base_rss:>10.2f}×"
    )
    print(
        f"  {'  … after 50 dashboard + summary + metrics loads':<52} {served_rss:>8.1f} "
        f"{'':>8} {served_rss / base_rss:>10.2f}×"
    )
    verdict = "met" if probe_rss < RSS_TARGET_MB else "MISSED"
    print(
        f"  ({stored} probe runs stored; embedded simulator in-process) "
        f"target < {RSS_TARGET_MB:.0f} MB idle: {verdict}\n"
    )


# --- latency ------------------------------------------------------------------------------------

# One probe per minute, rotating through the kinds roughly as a cycle would.
_KIND_WEIGHTS = (
    ("non_streaming", 6),
    ("streaming", 2),
    ("usage_capture", 1),
    ("timeout_boundary", 1),
    ("invalid_request", 1),
)
# (kind, category, code, status) of a failed probe, with weights: every failure kind appears.
_FAILURES: tuple[tuple[tuple[str, str, str, int | None], int], ...] = (
    (("transport", "timeout", "read_timeout", None), 4),
    (("transport", "network", "connect_error", None), 1),
    (("http", "upstream", "html_body", 502), 2),
    (("api_error", "rate_limit", "rate_limited", 429), 3),
    (("api_error", "quota", "insufficient_quota", 429), 1),
    (("api_error", "auth", "invalid_api_key", 401), 1),
    (("api_error", "upstream", "upstream_error", 503), 2),
    (("parser", "contract", "missing_choices", 200), 1),
    (("parser", "contract", "invalid_json", 200), 1),
    (("semantic", "content", "empty_content", 200), 1),
    (("budget", "budget", "deadline_exhausted", None), 1),
)
_MODELS = (("gpt-4o-mini-2024-07-18", 20), (MODEL, 3), ("gpt-4o-mini-2024-09-01", 1))


def _pick(rng: random.Random, table: Sequence[tuple[T, int]]) -> T:
    return rng.choices([value for value, _ in table], weights=[weight for _, weight in table])[0]


class _Asked(TypedDict):
    """What every run of one probe call shares: the request side."""

    execution_id: str
    probe: str
    prompt_size: str
    requested_model: str
    stream: bool
    budget_ms: float
    target: str


def _runs(rng: random.Random, *, start: float, minutes: int) -> Iterator[ProbeRun]:
    for minute in range(minutes):
        at = start + minute * 60 + rng.uniform(0, 5)
        probe = _pick(rng, _KIND_WEIGHTS)
        size = "large" if probe == "non_streaming" and rng.random() < 0.2 else "short"
        failed = rng.random() < 0.03
        common = _Asked(
            execution_id=f"cycle-{minute}",
            probe=probe,
            prompt_size=size,
            requested_model=MODEL,
            stream=probe == "streaming",
            budget_ms=30_000.0,
            target=TARGET,
        )
        if failed:
            kind, category, code, status = _pick(rng, _FAILURES)
            yield ProbeRun(
                run_id=f"r{minute}a",
                started_at=at,
                route="primary",
                attempt=1,
                ok=False,
                kind=kind,
                category=category,
                code=code,
                status=status,
                retry_decision="retry" if category in ("timeout", "upstream") else "none",
                total_ms=rng.uniform(800, 30_000),
                schema_valid=False if status == 200 else None,
                **common,
            )
            if category in ("timeout", "upstream"):  # one retry, usually successful
                yield _success(
                    rng, f"r{minute}b", at + 2, attempt=2, ok=rng.random() < 0.8, **common
                )
            elif rng.random() < 0.5:  # or the fallback route answers
                yield _success(rng, f"r{minute}f", at + 1, attempt=1, route="fallback-1", **common)
            continue
        yield _success(rng, f"r{minute}a", at, attempt=1, **common)


def _success(
    rng: random.Random,
    run_id: str,
    at: float,
    *,
    attempt: int,
    route: str = "primary",
    ok: bool = True,
    **common: Unpack[_Asked],
) -> ProbeRun:
    large = common["prompt_size"] == "large"
    return ProbeRun(
        run_id=run_id,
        started_at=at,
        route=route,
        attempt=attempt,
        ok=ok,
        status=200,
        total_ms=rng.lognormvariate(7.6 if large else 6.1, 0.35),
        ttfb_ms=rng.uniform(80, 300),
        response_model=_pick(rng, _MODELS),
        finish_reason="stop",
        prompt_tokens=900 if large else 24,
        completion_tokens=16,
        total_tokens=916 if large else 40,
        usage_present=rng.random() < 0.97,
        usage_expected=True,
        cost_usd=0.00002,
        schema_valid=True,
        fingerprint="a1b2c3d4e5f60718",
        shape_paths=("choices[].message.content", "usage"),
        **common,
    )


def seed(db: Path, *, days: int, now: float) -> int:
    """A store with one probe per minute over ``days`` before ``now``; returns the run count."""
    rng = random.Random(20250610)
    minutes = days * 24 * 60
    with ProbeStore.open(db, synchronous="NORMAL") as store:
        count = store.record_runs(_runs(rng, start=now - minutes * 60, minutes=minutes))
        for day in range(days):
            at = now - (days - day) * 86_400 + 3_600
            failed = 1 if day % 9 == 0 else 0
            store.record_validation(
                ValidationRun(
                    run_id=f"v{day}",
                    at=at,
                    verdict="fail" if failed else "pass",
                    passed=19 - failed,
                    failed=failed,
                    warned=1,
                    skipped=3,
                    report_json="{}",
                )
            )
        for index in range(12):
            store.record_drift(
                DriftEvent(
                    at=now - index * 172_800,
                    kind="new_field",
                    key=f"drift-{index}",
                    detail=f"response: +choices[].message.extra_{index}",
                    probe="non_streaming",
                )
            )
    return count


@dataclass(frozen=True, slots=True)
class Timing:
    label: str
    latencies_ms: list[float]

    def q(self, fraction: float) -> float:
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def _time(client: httpx2.Client, label: str, path: str, requests: int) -> Timing:
    for _ in range(min(10, requests)):  # warm-up: connections, caches, first queries
        client.get(path).raise_for_status()
    latencies = []
    for _ in range(requests):
        started = time.perf_counter()
        response = client.get(path)
        latencies.append((time.perf_counter() - started) * 1000)
        response.raise_for_status()
    return Timing(label, latencies)


def latency(days: int, requests: int) -> None:
    print(f"HTTP latency with {days} days of one-per-minute history")
    now = time.time()
    with tempfile.TemporaryDirectory(prefix="bench-probe-") as home:
        db = Path(home) / "probe.db"
        started = time.perf_counter()
        count = seed(db, days=days, now=now)
        seeded_s = time.perf_counter() - started
        size_mb = db.stat().st_size / 1e6
        server = _store_server("--serve-store", str(db), "--now", repr(now))
        try:
            with httpx2.Client(base_url=server.url, timeout=REQUEST_TIMEOUT_S) as client:
                day = client.get("/api/summary").json()["totals"]["probes"]
                month = client.get(f"/api/summary?hours={days * 24}").json()["totals"]["probes"]
                metrics_kb = len(client.get("/metrics").content) / 1024
                timings = [
                    _time(client, "baseline: /healthz", "/healthz", requests),
                    _time(client, "/metrics", "/metrics", requests),
                    _time(client, "/api/summary (24 h, default)", "/api/summary", requests),
                    _time(
                        client,
                        f"/api/summary?hours={days * 24} (whole history)",
                        f"/api/summary?hours={days * 24}",
                        max(20, requests // 5),
                    ),
                ]
            rss_mb = server.rss_kib() / 1024
        finally:
            server.close()

    print(
        f"  server RSS after the timed requests: {rss_mb:.1f} MB "
        "(create_probe_app over this store, no prober)"
    )
    print(
        f"  store: {count:,} runs, {size_mb:.1f} MB, seeded in {seeded_s:.1f} s; "
        f"summary windows hold {day:,} (24 h) and {month:,} ({days} d) runs; "
        f"/metrics body {metrics_kb:.1f} KiB"
    )
    base = statistics.median(timings[0].latencies_ms)
    print(
        f"  {'endpoint':<46} {'n':>5} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8} {'p50 × base':>11}"
    )
    for timing in timings:
        p50 = timing.q(0.5)
        print(
            f"  {timing.label:<46} {len(timing.latencies_ms):>5} {p50:>8.2f} "
            f"{timing.q(0.95):>8.2f} {max(timing.latencies_ms):>8.2f} {p50 / base:>10.1f}×"
        )
    worst = max(timing.q(0.95) for timing in timings[1:3])
    verdict = "met" if worst < LATENCY_TARGET_MS else "MISSED"
    print(
        f"  target: /metrics and /api/summary p95 < {LATENCY_TARGET_MS:.0f} ms: {verdict} "
        f"(worst p95 {worst:.1f} ms)\n"
    )


# --- entry point --------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=200, help="timed requests per endpoint")
    parser.add_argument("--days", type=int, default=30, help="days of history to seed")
    parser.add_argument("--idle", type=float, default=3.0, help="seconds idle before reading RSS")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-latency", action="store_true")
    parser.add_argument("--serve-store", metavar="DB", help=argparse.SUPPRESS)
    parser.add_argument("--now", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_store:
        _serve(_store_app(args.serve_store, args.now))
        return
    print(f"bench_probe: Python {sys.version.split()[0]}, {os.cpu_count()} CPUs\n")
    if not args.skip_memory:
        memory(args.idle)
    if not args.skip_latency:
        latency(args.days, args.requests)


if __name__ == "__main__":
    main()
