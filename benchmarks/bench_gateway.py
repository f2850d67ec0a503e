"""Benchmark: what a proxied chat completion costs the gateway, against the floor of each stack.

Everything runs on this machine, in separate processes, in the same run:

- the upstream (``_gateway_upstream.py``): the simulator's answers captured once and served
  canned from a raw asyncio server (non-streaming: the simulator's completion; streaming: the
  simulator's default stream, byte for byte, one HTTP chunk per SSE event);
- ``direct``: the load generator talking to the upstream itself, the baseline every "added"
  figure is measured against;
- the floors (``_gateway_floors.py``): a bare pass-through proxy per candidate stack (server,
  HTTP parser, event loop, upstream client), which forwards the body and the SSE bytes as they
  arrive and does nothing else;
- the gateway under test, ``chatcontract gateway`` (``--gateway-cmd``, or found in the installed
  package), with a contract that points at the upstream and a dummy provider key;
- the load generator (``_loadgen.py``), a second process, cheap on CPU (raw asyncio streams,
  keep-alive), driven one bounded phase at a time.

Measured per target, in interleaved rounds (each round visits every target in a rotating order,
so drift on a shared machine hits them alike):

- CPU per request: utime+stime from /proc of the target's whole process tree (the server and
  every child, e.g. granian's worker), read right before and right after each phase, divided by
  the answers of the phase; non-streaming and streaming at concurrency 1.
- latency at concurrency 1: p50 to the complete answer, and the time to the first token of a
  stream (the first SSE event carrying content); "added" is the target's p50 minus direct's p50
  over the same run.
- req/s: a phase at ``--concurrency`` (non-streaming). The load generator shares the two cores,
  so it is a figure to report, not a target.
- RSS: the tree's VmRSS at start (ready, before any request) and after every round; "flat"
  means that after the first round it grows by at most ``FLAT_MIB_PER_1000`` MiB per 1,000
  requests (the least-squares slope of the samples; about 50 bytes a request). When the time
  budget ended the rounds before a target served 10,000 requests, a top-up phase (non-streaming,
  at ``--concurrency``) brings it there before the last sample, so the RSS target is judged.

Targets (the issue's, checked for the gateway only): CPU ≤ 1.0 ms per non-streaming request
and ≤ 1.3 times the floor of its stack; streaming ≤ 1.3 times that floor; added p50 ≤ 1 ms;
added time to first token ≤ 1 ms; RSS ≤ 80 MiB after 10,000 requests, flat.

The CPU targets are judged on rounds, not on one ratio of totals (on a shared two-core box
the same code gave 1.29 times the floor in one run and 1.58 in the next): each round gives the
gateway's CPU per request and, paired with the floor's same round, a ratio; the verdict reads
the median of those per-round figures and its 95% percentile bootstrap CI
(``_stats.median_ci``, seeded). PASS when the CI's upper bound is within the target, FAIL when
its lower bound is beyond it, NOT RESOLVED (counted as not met) otherwise, with fewer than five
rounds (no CI), and when a round read too few clock ticks of CPU to mean anything. The figure
over all rounds (for a ratio, the ratio of totals) is printed beside it.

Run (the default run is bounded to about five minutes; ``--quick`` is a smoke run)::

    .venv/bin/python benchmarks/bench_gateway.py [--requests 5000] [--only uvicorn-h11,aiohttp]
        [--gateway-cmd "chatcontract gateway --contract {contract} --listen 127.0.0.1:{port}"]
        [--quick] [--json FILE]

Candidates beyond the runtime dependencies (granian, httptools, uvloop, aiohttp) come from the
``bench`` dependency group: ``pip install --group bench``. A floor whose library is missing is
skipped with a line saying what to install.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import json
import os
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from _gateway_floors import STACKS, Stack  # noqa: E402
from _stats import BOOTSTRAP_RESAMPLES, MIN_CI_VALUES, median_ci  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KIB = os.sysconf("SC_PAGE_SIZE") // 1024
STARTUP_TIMEOUT_S = 30.0
PHASE_TIME_LIMIT_S = 60.0
DEFAULT_BUDGET_S = 300.0
DUMMY_KEY = "sk-bench-dummy-not-a-secret"

TARGET_CPU_MS = 1.0
TARGET_FLOOR_RATIO = 1.3
TARGET_ADDED_P50_MS = 1.0
TARGET_ADDED_TTFT_MS = 1.0
TARGET_RSS_MIB = 80.0
TARGET_RSS_AFTER = 10_000
FLAT_MIB_PER_1000 = 0.05
#: /proc counts CPU in clock ticks: a round that read fewer is too coarse to judge (4 ticks
#: against 3 is a ratio of 1.33 whatever the truth), so such a run is NOT RESOLVED.
MIN_TICKS_PER_ROUND = 10

#: Floors measured by default: the reference point and one per candidate server and client.
DEFAULT_STACKS = (
    "starlette",
    "uvicorn-h11",
    "uvicorn-httptools",
    "uvicorn-httptools-aiohttp",
    "uvicorn-httptools-httpx2-aiohttp",
    "granian-asgi",
    "granian-rsgi",
    "aiohttp",
)
#: What each stack needs beyond the runtime dependencies (module → pip name).
NEEDS = {"httptools": "httptools", "uvloop": "uvloop", "granian": "granian", "aiohttp": "aiohttp"}


class BenchError(Exception):
    """The benchmark cannot run as asked; the message says what to do."""


# --- /proc --------------------------------------------------------------------------------------


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return raw[raw.rindex(")") + 2 :].split()  # fields from "state" on (field 3)


def tree(root: int) -> list[int]:
    """``root`` and every live descendant, from the ppid of each process in /proc."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        fields = _stat(int(entry.name))
        if fields is not None:
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found = [root]
    for pid in found:
        found.extend(children.get(pid, ()))
    return found


def tree_cpu_ms(root: int) -> float:
    """CPU (user + system) of the tree so far, including children it has reaped."""
    ticks = 0
    for pid in tree(root):
        fields = _stat(pid)
        if fields is not None:  # utime, stime, cutime, cstime are fields 14-17
            ticks += sum(int(x) for x in fields[11:15])
    return ticks * 1000 / CLK_TCK


def tree_rss_mib(root: int) -> float:
    """Resident memory of the whole tree (the sum of each process's RSS)."""
    pages = 0
    for pid in tree(root):
        with contextlib.suppress(OSError, IndexError, ValueError):
            pages += int(Path(f"/proc/{pid}/statm").read_text().split()[1])
    return pages * PAGE_KIB / 1024


# --- processes ----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Target:
    """One thing the load generator talks to: direct, a floor, or the gateway."""

    name: str
    summary: str
    argv: list[str] | None  # None: nothing to start (direct)
    port: int
    env: dict[str, str] = field(default_factory=dict)
    gateway: bool = False
    process: subprocess.Popen[bytes] | None = None
    log: Any = None
    failed: str | None = None
    served: int = 0
    rss: list[tuple[int, float]] = field(default_factory=list)
    #: mode → round index → (CPU ms of the phase, answers); the index pairs a target's round
    #: with every other target's same round.
    cpu: dict[str, dict[int, tuple[float, int]]] = field(default_factory=dict)
    latency: dict[str, list[float]] = field(default_factory=dict)
    ttft: list[float] = field(default_factory=list)
    throughput: list[tuple[int, float]] = field(default_factory=list)

    def start(self, workdir: Path) -> None:
        if self.argv is None:
            return
        self.log = (workdir / f"{self.name}.log").open("wb")
        self.process = subprocess.Popen(
            self.argv,
            cwd=HERE,
            env={**os.environ, **self.env},
            stdin=subprocess.DEVNULL,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group: stopped as a whole at the end
        )

    def log_tail(self) -> str:
        if self.log is None:
            return ""
        self.log.flush()
        lines = Path(self.log.name).read_text(errors="replace").strip().splitlines()
        return lines[-1] if lines else ""

    def stop(self) -> None:
        process = self.process
        if process is None or process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(5)

    def wait_ready(self) -> None:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise BenchError(
                    f"{self.name} exited with {self.process.returncode}: {self.log_tail()}"
                )
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5),
            ):
                return
            time.sleep(0.05)
        raise BenchError(f"{self.name} did not listen within {STARTUP_TIMEOUT_S:.0f} s")

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None


class LoadGenerator:
    """The ``_loadgen.py`` process: one phase per call, results as parsed JSON."""

    def __init__(self) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(HERE / "_loadgen.py")],
            cwd=HERE,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,
        )

    def phase(
        self, port: int, *, stream: bool, requests: int, concurrency: int = 1
    ) -> dict[str, Any]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        command = {
            "port": port,
            "stream": stream,
            "requests": requests,
            "concurrency": concurrency,
            "time_limit_s": PHASE_TIME_LIMIT_S,
            "key": DUMMY_KEY,
        }
        self.process.stdin.write((json.dumps(command) + "\n").encode())
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        if not line:
            raise BenchError(f"the load generator exited with {self.process.wait()}")
        result: dict[str, Any] = json.loads(line)
        return result

    def stop(self) -> None:
        if self.process.stdin is not None:
            self.process.stdin.close()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


# --- targets ------------------------------------------------------------------------------------


def missing_modules(stack: Stack) -> list[str]:
    needed = []
    if stack.http == "httptools":
        needed.append("httptools")
    if stack.loop == "uvloop":
        needed.append("uvloop")
    if stack.server == "granian":
        needed.append("granian")
    if "aiohttp" in (stack.server, *stack.client.split()):
        needed.append("aiohttp")
    return [NEEDS[m] for m in needed if importlib.util.find_spec(m) is None]


def floor_target(stack: Stack, upstream_port: int) -> Target:
    port = free_port()
    argv = [
        sys.executable,
        str(HERE / "_gateway_floors.py"),
        stack.name,
        "--port",
        str(port),
        "--upstream-port",
        str(upstream_port),
    ]
    return Target(name=stack.name, summary=stack.summary, argv=argv, port=port)


def gateway_available() -> str | None:
    """The default gateway command when ``chatcontract gateway`` exists, else ``None``."""
    exe = shutil.which("chatcontract", path=str(Path(sys.executable).parent)) or shutil.which(
        "chatcontract"
    )
    if exe is None:
        return None
    try:
        probe = subprocess.run(
            [exe, "gateway", "--help"], capture_output=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if probe.returncode != 0:
        return None
    return f"{shlex.quote(exe)} gateway --contract {{contract}} --listen 127.0.0.1:{{port}}"


def gateway_target(command: str, upstream_port: int, workdir: Path) -> Target:
    port = free_port()
    contract = workdir / "gateway-contract.yaml"
    key_env = make_contract(contract, upstream_port)
    argv = shlex.split(
        command.format(contract=shlex.quote(str(contract)), port=port, upstream_port=upstream_port)
    )
    return Target(
        name="gateway",
        summary="the gateway under test: " + command.replace("{contract}", "CONTRACT"),
        argv=argv,
        port=port,
        env={key_env: DUMMY_KEY},
        gateway=True,
    )


def make_contract(path: Path, upstream_port: int) -> str:
    """Write the gateway's contract through ``chatcontract init`` and point it at the upstream."""
    import yaml

    exe = shutil.which("chatcontract", path=str(Path(sys.executable).parent)) or "chatcontract"
    subprocess.run(
        [exe, "init", "--preset", "openai", "--path", str(path), "--force"],
        capture_output=True,
        check=True,
        timeout=60,
    )
    data = yaml.safe_load(path.read_text())
    data["endpoint"]["base_url"] = f"http://127.0.0.1:{upstream_port}/v1"
    data["fallbacks"] = []
    data["owner"] = "bench"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return str(data["auth"]["env"][0])


# --- the run ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    requests: int  # per target and mode (non-streaming, streaming) at concurrency 1
    rounds: int
    throughput_requests: int
    concurrency: int
    warmup: int
    budget_s: float
    rss_requests: int  # requests each target has served by the last RSS sample


def _split(total: int, parts: int) -> list[int]:
    base, extra = divmod(total, parts)
    return [base + (1 if i < extra else 0) for i in range(parts)]


def measured_phase(
    loadgen: LoadGenerator, target: Target, *, stream: bool, requests: int, concurrency: int = 1
) -> dict[str, Any]:
    before = tree_cpu_ms(target.pid) if target.pid else 0.0
    result = loadgen.phase(target.port, stream=stream, requests=requests, concurrency=concurrency)
    after = tree_cpu_ms(target.pid) if target.pid else 0.0
    target.served += result["ok"] + result["errors"]
    if result["errors"]:
        target.failed = f"{result['errors']} errors, first: {result['first_error']}"
    result["cpu_ms"] = after - before
    return result


def run(targets: list[Target], plan: Plan, say: Any) -> None:
    loadgen = LoadGenerator()
    try:
        live = [t for t in targets if t.failed is None]
        for target in live:
            if target.pid:
                target.rss.append((0, tree_rss_mib(target.pid)))
            for stream in (False, True):
                measured_phase(loadgen, target, stream=stream, requests=plan.warmup)
            if target.failed:
                say(f"  {target.name}: dropped, warm-up failed ({target.failed})")
        started = time.monotonic()
        per_round = _split(plan.requests, plan.rounds)
        per_round_tp = _split(plan.throughput_requests, plan.rounds)
        for index in range(plan.rounds):
            live = [t for t in targets if t.failed is None]
            if time.monotonic() - started > plan.budget_s:
                say(f"  time budget ({plan.budget_s:.0f} s) spent: stopped after {index} rounds")
                break
            shift = index % max(len(live), 1)
            for target in live[shift:] + live[:shift]:
                for stream in (False, True):
                    mode = "stream" if stream else "non-stream"
                    result = measured_phase(
                        loadgen, target, stream=stream, requests=per_round[index]
                    )
                    target.cpu.setdefault(mode, {})[index] = (result["cpu_ms"], result["ok"])
                    target.latency.setdefault(mode, []).extend(result["latency_ms"])
                    if stream:
                        target.ttft.extend(result["ttft_ms"])
                if per_round_tp[index]:
                    result = measured_phase(
                        loadgen,
                        target,
                        stream=False,
                        requests=per_round_tp[index],
                        concurrency=plan.concurrency,
                    )
                    target.throughput.append((result["ok"], result["elapsed_s"]))
                    target.cpu.setdefault("throughput", {})[index] = (
                        result["cpu_ms"],
                        result["ok"],
                    )
                if target.pid:
                    target.rss.append((target.served, tree_rss_mib(target.pid)))
                if target.failed:
                    say(f"  {target.name}: dropped in round {index + 1} ({target.failed})")
            say(f"  round {index + 1}/{plan.rounds} done ({time.monotonic() - started:.0f} s)")
        for target in targets:
            short = plan.rss_requests - target.served
            if target.failed or not target.pid or short <= 0:
                continue
            say(f"  {target.name}: {short} more requests for the RSS figure")
            measured_phase(
                loadgen, target, stream=False, requests=short, concurrency=plan.concurrency
            )
            target.rss.append((target.served, tree_rss_mib(target.pid)))
    finally:
        loadgen.stop()


# --- figures ------------------------------------------------------------------------------------


def cpu_per_request(target: Target, mode: str) -> float | None:
    """CPU ms per answer over all rounds (the ratio of totals), ``None`` for direct."""
    phases = (target.cpu.get(mode) or {}).values()
    answers = sum(n for _, n in phases)
    if not target.pid or not answers:
        return None
    return sum(ms for ms, _ in phases) / answers


def cpu_rounds(target: Target) -> dict[str, list[float | None]]:
    """CPU ms per answer in each round, per mode: position i is round i+1's figure, ``None``
    where the target was not measured in that round or got no answer."""
    out: dict[str, list[float | None]] = {}
    for mode, phases in target.cpu.items():
        figures: list[float | None] = [None] * (max(phases, default=-1) + 1)
        for index, (ms, answers) in phases.items():
            figures[index] = ms / answers if answers else None
        out[mode] = figures
    return out


def cpu_round_ticks(target: Target) -> dict[str, list[int | None]]:
    """The clock ticks of CPU each round read, per mode, placed as in ``cpu_rounds``."""
    out: dict[str, list[int | None]] = {}
    for mode, phases in target.cpu.items():
        ticks: list[int | None] = [None] * (max(phases, default=-1) + 1)
        for index, (ms, _) in phases.items():
            ticks[index] = round(ms * CLK_TCK / 1000)
        out[mode] = ticks
    return out


def paired_ratios(
    gateway: Sequence[float | None], floor: Sequence[float | None]
) -> tuple[list[float], int]:
    """The gateway's figure over the floor's, round by round, for the rounds both were measured
    in; and how many of those were left out because the floor read no CPU at all (a round too
    short for /proc's clock ticks)."""
    ratios = []
    zero_floor = 0
    for own, base in zip(gateway, floor, strict=False):
        if own is None or base is None:
            continue
        if base <= 0:
            zero_floor += 1
            continue
        ratios.append(own / base)
    return ratios, zero_floor


def p50(values: list[float]) -> float | None:
    return statistics.median(values) if values else None


def req_per_s(target: Target) -> float | None:
    done = sum(n for n, _ in target.throughput)
    elapsed = sum(s for _, s in target.throughput)
    return done / elapsed if elapsed > 0 else None


def rss_slope(samples: list[tuple[int, float]]) -> float | None:
    """MiB per 1,000 requests after the first round (least squares), ``None`` with too few."""
    points = samples[1:]  # samples[0] is at start, before any request
    if len(points) < 3 or points[-1][0] == points[0][0]:
        return None
    mean_n = statistics.fmean(n for n, _ in points)
    mean_mib = statistics.fmean(mib for _, mib in points)
    spread = sum((n - mean_n) ** 2 for n, _ in points)
    slope = sum((n - mean_n) * (mib - mean_mib) for n, mib in points) / spread
    return slope * 1000


def rss_flat(target: Target) -> bool | None:
    slope = rss_slope(target.rss)
    return None if slope is None else slope <= FLAT_MIB_PER_1000


def figures(targets: list[Target]) -> dict[str, dict[str, Any]]:
    direct = next(t for t in targets if t.argv is None)
    base_p50 = p50(direct.latency.get("non-stream", []))
    base_stream_p50 = p50(direct.latency.get("stream", []))
    base_ttft = p50(direct.ttft)
    out: dict[str, dict[str, Any]] = {}
    for target in targets:
        if target.failed and not target.latency:
            out[target.name] = {"failed": target.failed, "summary": target.summary}
            continue
        own_p50 = p50(target.latency.get("non-stream", []))
        own_stream_p50 = p50(target.latency.get("stream", []))
        own_ttft = p50(target.ttft)
        out[target.name] = {
            "summary": target.summary,
            "failed": target.failed,
            "cpu_ms_non_stream": cpu_per_request(target, "non-stream"),
            "cpu_ms_stream": cpu_per_request(target, "stream"),
            "cpu_ms_at_concurrency": cpu_per_request(target, "throughput"),
            "cpu_ms_per_round": cpu_rounds(target) if target.pid else {},
            "cpu_ticks_per_round": cpu_round_ticks(target) if target.pid else {},
            "p50_ms": own_p50,
            "stream_p50_ms": own_stream_p50,
            "ttft_ms": own_ttft,
            "added_p50_ms": _minus(own_p50, base_p50),
            "added_stream_p50_ms": _minus(own_stream_p50, base_stream_p50),
            "added_ttft_ms": _minus(own_ttft, base_ttft),
            "req_per_s": req_per_s(target),
            "requests_served": target.served,
            "rss_mib": target.rss,
            "rss_mib_per_1000": rss_slope(target.rss),
            "rss_flat": rss_flat(target),
        }
    return out


def _minus(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def _num(value: float | None, digits: int = 2) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def table(rows: dict[str, dict[str, Any]]) -> str:
    header = (
        "stack",
        "CPU ms/req non-stream",
        "CPU ms/req stream",
        "added p50 ms",
        "added TTFT ms",
        "req/s",
        "RSS MiB start/after-N",
    )
    lines = [header]
    for name, row in rows.items():
        if row.get("cpu_ms_non_stream") is None and row.get("p50_ms") is None:
            lines.append((name, "failed: " + str(row.get("failed")), "", "", "", "", ""))
            continue
        if name == "direct":
            added_p50 = f"(p50 {_num(row['p50_ms'], 3)})"
            added_ttft = f"(TTFT {_num(row['ttft_ms'], 3)})"
            rss = "—"
        else:
            added_p50 = _num(row["added_p50_ms"])
            added_ttft = _num(row["added_ttft_ms"])
            samples = row["rss_mib"]
            rss = f"{samples[0][1]:.1f} / {samples[-1][1]:.1f} (N={samples[-1][0]})"
        lines.append(
            (
                name + (" (errors)" if row.get("failed") else ""),
                _num(row["cpu_ms_non_stream"]),
                _num(row["cpu_ms_stream"]),
                added_p50,
                added_ttft,
                _num(row["req_per_s"], 0),
                rss,
            )
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    rendered = [
        " | ".join(cell.ljust(widths[i]) for i, cell in enumerate(line)).rstrip() for line in lines
    ]
    rendered.insert(1, "-|-".join("-" * w for w in widths))
    return "\n".join(rendered)


class Verdict(StrEnum):
    """How a target came out: judged, not resolved by the run's noise, or not judged at all."""

    PASS = "PASS"
    FAIL = "FAIL"
    NOT_RESOLVED = "NOT RESOLVED"
    NOT_APPLICABLE = "n/a"

    @classmethod
    def of(cls, ok: bool | None) -> Verdict:
        return cls.NOT_APPLICABLE if ok is None else (cls.PASS if ok else cls.FAIL)

    @property
    def met(self) -> bool | None:
        """Whether the target is met; NOT RESOLVED counts as not met, n/a as not judged."""
        return None if self is Verdict.NOT_APPLICABLE else self is Verdict.PASS


@dataclass(frozen=True, slots=True)
class Check:
    """One of the issue's targets for the gateway: what was measured and how it came out."""

    label: str
    measured: str
    verdict: Verdict
    per_round: list[float] | None = None  # the per-round figures a CPU target is judged on
    ci: tuple[float, float, float] | None = None  # their median and its 95% CI


def judge_rounds(
    values: Sequence[float], limit: float
) -> tuple[Verdict, tuple[float, float, float] | None]:
    """The verdict on per-round figures against an upper ``limit``, and (median, low, high).

    PASS when the 95% bootstrap CI of the median lies at or below ``limit``, FAIL when it lies
    wholly above it, NOT RESOLVED when it straddles it. With fewer than ``MIN_CI_VALUES``
    rounds there is no CI (``None``) and the verdict is NOT RESOLVED.
    """
    if len(values) < MIN_CI_VALUES:
        return Verdict.NOT_RESOLVED, None
    ci = median_ci(values)
    _, low, high = ci
    if high <= limit:
        return Verdict.PASS, ci
    if low > limit:
        return Verdict.FAIL, ci
    return Verdict.NOT_RESOLVED, ci


def _shortest_round(*rows: dict[str, Any], mode: str) -> int | None:
    """The fewest clock ticks any of these rows read in a round of ``mode`` (``None``: unknown)."""
    ticks = [
        t for row in rows for t in row.get("cpu_ticks_per_round", {}).get(mode, []) if t is not None
    ]
    return min(ticks, default=None)


def _rounds_check(
    label: str,
    values: list[float],
    limit: float,
    *,
    unit: str,
    total: str,
    shortest: int | None,
) -> Check:
    verdict, ci = judge_rounds(values, limit)
    if ci is not None:
        median, low, high = ci
        judged = f"median {median:.3f}{unit} (95% CI {low:.3f} .. {high:.3f}, {len(values)} rounds)"
        if shortest is not None and shortest < MIN_TICKS_PER_ROUND:
            verdict = Verdict.NOT_RESOLVED
            judged += (
                f", but a round read only {shortest} clock ticks of CPU, too coarse to judge "
                f"(at least {MIN_TICKS_PER_ROUND}; more --requests per round)"
            )
    else:
        median_text = f"median {statistics.median(values):.3f}{unit} of " if values else ""
        judged = (
            f"{median_text}{len(values)} rounds, too few for a CI (at least {MIN_CI_VALUES}; "
            "run --rounds 10 or more)"
        )
    return Check(label, f"{judged}; {total}", verdict, per_round=values, ci=ci)


def verdicts(rows: dict[str, dict[str, Any]], gateway_floor: str | None) -> list[Check]:
    """Each of the issue's targets, judged on the gateway's row (and the floor's, same rounds).

    The CPU targets are judged on per-round figures (``judge_rounds``); the figure over all
    rounds (for a ratio: the ratio of totals) is shown beside them.
    """
    gw = rows.get("gateway")
    if gw is None or gw.get("cpu_ms_non_stream") is None:
        return []
    floor = rows.get(gateway_floor or "", {})
    gw_rounds = gw.get("cpu_ms_per_round") or {}
    floor_rounds = floor.get("cpu_ms_per_round") or {}
    own = [ms for ms in gw_rounds.get("non-stream", []) if ms is not None]
    checks = [
        _rounds_check(
            f"CPU non-stream ≤ {TARGET_CPU_MS} ms",
            own,
            TARGET_CPU_MS,
            unit=" ms",
            total=f"over all rounds {gw['cpu_ms_non_stream']:.3f} ms",
            shortest=_shortest_round(gw, mode="non-stream"),
        )
    ]
    for mode, key in (("non-stream", "cpu_ms_non_stream"), ("stream", "cpu_ms_stream")):
        base = floor.get(key)
        if not base or gw.get(key) is None:
            checks.append(
                Check(
                    f"CPU {mode} ≤ {TARGET_FLOOR_RATIO}× floor",
                    "floor not measured",
                    Verdict.NOT_APPLICABLE,
                )
            )
            continue
        ratios, zero_floor = paired_ratios(gw_rounds.get(mode, []), floor_rounds.get(mode, []))
        total = f"ratio of totals {gw[key] / base:.3f}× ({gw[key]:.3f} / {base:.3f} ms)"
        if zero_floor:
            total += f"; {zero_floor} rounds left out (the floor read 0 CPU ticks)"
        checks.append(
            _rounds_check(
                f"CPU {mode} ≤ {TARGET_FLOOR_RATIO}× floor ({gateway_floor})",
                ratios,
                TARGET_FLOOR_RATIO,
                unit="×",
                total=total,
                shortest=_shortest_round(gw, floor, mode=mode),
            )
        )
    for label, key, limit in (
        ("added p50 (concurrency 1)", "added_p50_ms", TARGET_ADDED_P50_MS),
        ("added time to first token", "added_ttft_ms", TARGET_ADDED_TTFT_MS),
    ):
        value = gw.get(key)
        checks.append(
            Check(
                f"{label} ≤ {limit} ms",
                _num(value) + " ms",
                Verdict.of(None if value is None else value <= limit),
            )
        )
    samples = gw["rss_mib"]
    served, rss = samples[-1]
    if served >= TARGET_RSS_AFTER:
        checks.append(
            Check(
                f"RSS ≤ {TARGET_RSS_MIB:.0f} MiB after {TARGET_RSS_AFTER:,} requests",
                f"{rss:.1f} MiB after {served:,}",
                Verdict.of(rss <= TARGET_RSS_MIB),
            )
        )
    else:
        checks.append(
            Check(
                f"RSS ≤ {TARGET_RSS_MIB:.0f} MiB after {TARGET_RSS_AFTER:,} requests",
                f"only {served:,} requests served (run with more --requests)",
                Verdict.NOT_APPLICABLE,
            )
        )
    series = ", ".join(f"{mib:.1f}" for _, mib in samples)
    slope = gw.get("rss_mib_per_1000")
    growth = "too few samples" if slope is None else f"{slope:+.3f} MiB per 1,000 requests"
    checks.append(
        Check(
            f"RSS flat (≤ {FLAT_MIB_PER_1000} MiB per 1,000 requests after round 1)",
            f"{growth} [{series}]",
            Verdict.of(gw["rss_flat"]),
        )
    )
    return checks


def default_gateway_floor() -> str:
    """The floor of the stack the gateway runs on here: uvicorn with httptools + uvloop if
    installed (uvicorn picks them on its own), upstream through chatcontract's aiohttp
    transport when aiohttp is installed (``chatcontract.gateway._wire``), else httpx2's."""
    have = all(importlib.util.find_spec(m) is not None for m in ("httptools", "uvloop"))
    if not have:
        return "uvicorn-h11"
    if importlib.util.find_spec("aiohttp") is not None:
        return "uvicorn-httptools-httpx2-aiohttp"
    return "uvicorn-httptools"


# --- command line -------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="CPU, latency and memory of the gateway against a bare proxy per stack."
    )
    parser.add_argument(
        "--requests",
        type=int,
        default=5000,
        help="requests per target and mode (non-streaming, streaming) at concurrency 1 "
        "(default 5000: with warm-up and the req/s phase, past 10,000 per target)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=10,
        help="interleaved rounds (default 10). The CPU targets are judged on the median of the "
        f"per-round figures with a 95%% CI: fewer than {MIN_CI_VALUES} rounds give no CI (NOT "
        "RESOLVED), and 10 or more are needed for a meaningful one. /proc counts CPU in clock "
        f"ticks ({1000 // CLK_TCK} ms here) and a round that read fewer than "
        f"{MIN_TICKS_PER_ROUND} is too coarse to judge: keep a few hundred requests per round",
    )
    parser.add_argument(
        "--throughput-requests",
        type=int,
        default=None,
        help="requests per target for req/s (default: a fifth of --requests)",
    )
    parser.add_argument(
        "--concurrency", type=int, default=4, help="concurrency of the req/s phase (default 4)"
    )
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: 150 requests per mode, 2 rounds"
    )
    parser.add_argument(
        "--only",
        default=None,
        help="comma-separated floors to measure (default: "
        + ",".join(DEFAULT_STACKS)
        + "; also: "
        + ",".join(sorted(set(STACKS) - set(DEFAULT_STACKS)))
        + "; 'none' for no floor)",
    )
    parser.add_argument(
        "--gateway-cmd",
        default=None,
        help="command that serves the gateway; {contract}, {port} and {upstream_port} are "
        "filled in (default, when the installed chatcontract has it: "
        "'chatcontract gateway --contract {contract} --listen 127.0.0.1:{port}')",
    )
    parser.add_argument("--no-gateway", action="store_true", help="measure the floors only")
    parser.add_argument(
        "--gateway-floor",
        default=None,
        help="the floor the gateway is compared with (default: the stack uvicorn picks here, "
        f"{default_gateway_floor()})",
    )
    parser.add_argument(
        "--event-gap-ms",
        type=float,
        default=0.0,
        help="the upstream waits this long between stream events (default 0, as the simulator)",
    )
    parser.add_argument(
        "--budget-s",
        type=float,
        default=DEFAULT_BUDGET_S,
        help=f"stop starting rounds after this long (default {DEFAULT_BUDGET_S:.0f} s)",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write every figure here")
    args = parser.parse_args(argv)
    if args.quick:
        args.requests, args.rounds = 150, 2
    if args.requests < 1 or args.rounds < 1 or args.concurrency < 1:
        raise BenchError("--requests, --rounds and --concurrency must be at least 1")
    if args.rounds > args.requests:
        raise BenchError("--rounds must not exceed --requests (each round needs a request)")
    if args.throughput_requests is None:
        args.throughput_requests = max(args.requests // 5, args.rounds)
    names = (
        DEFAULT_STACKS
        if args.only is None
        else tuple(n.strip() for n in args.only.split(",") if n.strip() and n.strip() != "none")
    )
    unknown = [n for n in names if n not in STACKS]
    if unknown:
        raise BenchError(
            f"unknown stack {', '.join(unknown)}: write --only with any of "
            + ", ".join(sorted(STACKS))
        )
    args.stacks = names
    if args.gateway_floor is not None and args.gateway_floor not in STACKS:
        raise BenchError(
            f"unknown --gateway-floor {args.gateway_floor}: write one of "
            + ", ".join(sorted(STACKS))
        )
    if args.gateway_cmd is not None and "{port}" not in args.gateway_cmd:
        raise BenchError("--gateway-cmd must contain {port} (and usually {contract})")
    return args


@contextlib.contextmanager
def started(targets: list[Target], workdir: Path) -> Iterator[None]:
    try:
        for target in targets:
            target.start(workdir)
        yield
    finally:
        for target in reversed(targets):
            target.stop()
            if target.log is not None:
                target.log.close()


def main(argv: list[str] | None = None) -> int:
    try:
        args = parse_args(argv)
    except BenchError as exc:
        print(f"bench_gateway: {exc}", file=sys.stderr)
        return 2
    say = print
    plan = Plan(
        requests=args.requests,
        rounds=args.rounds,
        throughput_requests=args.throughput_requests,
        concurrency=args.concurrency,
        warmup=min(100, args.requests),
        budget_s=args.budget_s,
        rss_requests=0 if args.quick else TARGET_RSS_AFTER,
    )
    say(
        f"gateway benchmark: {plan.requests} requests per mode at concurrency 1 and "
        f"{plan.throughput_requests} at concurrency {plan.concurrency}, per target, in "
        f"{plan.rounds} interleaved rounds (+{plan.warmup} warm-up per mode); "
        f"{os.cpu_count()} CPUs, python {sys.version.split()[0]}"
    )
    with tempfile.TemporaryDirectory(prefix="bench-gateway-") as tmp:
        workdir = Path(tmp)
        upstream_port = free_port()
        upstream = Target(
            name="upstream",
            summary="canned simulator answers",
            argv=[
                sys.executable,
                str(HERE / "_gateway_upstream.py"),
                "--port",
                str(upstream_port),
                "--event-gap-ms",
                str(args.event_gap_ms),
            ],
            port=upstream_port,
        )
        targets = [
            Target(
                name="direct",
                summary="the load generator to the upstream, no proxy",
                argv=None,
                port=upstream_port,
            )
        ]
        gateway_floor = args.gateway_floor or default_gateway_floor()
        command = None
        if not args.no_gateway:
            command = args.gateway_cmd or gateway_available()
            if command is None:
                say(
                    "  gateway: skipped, the installed chatcontract has no 'gateway' command "
                    "(give --gateway-cmd to measure another build)"
                )
        stacks = list(args.stacks)
        if command is not None and gateway_floor not in stacks:
            say(f"  {gateway_floor}: added, the floor the gateway is judged against")
            stacks.append(gateway_floor)
        for name in stacks:
            stack = STACKS[name]
            missing = missing_modules(stack)
            if missing:
                say(f"  {name}: skipped, needs {' '.join(missing)} (pip install --group bench)")
                continue
            targets.append(floor_target(stack, upstream_port))
        if command is not None:
            targets.append(gateway_target(command, upstream_port, workdir))
        with started([upstream, *[t for t in targets if t.argv is not None]], workdir):
            for target in [upstream, *targets]:
                try:
                    target.wait_ready()
                except BenchError as exc:
                    if target is upstream:
                        print(f"bench_gateway: the upstream did not start: {exc}", file=sys.stderr)
                        return 1
                    target.failed = str(exc)
                    say(f"  {target.name}: not measured ({exc})")
            run(targets, plan, say)
        rows = figures(targets)
    say("")
    say(table(rows))
    say("")
    for name, row in rows.items():
        say(f"  {name}: {row['summary']}")
    say(
        "  CPU: utime+stime of the target's process tree from /proc per answered request "
        "(concurrency 1); added = p50 minus direct's p50, same run; req/s at concurrency "
        f"{plan.concurrency} shares the cores with the load generator"
    )
    checks = verdicts(rows, gateway_floor)
    if checks:
        say(
            "  CPU targets: judged per round (the gateway's CPU per request, or that over the "
            "floor's in the same round); shown is the median of the per-round figures with its "
            f"95% CI (percentile bootstrap of the median, {BOOTSTRAP_RESAMPLES} resamples, fixed "
            "seed), then the figure over all rounds. PASS: the CI's upper bound is within the "
            "target; FAIL: its lower bound is beyond it; NOT RESOLVED (counted as not met): the "
            f"CI straddles the target, fewer than {MIN_CI_VALUES} rounds (10+ for a "
            f"meaningful CI), or a round read fewer than {MIN_TICKS_PER_ROUND} clock ticks of CPU"
        )
        say("")
        say(f"targets (issue 13), the gateway against the {gateway_floor} floor:")
        width = max(len(check.verdict) for check in checks)
        for check in checks:
            say(f"  {check.verdict:<{width}}  {check.label}: {check.measured}")
    elif command is not None:
        say("\ntargets: the gateway did not answer, nothing to check")
    if args.json is not None:
        args.json.write_text(
            json.dumps(
                {
                    "plan": plan.__dict__,
                    "gateway_floor": gateway_floor,
                    "rows": rows,
                    "targets": [
                        {
                            "target": check.label,
                            "measured": check.measured,
                            "verdict": str(check.verdict),
                            "pass": check.verdict.met,
                            "per_round": check.per_round,
                            "median_ci_95": check.ci,
                        }
                        for check in checks
                    ],
                },
                indent=2,
            )
        )
    failed = [name for name, row in rows.items() if row.get("failed")]
    if failed:
        say(f"\nerrors in: {', '.join(failed)} (see the lines above)")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
