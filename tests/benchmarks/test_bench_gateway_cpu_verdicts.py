"""``bench_gateway.py``'s CPU verdicts: per-round figures, paired by round with the floor's, judged
on the median's 95% bootstrap CI (PASS / FAIL / NOT RESOLVED), never on one ratio of totals.

Hand-made rounds throughout; the one run below drives the real ``run()`` bookkeeping with a fake
load generator and a fake /proc, so nothing here is timed.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from types import SimpleNamespace

import pytest

FLOOR = "uvicorn-h11"


@pytest.fixture(name="bench", scope="module")
def bench_module(load_benchmark):
    return load_benchmark("bench_gateway")


# --- pairing ------------------------------------------------------------------------------------


def test_cpu_rounds_puts_each_figure_at_its_round_and_none_where_nothing_was_answered(bench):
    target = bench.Target(name="t", summary="", argv=None, port=0)
    # recorded out of order, round 3 (index 2) answered nothing, round 5 never measured
    target.cpu = {"non-stream": {1: (40.0, 80), 0: (50.0, 100), 2: (30.0, 0), 5: (9.0, 10)}}

    assert bench.cpu_rounds(target) == {"non-stream": [0.5, 0.5, None, None, None, 0.9]}


def test_cpu_round_ticks_counts_the_clock_ticks_each_round_read(bench, monkeypatch):
    monkeypatch.setattr(bench, "CLK_TCK", 100)
    target = bench.Target(name="t", summary="", argv=None, port=0)
    # 29.999999...: a difference of two /proc readings, three ticks whatever the float error
    target.cpu = {
        "stream": {1: (250.0, 500), 0: (40.0, 10), 2: (29.999999999, 30)},
        "non-stream": {1: (0.0, 0)},
    }

    assert bench.cpu_round_ticks(target) == {"stream": [4, 25, 3], "non-stream": [None, 0]}


@pytest.mark.parametrize(
    ("gateway", "floor", "ratios", "zero_floor"),
    [
        ([1.2, 0.9, 1.5], [1.0, 0.6, 1.0], [1.2, 1.5, 1.5], 0),
        ([1.2, 0.9], [1.0, 0.6, 1.0, 0.5], [1.2, 1.5], 0),
        ([1.2, None, 1.5], [1.0, 0.6, None], [1.2], 0),
        ([1.2, 0.9, 1.5], [1.0, None, 0.5], [1.2, 3.0], 0),
        ([1.2, 0.9, 1.5], [1.0, 0.0, 1.0], [1.2, 1.5], 1),
    ],
    ids=[
        "same-rounds",
        "gateway-dropped-after-round-2",
        "a-round-without-answers",
        "a-floor-round-without-answers",
        "floor-0-ticks",
    ],
)
def test_paired_ratios_divide_the_gateway_by_the_floor_of_the_same_round(
    bench, gateway, floor, ratios, zero_floor
):
    got, zeros = bench.paired_ratios(gateway, floor)

    assert got == pytest.approx(ratios)
    assert zeros == zero_floor


class FakeLoad:
    """The load generator and /proc in one: each target's CPU per request is a table by round.

    The round of a phase is told by counting the target's phases of that mode (the first one is
    the warm-up), so the figures the bench records must come back at the round they were made.
    """

    def __init__(self, per_request, *, fail_at=None):
        self.per_request = per_request  # (port, stream) → CPU ms per request, by round
        self.fail_at = fail_at or {}  # port → the round where one answer fails
        self.cpu = defaultdict(float)
        self.calls = Counter()

    def phase(self, port, *, stream, requests, concurrency=1):
        errors = 0
        if concurrency == 1:
            index = self.calls[port, stream] - 1  # -1: the warm-up
            self.calls[port, stream] += 1
            errors = int(self.fail_at.get(port) == index)
            if index >= 0 and (port, stream) in self.per_request:
                self.cpu[port] += (requests - errors) * self.per_request[port, stream][index]
        return {
            "ok": requests - errors,
            "errors": errors,
            "first_error": "HTTP 502" if errors else None,
            "latency_ms": [1.0] * requests,
            "ttft_ms": [0.5] * requests if stream else [],
            "elapsed_s": 1.0,
        }

    def stop(self):
        pass


def _measure(bench, monkeypatch, fake, rounds):
    monkeypatch.setattr(bench, "LoadGenerator", lambda: fake)
    monkeypatch.setattr(bench, "tree_cpu_ms", lambda pid: fake.cpu[pid])
    monkeypatch.setattr(bench, "tree_rss_mib", lambda pid: 40.0)
    targets = [
        bench.Target(name="direct", summary="", argv=None, port=1),
        bench.Target(name=FLOOR, summary="", argv=["-"], port=2, process=SimpleNamespace(pid=2)),
        bench.Target(
            name="gateway", summary="", argv=["-"], port=3, process=SimpleNamespace(pid=3)
        ),
    ]
    plan = bench.Plan(
        requests=1000 * rounds,  # a round reads 50+ clock ticks: fine enough to judge
        rounds=rounds,
        throughput_requests=rounds,
        concurrency=4,
        warmup=5,
        budget_s=3600.0,
        rss_requests=0,
    )
    bench.run(targets, plan, lambda *_: None)
    rows = bench.figures(targets)
    return rows, {check.label.split(" (")[0]: check for check in bench.verdicts(rows, FLOOR)}


GATEWAY_NON_STREAM = [1.2, 0.9, 1.5, 1.1, 1.3, 1.0]
FLOOR_NON_STREAM = [1.0, 0.6, 1.0, 1.1, 0.5, 0.8]
GATEWAY_STREAM = [2.0, 2.2, 1.8, 2.4, 2.1, 1.9]
FLOOR_STREAM = [1.6, 2.0, 1.0, 1.5, 2.1, 1.9]


def test_a_run_pairs_the_gateway_with_the_floor_round_by_round(bench, monkeypatch):
    fake = FakeLoad(
        {
            (2, False): FLOOR_NON_STREAM,
            (3, False): GATEWAY_NON_STREAM,
            (2, True): FLOOR_STREAM,
            (3, True): GATEWAY_STREAM,
        }
    )

    rows, checks = _measure(bench, monkeypatch, fake, rounds=6)

    rounds = rows["gateway"]["cpu_ms_per_round"]
    assert rounds["non-stream"] == pytest.approx(GATEWAY_NON_STREAM)
    assert rounds["stream"] == pytest.approx(GATEWAY_STREAM)
    assert rows[FLOOR]["cpu_ms_per_round"]["non-stream"] == pytest.approx(FLOOR_NON_STREAM)
    assert rows["direct"]["cpu_ms_per_round"] == {}
    ticks = [round(1000 * ms * bench.CLK_TCK / 1000) for ms in GATEWAY_NON_STREAM]
    assert rows["gateway"]["cpu_ticks_per_round"]["non-stream"] == ticks
    non_stream = checks["CPU non-stream ≤ 1.3× floor"]
    assert non_stream.per_round == pytest.approx([1.2, 1.5, 1.5, 1.0, 2.6, 1.25])
    stream = checks["CPU stream ≤ 1.3× floor"]
    assert stream.per_round == pytest.approx([1.25, 1.1, 1.8, 1.6, 1.0, 1.0])
    assert checks["CPU non-stream ≤ 1.0 ms"].per_round == pytest.approx(GATEWAY_NON_STREAM)
    # the ratio of totals is still the table's figure and is shown beside the median
    assert rows["gateway"]["cpu_ms_non_stream"] == pytest.approx(7.0 / 6)
    assert "ratio of totals 1.400×" in non_stream.measured


def test_a_gateway_dropped_mid_run_is_paired_on_the_rounds_it_ran(bench, monkeypatch):
    fake = FakeLoad(
        {(2, False): FLOOR_NON_STREAM, (3, False): GATEWAY_NON_STREAM},
        fail_at={3: 3},  # one error in round 4: the gateway is dropped after it
    )

    rows, checks = _measure(bench, monkeypatch, fake, rounds=6)

    assert rows["gateway"]["failed"] == "1 errors, first: HTTP 502"
    assert rows["gateway"]["cpu_ms_per_round"]["non-stream"] == pytest.approx([1.2, 0.9, 1.5, 1.1])
    ratios = checks["CPU non-stream ≤ 1.3× floor"]
    assert ratios.per_round == pytest.approx([1.2, 1.5, 1.5, 1.0])
    assert ratios.verdict is bench.Verdict.NOT_RESOLVED  # 4 rounds: no CI
    assert "4 rounds, too few for a CI" in ratios.measured


# --- the three-way verdict -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "verdict"),
    [
        ([1.10, 1.15, 1.20, 1.12, 1.18, 1.10, 1.20, 1.15, 1.11, 1.19], "PASS"),
        ([1.40, 1.55, 1.45, 1.60, 1.42, 1.50, 1.48, 1.58, 1.44, 1.52], "FAIL"),
        ([1.10, 1.50, 1.20, 1.45, 1.25, 1.35, 1.15, 1.40, 1.28, 1.32], "NOT RESOLVED"),
        ([1.00, 1.05, 1.10, 1.20, 1.25, 1.28, 1.35, 1.40, 1.45, 1.50], "NOT RESOLVED"),
        ([1.10, 1.15, 1.20, 1.31, 1.33, 1.35, 1.38, 1.40, 1.45, 1.50], "NOT RESOLVED"),
        ([1.3] * 10, "PASS"),
        ([1.3001] * 10, "FAIL"),
        ([1.3] * 6 + [1.4] * 4, "NOT RESOLVED"),
    ],
    ids=[
        "ci-below",
        "ci-above",
        "ci-straddles",
        "median-below-ci-not",
        "median-above-ci-not",
        "upper-bound-on-the-limit",
        "lower-bound-just-over",
        "lower-bound-on-the-limit",
    ],
)
def test_judge_rounds_passes_only_below_and_fails_only_above_the_whole_ci(bench, values, verdict):
    got, ci = bench.judge_rounds(values, 1.3)

    assert got == verdict
    median, low, high = ci
    assert (median, low, high) == bench.median_ci(values)


@pytest.mark.parametrize("count", [0, 1, 4], ids=["none", "one", "four"])
def test_fewer_than_five_rounds_are_not_resolved_without_a_ci(bench, count):
    got, ci = bench.judge_rounds([0.5] * count, 1.3)

    assert got is bench.Verdict.NOT_RESOLVED
    assert ci is None


def test_five_rounds_are_enough_for_a_ci(bench):
    got, ci = bench.judge_rounds([0.5] * 5, 1.3)

    assert got is bench.Verdict.PASS
    assert ci == (0.5, 0.5, 0.5)


@pytest.mark.parametrize(
    ("verdict", "met"),
    [("PASS", True), ("FAIL", False), ("NOT RESOLVED", False), ("n/a", None)],
    ids=["pass", "fail", "not-resolved-is-not-met", "n/a-not-judged"],
)
def test_not_resolved_counts_as_not_met(bench, verdict, met):
    assert bench.Verdict(verdict).met is met


# --- the verdict lines ---------------------------------------------------------------------------


def _rows(gateway_non_stream, floor_non_stream, *, gateway_stream=None, floor_stream=None):
    """The gateway's and the floor's rows, totals from the per-round figures (same requests)."""

    def row(non_stream, stream):
        return {
            "cpu_ms_non_stream": sum(non_stream) / len(non_stream),
            "cpu_ms_stream": sum(stream) / len(stream),
            "cpu_ms_per_round": {"non-stream": non_stream, "stream": stream},
            "added_p50_ms": 0.5,
            "added_ttft_ms": 0.5,
            "rss_mib": [(0, 30.0), (1100, 40.0), (11_000, 41.0)],
            "rss_flat": True,
        }

    return {
        FLOOR: row(floor_non_stream, floor_stream or floor_non_stream),
        "gateway": row(gateway_non_stream, gateway_stream or gateway_non_stream),
    }


def _checks(bench, rows):
    return {check.label.split(" (")[0]: check for check in bench.verdicts(rows, FLOOR)}


def test_the_verdict_follows_the_ci_not_the_ratio_of_totals(bench):
    # one slow round pulls the totals over 1.3, the other nine sit at 1.1-1.2
    floor = [0.5] * 10
    gateway = [0.55, 0.6, 0.58, 0.56, 0.59, 0.6, 0.57, 0.55, 0.58, 2.5]
    checks = _checks(bench, _rows(gateway, floor))

    ratio = checks["CPU non-stream ≤ 1.3× floor"]
    assert ratio.verdict is bench.Verdict.PASS
    assert "ratio of totals 1.536× (0.768 / 0.500 ms)" in ratio.measured
    assert ratio.measured.startswith("median 1.160× (95% CI ")
    assert ", 10 rounds); ratio of totals" in ratio.measured


@pytest.mark.parametrize(
    ("gateway", "verdict"),
    [
        ([0.80, 0.85, 0.90, 0.82, 0.88, 0.84, 0.86, 0.83, 0.87, 0.81], "PASS"),
        ([0.80, 1.20, 0.90, 1.10, 0.95, 1.05, 0.85, 1.15, 0.98, 1.02], "NOT RESOLVED"),
        ([1.10, 1.20, 1.15, 1.12, 1.18, 1.11, 1.19, 1.14, 1.16, 1.13], "FAIL"),
    ],
    ids=["ci-below-1ms", "ci-straddles-1ms", "ci-above-1ms"],
)
def test_cpu_per_request_is_judged_on_its_per_round_ci(bench, gateway, verdict):
    floor = [1.0] * 10  # the floor ratio is not what is looked at here
    checks = _checks(bench, _rows(gateway, floor))

    cpu = checks["CPU non-stream ≤ 1.0 ms"]
    assert cpu.verdict == verdict
    assert cpu.per_round == gateway
    assert f"; over all rounds {sum(gateway) / 10:.3f} ms" in cpu.measured


def test_few_rounds_say_so_in_each_cpu_verdict_line(bench):
    checks = _checks(bench, _rows([0.6, 0.6, 0.6], [0.5, 0.5, 0.5]))

    for label in (
        "CPU non-stream ≤ 1.0 ms",
        "CPU non-stream ≤ 1.3× floor",
        "CPU stream ≤ 1.3× floor",
    ):
        check = checks[label]
        assert check.verdict is bench.Verdict.NOT_RESOLVED
        assert check.ci is None
        assert "3 rounds, too few for a CI (at least 5; run --rounds 10 or more)" in check.measured
        assert "95% CI" not in check.measured


def test_floor_rounds_without_cpu_ticks_are_left_out_and_counted(bench):
    floor = [0.5, 0.0, 0.5, 0.5, 0.5, 0.5, 0.5]
    checks = _checks(bench, _rows([0.55] * 7, floor))

    ratio = checks["CPU non-stream ≤ 1.3× floor"]
    assert ratio.per_round == pytest.approx([1.1] * 6)
    assert "1 rounds left out (the floor read 0 CPU ticks)" in ratio.measured


@pytest.mark.parametrize(
    ("gateway_ticks", "floor_ticks", "resolved"),
    [
        (50, 50, {"CPU non-stream ≤ 1.0 ms", "CPU non-stream ≤ 1.3× floor"}),
        (50, 10, {"CPU non-stream ≤ 1.0 ms", "CPU non-stream ≤ 1.3× floor"}),
        (50, 9, {"CPU non-stream ≤ 1.0 ms"}),
        (9, 50, set()),
        (0, 50, set()),
    ],
    ids=["fine", "floor-at-10-ticks", "floor-at-9-ticks", "gateway-at-9-ticks", "gateway-at-0"],
)
def test_rounds_too_short_for_the_clock_are_not_resolved(
    bench, gateway_ticks, floor_ticks, resolved
):
    # clearly over both limits: FAIL wherever the rounds are long enough to judge
    rows = _rows([1.5 + 0.01 * i for i in range(10)], [1.0] * 10)
    rows["gateway"]["cpu_ticks_per_round"] = {
        "non-stream": [gateway_ticks + 5] * 9 + [gateway_ticks]
    }
    rows[FLOOR]["cpu_ticks_per_round"] = {"non-stream": [floor_ticks] + [floor_ticks + 5] * 9}

    checks = _checks(bench, rows)

    for label in ("CPU non-stream ≤ 1.0 ms", "CPU non-stream ≤ 1.3× floor"):
        check = checks[label]
        if label in resolved:
            assert check.verdict is bench.Verdict.FAIL
            assert "too coarse" not in check.measured
        else:
            assert check.verdict is bench.Verdict.NOT_RESOLVED
            shortest = min(gateway_ticks, floor_ticks) if "floor" in label else gateway_ticks
            assert (
                f"but a round read only {shortest} clock ticks of CPU, too coarse to judge "
                "(at least 10; more --requests per round)"
            ) in check.measured
            assert "95% CI" in check.measured  # the figures are still shown


def test_no_floor_means_the_ratio_targets_are_not_applicable(bench):
    rows = _rows([0.6] * 10, [0.5] * 10)
    del rows[FLOOR]

    checks = _checks(bench, rows)

    for label in ("CPU non-stream ≤ 1.3× floor", "CPU stream ≤ 1.3× floor"):
        assert checks[label].verdict is bench.Verdict.NOT_APPLICABLE
    assert checks["CPU non-stream ≤ 1.0 ms"].verdict is bench.Verdict.PASS
