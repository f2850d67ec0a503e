"""Smoke tests of ``benchmarks/bench_gateway.py``: it runs end to end and reports numbers.

No timing is asserted (the figures depend on the machine); what is checked is that a tiny run
produces a table with figures in every column, that the issue's targets are judged for a
gateway row, and that bad options are one line and exit 2. Each run is bounded in time.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "benchmarks" / "bench_gateway.py"
RUN_TIMEOUT_S = 240
NUMBER = re.compile(r"^\d+(\.\d+)?$")
VERDICT = re.compile(r"^(PASS|FAIL|NOT RESOLVED|n/a)\s+(.*)$")


def _run(*args: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(BENCH), *args],
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
        cwd=tmp_path,
        check=False,
    )


def _table_rows(stdout: str) -> dict[str, list[str]]:
    lines = stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("stack "))
    rows = {}
    for line in lines[start + 2 :]:
        if not line.strip():
            break
        cells = [cell.strip() for cell in line.split("|")]
        rows[cells[0]] = cells[1:]
    return rows


def test_quick_run_on_one_floor_prints_a_table_with_figures(tmp_path):
    out = tmp_path / "figures.json"

    result = _run(
        "--quick", "--only", "uvicorn-h11", "--no-gateway", "--json", str(out), tmp_path=tmp_path
    )

    assert result.returncode == 0, result.stdout + result.stderr
    rows = _table_rows(result.stdout)
    assert set(rows) == {"direct", "uvicorn-h11"}
    cpu, cpu_stream, added_p50, added_ttft, req_s, rss = rows["uvicorn-h11"]
    for cell in (cpu, cpu_stream, added_p50.lstrip("-"), added_ttft.lstrip("-"), req_s):
        assert NUMBER.match(cell), rows["uvicorn-h11"]
    assert re.match(r"^\d+\.\d / \d+\.\d \(N=\d+\)$", rss), rss
    figures = json.loads(out.read_text())
    floor = figures["rows"]["uvicorn-h11"]
    assert floor["cpu_ms_non_stream"] > 0
    assert floor["cpu_ms_stream"] > 0
    assert floor["ttft_ms"] > 0
    # warm-up (100 per mode) + 150 per mode + the req/s phase (30): every one answered
    assert floor["requests_served"] == 2 * 100 + 2 * 150 + 30
    assert floor["failed"] is None
    assert figures["rows"]["direct"]["p50_ms"] > 0
    assert figures["targets"] == []  # no gateway row, nothing judged


def test_a_gateway_command_gets_a_row_and_every_target_judged(tmp_path):
    # A floor stands in for the gateway: the harness only sees a command serving {port}.
    stand_in = (
        f"{sys.executable} {BENCH.parent / '_gateway_floors.py'} uvicorn-h11 "
        "--port {port} --upstream-port {upstream_port}"
    )

    result = _run(
        "--quick",
        "--only",
        "uvicorn-h11",
        "--gateway-cmd",
        stand_in,
        "--gateway-floor",
        "uvicorn-h11",
        tmp_path=tmp_path,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert NUMBER.match(_table_rows(result.stdout)["gateway"][0])
    section = result.stdout.split("targets (issue 13)", 1)[1].splitlines()[1:]
    lines = [line.strip() for line in section if line.strip()]
    judged = [VERDICT.match(line) for line in lines]
    assert all(judged), lines
    verdicts = {m.group(2).split(":")[0]: (m.group(1), m.group(2)) for m in judged if m}
    assert len(verdicts) == 7, lines
    # a quick run has 2 rounds: no CI, so the three CPU targets are not resolved, and say why
    cpu = {label: v for label, v in verdicts.items() if label.startswith("CPU")}
    assert len(cpu) == 3, cpu
    for mark, text in cpu.values():
        assert mark == "NOT RESOLVED"
        assert "2 rounds, too few for a CI (at least 5; run --rounds 10 or more)" in text
    assert "ratio of totals" in verdicts["CPU stream ≤ 1.3× floor (uvicorn-h11)"][1]
    # a quick run serves far fewer than 10,000 requests: the RSS target cannot be judged
    assert verdicts["RSS ≤ 80 MiB after 10,000 requests"][0] == "n/a"
    assert "NOT RESOLVED (counted as not met)" in result.stdout  # the legend says the rule


def test_the_installed_chatcontract_gateway_is_found_and_measured(tmp_path):
    out = tmp_path / "figures.json"

    result = _run(
        "--quick",
        "--only",
        "uvicorn-h11",
        "--gateway-floor",
        "uvicorn-h11",
        "--json",
        str(out),
        tmp_path=tmp_path,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "chatcontract gateway --contract CONTRACT" in result.stdout
    gateway = json.loads(out.read_text())["rows"]["gateway"]
    assert gateway["failed"] is None  # every answer a complete 200 through the real gateway
    assert gateway["cpu_ms_non_stream"] > 0
    assert gateway["ttft_ms"] > 0
    assert gateway["requests_served"] == 2 * 100 + 2 * 150 + 30


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--only", "nginx"], "unknown stack nginx: write --only with any of"),
        (["--gateway-floor", "nginx"], "unknown --gateway-floor nginx"),
        (["--gateway-cmd", "chatcontract gateway"], "--gateway-cmd must contain {port}"),
        (["--requests", "0"], "must be at least 1"),
    ],
    ids=["unknown-stack", "unknown-floor", "gateway-cmd-without-port", "zero-requests"],
)
def test_bad_options_are_one_line_and_exit_2(tmp_path, args, says):
    result = _run(*args, tmp_path=tmp_path)

    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.strip().splitlines()) == 1
    assert says in result.stderr


def test_first_token_is_the_first_content_delta_not_the_role_chunk(load_benchmark):
    upstream = load_benchmark("_gateway_upstream")
    loadgen = load_benchmark("_loadgen")
    import asyncio

    events = asyncio.run(upstream.capture())[(True, True)].parts

    matches = [i for i, event in enumerate(events) if loadgen.FIRST_TOKEN.search(event)]
    assert matches[0] == 1  # events[0] is the role chunk with "content": ""
    assert not loadgen.FIRST_TOKEN.search(events[0])


#: Round-to-round noise, a few percent either way, so the per-round figures have a spread.
JITTER = (-0.02, 0.01, 0.0, 0.02, -0.01, 0.015, -0.015, 0.005, -0.005, 0.0)


def _row(*, jitter: tuple[float, ...] = JITTER, **overrides: object) -> dict[str, object]:
    row: dict[str, object] = {
        "cpu_ms_non_stream": 0.8,
        "cpu_ms_stream": 1.0,
        "added_p50_ms": 0.5,
        "added_ttft_ms": 0.5,
        "rss_mib": [(0, 30.0), (1100, 40.0), (11_000, 41.0)],
        "rss_flat": True,
    }
    row.update(overrides)
    # ten rounds around the totals
    row["cpu_ms_per_round"] = {
        mode: [row[key] * (1 + d) for d in jitter]
        for mode, key in (("non-stream", "cpu_ms_non_stream"), ("stream", "cpu_ms_stream"))
    }
    return row


@pytest.mark.parametrize(
    ("gateway", "failing"),
    [
        (_row(), set()),
        (_row(cpu_ms_non_stream=1.2), {"CPU non-stream ≤ 1.0 ms", "CPU non-stream ≤ 1.3"}),
        (_row(cpu_ms_stream=1.4), {"CPU stream ≤ 1.3"}),
        (_row(added_p50_ms=1.5), {"added p50"}),
        (_row(added_ttft_ms=1.5), {"added time to first token"}),
        (_row(rss_mib=[(0, 30.0), (1100, 70.0), (11_000, 90.0)]), {"RSS ≤ 80"}),
        (_row(rss_flat=False), {"RSS flat"}),
    ],
    ids=["all-pass", "cpu", "stream-ratio", "p50", "ttft", "rss", "rss-growing"],
)
def test_targets_fail_exactly_where_the_gateway_misses_them(gateway, failing, load_benchmark):
    bench = load_benchmark("bench_gateway")
    # the floor's noise runs the other way round: the per-round ratios have a spread too
    floor = _row(cpu_ms_non_stream=0.7, cpu_ms_stream=1.0, jitter=JITTER[::-1])
    rows = {"uvicorn-h11": floor, "gateway": gateway}

    checks = bench.verdicts(rows, "uvicorn-h11")

    failed = {check.label for check in checks if check.verdict is bench.Verdict.FAIL}
    assert len(checks) == 7
    assert all(check.verdict in {bench.Verdict.PASS, bench.Verdict.FAIL} for check in checks)
    assert {f for f in failing if not any(label.startswith(f) for label in failed)} == set()
    assert len(failed) == len(failing)


@pytest.mark.parametrize(
    ("samples", "flat"),
    [
        ([(0, 30.0), (1100, 40.0), (2200, 40.0), (3300, 40.1), (4400, 40.0)], True),
        ([(0, 30.0), (1100, 40.0), (2200, 40.2), (3300, 40.4), (4400, 40.6)], False),
        ([(0, 30.0), (1100, 40.0), (2200, 40.0)], None),
    ],
    ids=["plateau-after-warm-up", "creeping-0.18-MiB-per-1000", "too-few-samples"],
)
def test_rss_is_flat_when_it_stops_growing_after_the_first_round(samples, flat, load_benchmark):
    bench = load_benchmark("bench_gateway")
    target = bench.Target(name="t", summary="", argv=None, port=0, rss=samples)

    assert bench.rss_flat(target) is flat
