"""Probe cycles against the real simulator: kinds, verdicts, resilience path, cost, drift."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest
from probe_helpers import FakeClock, ProberFactory, contract_for, sample_value, target_for
from prometheus_client import CollectorRegistry

from chatcontract.checks.context import SCENARIO_HEADER, CheckContext, SuiteOptions
from chatcontract.contract import FallbackRoute, Prices
from chatcontract.drift import Baseline, observe, write_last_validate
from chatcontract.probe import ProbeMetrics, Prober, ProberOptions, ProbeStore, fallback_target
from chatcontract.simulator import SimulatorServer


def rows(store: ProbeStore, columns: str = "probe, route, attempt, ok") -> list[tuple[Any, ...]]:
    return store.fetchall(f"SELECT {columns} FROM probe_runs ORDER BY started_at, rowid")


def test_a_cycle_runs_every_kind_of_a_staging_contract(
    simulator: SimulatorServer, make_prober: ProberFactory, store: ProbeStore
) -> None:
    registry = CollectorRegistry()
    prober = make_prober(target_for(simulator), registry=registry)
    result = prober.run_cycle()
    assert result.ok
    assert [(o.probe, o.prompt_size) for o in result.outcomes] == [
        ("non_streaming", "short"),
        ("non_streaming", "large"),
        ("streaming", "short"),
        ("usage_capture", "short"),
        ("timeout_boundary", "short"),
        ("invalid_request", None),
    ]
    assert len(rows(store)) == 6
    for kind in ("non_streaming", "streaming", "usage_capture", "timeout_boundary"):
        assert sample_value(registry, "probe_success", probe=kind) == 1.0


def test_stored_rows_hold_no_prompt_no_completion_no_secret(
    simulator: SimulatorServer, make_prober: ProberFactory, store: ProbeStore
) -> None:
    prober = make_prober(target_for(simulator))
    prober.run_cycle()
    dumped = json.dumps(store.fetchall("SELECT * FROM probe_runs")) + json.dumps(
        store.fetchall("SELECT * FROM shapes")
    )
    assert "pong" not in dumped  # the fixture prompt and the simulator's answer
    assert "synthetic filler" not in dumped
    assert simulator.api_key not in dumped


@pytest.mark.parametrize(
    ("environment", "expected"),
    [("staging", True), ("production", False)],
    ids=["staging-runs-it", "production-never"],
)
def test_invalid_request_runs_only_against_staging(
    simulator: SimulatorServer,
    make_prober: ProberFactory,
    store: ProbeStore,
    environment: str,
    expected: bool,
) -> None:
    contract = contract_for(simulator, environment=environment)
    prober = make_prober(target_for(simulator, contract=contract))
    result = prober.run_cycle()
    ran = [row for row in rows(store) if row[0] == "invalid_request"]
    assert bool(ran) is expected
    assert ("invalid_request" in prober.kinds) is expected
    assert result.ok


def test_invalid_request_passes_on_a_validation_error(
    simulator: SimulatorServer, make_prober: ProberFactory, store: ProbeStore
) -> None:
    prober = make_prober(target_for(simulator), kinds=("invalid_request",))
    result = prober.run_cycle()
    assert [o.ok for o in result.outcomes] == [True]
    assert rows(store, "ok, kind, category, prompt_size") == [(1, "api_error", "validation", None)]


def test_a_large_prompt_runs_on_the_first_and_every_fifth_cycle(
    simulator: SimulatorServer, make_prober: ProberFactory, store: ProbeStore, clock: FakeClock
) -> None:
    prober = make_prober(target_for(simulator), kinds=("non_streaming",))
    for _ in range(6):
        prober.run_cycle()
        clock.advance(60)
    sizes = [row[0] for row in rows(store, "prompt_size")]
    assert sizes.count("large") == 2
    assert sizes.count("short") == 6


def test_a_retried_failure_then_a_fallback_are_recorded(
    simulator: SimulatorServer, make_prober: ProberFactory, store: ProbeStore
) -> None:
    prober = make_prober(
        target_for(simulator, scenario="server_error"), kinds=("non_streaming",), large_every=0
    )
    result = prober.run_cycle()
    (outcome,) = result.outcomes
    assert not outcome.ok
    assert (outcome.retried, outcome.retry_ok) == (True, False)
    assert (outcome.fallback_route, outcome.fallback_ok) == ("smaller-model", True)
    assert rows(store, "route, attempt, ok, category, requested_model") == [
        ("primary", 1, 0, "upstream", "gpt-4.1-nano"),
        ("primary", 2, 0, "upstream", "gpt-4.1-nano"),
        ("smaller-model", 3, 1, None, "gpt-4o-mini"),
    ]


def test_a_fallback_decision_skips_the_retry(
    simulator: SimulatorServer, make_prober: ProberFactory, store: ProbeStore
) -> None:
    prober = make_prober(
        target_for(simulator, scenario="quota_exhausted"), kinds=("non_streaming",), large_every=0
    )
    (outcome,) = prober.run_cycle().outcomes
    assert not outcome.retried
    assert outcome.fallback_ok is True
    assert rows(store, "route, attempt, category") == [
        ("primary", 1, "quota"),
        ("smaller-model", 2, None),
    ]


class Wrapping(httpx2.BaseTransport):
    """The real transport, for the test transports below to watch or steer its requests."""

    def __init__(self) -> None:
        self.inner = httpx2.HTTPTransport()

    def close(self) -> None:
        self.inner.close()


class Asks(Wrapping):
    """The real transport, but a request ``when`` says so asks the simulator for ``scenario``
    (default: the first); the model of each request is recorded."""

    def __init__(
        self, scenario: str, when: Callable[[httpx2.Request, int], bool] | None = None
    ) -> None:
        super().__init__()
        self.scenario = scenario
        self.when = when or (lambda request, index: index == 0)
        self.calls: list[str] = []

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        index = len(self.calls)
        self.calls.append(json.loads(request.content)["model"])
        if self.when(request, index):
            request.headers[SCENARIO_HEADER] = self.scenario
        return self.inner.handle_request(request)


def _large(request: httpx2.Request, index: int) -> bool:
    return len(request.content) > 4096  # the large prompt is about 7 KB, the short one tiny


def test_a_retry_that_succeeds_is_recorded_and_passes(
    simulator: SimulatorServer, store: ProbeStore, clock: FakeClock
) -> None:
    target = target_for(simulator)
    transport = Asks("server_error")  # a 500, then answers
    prober = Prober(
        target=target,
        store=store,
        clock=clock,
        inner=transport,
        metrics=ProbeMetrics(CollectorRegistry(), contract=target.contract),
        options=ProberOptions(kinds=("non_streaming",), large_every=0, last_validate_path=None),
    )
    try:
        (outcome,) = prober.run_cycle().outcomes
    finally:
        prober.close()
    assert outcome.ok
    assert (outcome.retried, outcome.retry_ok, outcome.fallback_route) == (True, True, None)
    assert rows(store, "attempt, ok") == [(1, 0), (2, 1)]


class StopDuringFirstCall(Wrapping):
    """Fails every call (server_error); the stop request arrives while the first is in flight."""

    def __init__(self, stop: threading.Event) -> None:
        super().__init__()
        self.stop = stop
        self.calls = 0

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        self.calls += 1
        request.headers[SCENARIO_HEADER] = "server_error"
        self.stop.set()
        return self.inner.handle_request(request)


def test_a_stop_during_a_probe_sends_no_retry_and_no_fallback(
    simulator: SimulatorServer, store: ProbeStore, clock: FakeClock
) -> None:
    # SIGTERM while the endpoint holds the first attempt: the process must not go on to a retry
    # and a fallback (each up to total_ms) after it was told to stop.
    target = target_for(simulator)
    assert target.contract.fallbacks  # the preset has a fallback route the probe would try
    stop = threading.Event()
    transport = StopDuringFirstCall(stop)
    prober = Prober(
        target=target,
        store=store,
        clock=clock,
        inner=transport,
        metrics=ProbeMetrics(CollectorRegistry(), contract=target.contract),
        options=ProberOptions(kinds=("non_streaming",), large_every=0, last_validate_path=None),
    )
    try:
        result = prober.run_cycle(cancel=stop)
    finally:
        prober.close()
    (outcome,) = result.outcomes
    assert not outcome.ok  # the verdict reached is kept
    assert (outcome.retried, outcome.fallback_route) == (False, None)
    assert transport.calls == 1
    assert rows(store, "attempt, ok") == [(1, 0)]


def test_an_attempt_that_used_up_the_deadline_is_not_retried(
    simulator: SimulatorServer, store: ProbeStore, clock: FakeClock
) -> None:
    # total_ms is the deadline of the whole call, retries included: after an attempt that
    # spent it all the application's client sends no retry, so neither does the probe (a
    # black-holing endpoint cost two full deadlines per probe kind, ~9 minutes a cycle).
    preset = contract_for(simulator)
    policy = dataclasses.replace(
        preset.policy,
        timeouts=dataclasses.replace(
            preset.policy.timeouts,
            connect_ms=300,
            first_byte_ms=300,
            first_token_ms=300,
            total_ms=300,
        ),
        fallback_reserve_ms=100,
    )
    target = target_for(simulator, contract=dataclasses.replace(preset, policy=policy))
    transport = Asks("no_response")  # held past any deadline, then answers
    prober = Prober(
        target=target,
        store=store,
        clock=clock,
        inner=transport,
        metrics=ProbeMetrics(CollectorRegistry(), contract=target.contract),
        options=ProberOptions(kinds=("non_streaming",), large_every=0, last_validate_path=None),
    )
    try:
        (outcome,) = prober.run_cycle().outcomes
    finally:
        prober.close()
    assert outcome.failure is not None and outcome.failure.code == "deadline"
    assert (outcome.ok, outcome.retried) == (False, False)
    assert (outcome.fallback_route, outcome.fallback_ok) == ("smaller-model", True)
    assert transport.calls == ["gpt-4.1-nano", "gpt-4o-mini"]  # the primary once, then fallback


class Timed(Wrapping):
    """The real transport; when each request was sent (monotonic) and its model, recorded."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[float, str]] = []

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        self.sent.append((time.monotonic(), json.loads(request.content)["model"]))
        return self.inner.handle_request(request)


def _timed_prober(
    server: SimulatorServer, store: ProbeStore, clock: FakeClock, transport: Timed, **policy: Any
) -> Prober:
    preset = contract_for(server)
    retry = dataclasses.replace(preset.policy.retry, **policy)
    contract = dataclasses.replace(preset, policy=dataclasses.replace(preset.policy, retry=retry))
    target = target_for(server, contract=contract)
    return Prober(
        target=target,
        store=store,
        clock=clock,
        inner=transport,
        metrics=ProbeMetrics(CollectorRegistry(), contract=contract),
        options=ProberOptions(kinds=("non_streaming",), large_every=0, last_validate_path=None),
        rng=lambda: 0.0,
    )


@pytest.mark.parametrize(
    ("scenario", "headers"),
    [
        ("rate_limit_retry_after", "retry-after and retry-after-ms"),
        ("rate_limit_retry_after_ms", "retry-after-ms"),
    ],
    ids=["both", "ms-only"],
)
def test_a_rate_limit_retry_waits_the_retry_after_the_server_asked_for(
    store: ProbeStore, clock: FakeClock, scenario: str, headers: str
) -> None:
    # 429s with retry-after 0.4 s for 0.4 s from the first request: a retry sent at once gets
    # another 429 (and the probe went to its fallback and failed); one that waits passes.
    transport = Timed()
    with SimulatorServer(scenario=scenario, time_scale=0.4) as server:
        prober = _timed_prober(server, store, clock, transport)
        try:
            (outcome,) = prober.run_cycle().outcomes
        finally:
            prober.close()
    assert outcome.ok, headers
    assert (outcome.retried, outcome.retry_ok, outcome.fallback_route) == (True, True, None)
    assert rows(store, "attempt, ok, category") == [(1, 0, "rate_limit"), (2, 1, None)]
    (first, _), (retry, _) = transport.sent
    assert retry - first >= 0.4


def test_a_retry_after_above_the_cap_sends_no_retry(store: ProbeStore, clock: FakeClock) -> None:
    # retry-after 1 s, the contract caps it at 0.2 s: retrying inside the window the server
    # asked for is hammering, so the probe goes to its fallback at once, as ChatClient does.
    transport = Timed()
    with SimulatorServer(scenario="rate_limit_retry_after") as server:
        prober = _timed_prober(server, store, clock, transport, retry_after_cap_ms=200)
        try:
            (outcome,) = prober.run_cycle().outcomes
        finally:
            prober.close()
    assert not outcome.ok
    assert (outcome.retried, outcome.fallback_route) == (False, "smaller-model")
    assert [model for _, model in transport.sent] == ["gpt-4.1-nano", "gpt-4o-mini"]
    assert transport.sent[1][0] - transport.sent[0][0] < 1.0


def test_a_prompt_size_that_always_fails_keeps_probe_success_at_0(
    simulator: SimulatorServer, store: ProbeStore, clock: FakeClock
) -> None:
    # The large prompt (every 5th cycle) fails every time: the gauge was the last run only, so
    # it read 0 for one cycle in five and LLMProbeFailing (for: 5 intervals) never fired.
    target = target_for(simulator)
    registry = CollectorRegistry()
    transport = Asks("quota_exhausted", when=_large)  # refused at once: no retry, no backoff
    prober = Prober(
        target=target,
        store=store,
        clock=clock,
        inner=transport,
        metrics=ProbeMetrics(registry, contract=target.contract),
        options=ProberOptions(kinds=("non_streaming",), large_every=5, last_validate_path=None),
    )
    seen = []
    try:
        for index in range(11):
            if index == 6:
                transport.scenario = "ok"  # the large prompt passes from its next run on
            outcomes = prober.run_cycle().outcomes
            clock.advance(60)
            seen.append(sample_value(registry, "probe_success", probe="non_streaming"))
            if index in (0, 5):
                assert [(o.prompt_size, o.ok) for o in outcomes] == [
                    ("short", True),
                    ("large", False),
                ]
    finally:
        prober.close()
    assert seen == [0.0] * 10 + [1.0]


@pytest.fixture
def failing_and_backup() -> Iterator[tuple[SimulatorServer, SimulatorServer]]:
    with SimulatorServer(scenario="server_error") as primary, SimulatorServer() as backup:
        yield primary, backup


def test_a_fallback_to_another_endpoint_is_probed_once(
    failing_and_backup: tuple[SimulatorServer, SimulatorServer],
    make_prober: ProberFactory,
    store: ProbeStore,
) -> None:
    primary, backup = failing_and_backup
    contract = contract_for(
        primary, fallbacks=(FallbackRoute(name="backup", base_url=backup.base_url),)
    )
    prober = make_prober(
        target_for(primary, contract=contract, simulated=False),
        kinds=("non_streaming", "streaming"),
        large_every=0,
    )
    result = prober.run_cycle()
    assert [(o.probe, o.ok, o.fallback_route, o.fallback_ok) for o in result.outcomes] == [
        ("non_streaming", False, "backup", True),
        ("streaming", False, "backup", True),
    ]
    backup_rows = [row for row in rows(store, "route, ok") if row[0] == "backup"]
    assert backup_rows == [("backup", 1), ("backup", 1)]


def test_the_timeout_boundary_uses_the_first_byte_budget(
    simulator: SimulatorServer, make_prober: ProberFactory, store: ProbeStore
) -> None:
    base = contract_for(simulator)
    timeouts = dataclasses.replace(base.policy.timeouts, first_byte_ms=150)
    contract = dataclasses.replace(base, policy=dataclasses.replace(base.policy, timeouts=timeouts))
    prober = make_prober(
        target_for(simulator, contract=contract, scenario="slow"), kinds=("timeout_boundary",)
    )
    (outcome,) = prober.run_cycle().outcomes
    assert not outcome.ok
    first = rows(store, "kind, category, budget_ms, total_ms")[0]
    assert first[:3] == ("transport", "timeout", 150.0)
    assert first[3] < 1500  # ended by the 150 ms budget, not by the 2 s slow answer


def test_the_timeout_boundary_records_ttfb_against_the_budget_when_it_passes(
    simulator: SimulatorServer, make_prober: ProberFactory, store: ProbeStore
) -> None:
    prober = make_prober(target_for(simulator), kinds=("timeout_boundary",))
    assert prober.run_cycle().ok
    ((ok, ttfb, budget),) = rows(store, "ok, ttfb_ms, budget_ms")
    first_byte_ms = target_for(simulator).contract.policy.timeouts.first_byte_ms
    assert ok == 1 and budget == float(first_byte_ms) and 0 < ttfb < budget


def test_usage_capture_fails_when_the_usage_chunk_is_missing(
    simulator: SimulatorServer, make_prober: ProberFactory, store: ProbeStore
) -> None:
    prober = make_prober(target_for(simulator, scenario="missing_usage"), kinds=("usage_capture",))
    (outcome,) = prober.run_cycle().outcomes
    assert not outcome.ok and outcome.failure is not None
    assert outcome.failure.code == "missing_usage"
    assert rows(store, "usage_present, usage_expected")[0] == (0, 1)


def _priced(server: SimulatorServer, *, cap: float) -> Any:
    base = contract_for(server)
    prices = {
        "gpt-4.1-nano": Prices(input_per_million=100.0, output_per_million=100.0),
        "gpt-4o-mini": Prices(input_per_million=100.0, output_per_million=100.0),
    }
    probe = dataclasses.replace(base.policy.probe, daily_cost_cap_usd=cap)
    return dataclasses.replace(
        base, policy=dataclasses.replace(base.policy, prices=prices, probe=probe)
    )


def test_the_daily_cost_cap_pauses_until_the_next_utc_day(
    simulator: SimulatorServer, make_prober: ProberFactory, store: ProbeStore, clock: FakeClock
) -> None:
    registry = CollectorRegistry()
    contract = _priced(simulator, cap=0.001)  # one probe (~40 tokens at $100/M) reaches it
    prober = make_prober(target_for(simulator, contract=contract), registry=registry)

    first = prober.run_cycle()
    assert len(first.outcomes) == 1
    assert first.paused and not first.ok
    assert len(first.skipped) == 5
    assert sample_value(registry, "probe_paused", reason="daily_cost_cap") == 1.0

    clock.advance(60)  # still the same UTC day: nothing is sent
    assert prober.run_cycle().outcomes == ()
    assert len(rows(store)) == 1

    clock.advance(120)  # past midnight UTC
    assert not prober.cost_status().paused
    after = prober.run_cycle()
    assert len(after.outcomes) == 1
    assert len(rows(store)) == 2
    days = store.fetchall("SELECT day FROM cost_ledger ORDER BY at")
    assert days == [("2026-03-01",), ("2026-03-02",)]


def test_cost_is_recorded_from_usage_and_prices(
    simulator: SimulatorServer, make_prober: ProberFactory, store: ProbeStore
) -> None:
    prober = make_prober(
        target_for(simulator, contract=_priced(simulator, cap=100.0)),
        kinds=("non_streaming",),
        large_every=0,
    )
    prober.run_cycle()
    ((cost, estimated, prompt, completion),) = rows(
        store, "cost_usd, cost_estimated, prompt_tokens, completion_tokens"
    )
    assert estimated == 0
    assert cost == pytest.approx((prompt + completion) * 100.0 / 1_000_000)
    assert prober.cost_status().spent_usd == pytest.approx(cost)


def test_a_cancelled_cycle_sends_nothing(
    simulator: SimulatorServer, make_prober: ProberFactory, store: ProbeStore
) -> None:
    cancel = threading.Event()
    cancel.set()
    result = make_prober(target_for(simulator)).run_cycle(cancel=cancel)
    assert result.outcomes == ()
    assert not result.ok
    assert rows(store) == []


def test_old_history_is_pruned_during_a_cycle(
    simulator: SimulatorServer, make_prober: ProberFactory, store: ProbeStore, clock: FakeClock
) -> None:
    prober = make_prober(
        target_for(simulator), kinds=("non_streaming",), retention_days=2, large_every=0
    )
    prober.run_cycle()
    clock.advance(3 * 86_400)
    prober.run_cycle()
    assert [row[0] for row in rows(store, "started_at")] == [clock.now]


# -- drift ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def accepted(simulator: SimulatorServer) -> Baseline:
    """A baseline from what validate would see: a completion, a stream, a validation error."""
    ctx = CheckContext.open(target_for(simulator), SuiteOptions())
    try:
        ctx.send(ctx.fixture())
        ctx.send(ctx.fixture(stream=True, stream_options={"include_usage": True}))
        invalid = ctx.fixture()
        invalid.pop("messages")
        ctx.send(invalid)
        observation = observe(ctx.exchanges)
    finally:
        ctx.close()
    assert observation.finish_reasons == {"stop"}
    return Baseline.accept(observation, source="validate")


def test_no_drift_when_the_provider_matches_the_baseline(
    simulator: SimulatorServer, make_prober: ProberFactory, store: ProbeStore, accepted: Baseline
) -> None:
    result = make_prober(target_for(simulator), baseline=accepted).run_cycle()
    assert result.drift == ()
    assert store.drift_events() == []


@pytest.mark.parametrize(
    ("scenario", "kind", "detail"),
    [
        ("drift_extra_field", "new_field", "response: +x_chatcontract_drift:object"),
        ("drift_extra_field", "usage_shape", "usage: +usage.x_chatcontract_drift_tokens:number"),
        ("drift_missing_field", "missing_field", "response: -choices[].finish_reason:string"),
        ("content_filter", "new_finish_reason", "finish_reason: content_filter"),
        ("length", "new_finish_reason", "finish_reason: length"),
    ],
    ids=["extra-field", "extra-usage-field", "missing-field", "content-filter", "length"],
)
def test_simulator_drift_scenarios_raise_drift_events(
    simulator: SimulatorServer,
    make_prober: ProberFactory,
    store: ProbeStore,
    accepted: Baseline,
    scenario: str,
    kind: str,
    detail: str,
) -> None:
    registry = CollectorRegistry()
    prober = make_prober(
        target_for(simulator, scenario=scenario), baseline=accepted, registry=registry
    )
    result = prober.run_cycle()
    assert (kind, detail) in {(event.kind, event.detail) for event in result.drift}
    assert (kind, detail) in {(event.kind, event.detail) for event in store.drift_events()}
    assert sample_value(registry, "llm_contract_drift_total", kind=kind) >= 1


def test_the_same_drift_is_one_event_not_one_per_probe(
    simulator: SimulatorServer,
    make_prober: ProberFactory,
    store: ProbeStore,
    accepted: Baseline,
    clock: FakeClock,
) -> None:
    registry = CollectorRegistry()
    prober = make_prober(
        target_for(simulator, scenario="drift_extra_field"), baseline=accepted, registry=registry
    )
    first = prober.run_cycle()
    clock.advance(60)
    second = prober.run_cycle()
    assert first.drift and second.drift == ()
    details = [event.detail for event in store.drift_events()]
    assert len(details) == len(set(details)) == len(first.drift)
    assert (
        sample_value(registry, "llm_contract_drift_total", kind="new_field") == 2.0
    )  # body+stream


def test_a_restarted_prober_does_not_repeat_stored_drift(
    simulator: SimulatorServer, make_prober: ProberFactory, store: ProbeStore, accepted: Baseline
) -> None:
    target = target_for(simulator, scenario="length")
    make_prober(target, baseline=accepted).run_cycle()
    again = make_prober(target, baseline=accepted).run_cycle()
    assert again.drift == ()
    assert len(store.drift_events()) == 1


def test_the_baseline_file_is_picked_up_when_it_changes(
    simulator: SimulatorServer,
    make_prober: ProberFactory,
    store: ProbeStore,
    accepted: Baseline,
    tmp_path: Path,
) -> None:
    path = tmp_path / "chatcontract.baseline.json"
    prober = make_prober(target_for(simulator, scenario="length"), baseline_path=str(path))
    assert prober.run_cycle().drift == ()  # no baseline yet: drift detection is off
    accepted.save(path)
    assert [event.kind for event in prober.run_cycle().drift] == ["new_finish_reason"]


def test_a_validate_report_is_ingested_once(
    simulator: SimulatorServer, make_prober: ProberFactory, store: ProbeStore, tmp_path: Path
) -> None:
    path = tmp_path / "last-validate.json"
    report = {
        "started_at": "2026-03-01T12:00:00+00:00",
        "verdict": "fail",
        "summary": {"passed": 10, "failed": 2, "warned": 1, "skipped": 3},
        "target": {"base_url": "http://127.0.0.1:1", "simulated": True, "model": "gpt-4.1-nano"},
    }
    write_last_validate(report, observe([]), path)
    registry = CollectorRegistry()
    prober = make_prober(
        target_for(simulator),
        kinds=("non_streaming",),
        registry=registry,
        last_validate_path=str(path),
    )
    prober.run_cycle()
    prober.run_cycle()
    last = store.last_validation()
    assert last is not None
    assert (last.verdict, last.passed, last.failed, last.warned, last.skipped) == (
        "fail",
        10,
        2,
        1,
        3,
    )
    assert len(store.fetchall("SELECT run_id FROM validation_runs")) == 1
    assert sample_value(registry, "llm_validation_last_verdict") == 0.0
    assert sample_value(registry, "llm_validation_last_timestamp_seconds") == last.at


class Recording(Wrapping):
    """The real transport, keeping each request's headers and body."""

    def __init__(self) -> None:
        super().__init__()
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append((dict(request.headers), json.loads(request.content)))
        return self.inner.handle_request(request)


def test_every_probe_request_is_marked_short_and_capped(
    simulator: SimulatorServer, store: ProbeStore, clock: FakeClock
) -> None:
    target = target_for(simulator)
    recording = Recording()
    prober = Prober(
        target=target,
        store=store,
        clock=clock,
        inner=recording,
        metrics=ProbeMetrics(CollectorRegistry(), contract=target.contract),
        options=ProberOptions(last_validate_path=None, large_every=0),
    )
    try:
        prober.run_cycle()
    finally:
        prober.close()
    assert len(recording.requests) == 5
    for headers, body in recording.requests:
        assert headers["x-request-source"] == "synthetic-contract-probe"
        assert body["max_tokens"] == 64  # the contract's reasoning-safe probe cap
        assert len(json.dumps(body.get("messages", []))) < 300
    streamed = [body for _, body in recording.requests if body.get("stream")]
    assert [body.get("stream_options") for body in streamed] == [
        {"include_usage": True},
        {"include_usage": True},
    ]
    assert "messages" not in recording.requests[-1][1]  # invalid_request removed it


def test_a_fallback_on_another_host_needs_its_own_key(simulator: SimulatorServer) -> None:
    target = target_for(simulator, simulated=False)
    elsewhere = FallbackRoute(name="other", base_url="https://elsewhere.example/v1")
    assert fallback_target(target, elsewhere, environ={}) is None
    keyed = FallbackRoute(
        name="other", base_url="https://elsewhere.example/v1", auth_env=("OTHER_KEY",)
    )
    resolved = fallback_target(target, keyed, environ={"OTHER_KEY": "sk-other-0000000000"})
    assert resolved is not None
    assert resolved.secret == "sk-other-0000000000"
    assert resolved.base_url == "https://elsewhere.example/v1"
    same_host = FallbackRoute(name="m", model="gpt-4o-mini")
    reused = fallback_target(target, same_host, environ={})
    assert reused is not None
    assert (reused.secret, reused.model) == (target.secret, "gpt-4o-mini")


def test_a_simulated_fallback_stays_on_the_simulator(simulator: SimulatorServer) -> None:
    target = target_for(simulator, scenario="server_error")
    route = FallbackRoute(name="other", base_url="https://api.example/v1", model="x-model")
    resolved = fallback_target(target, route, environ={})
    assert resolved is not None
    assert resolved.base_url == simulator.base_url
    assert (resolved.scenario, resolved.model) == ("ok", "x-model")


@pytest.mark.parametrize("kind", ["non_streaming", "streaming", "timeout_boundary"])
def test_a_usage_problem_is_the_usage_capture_probes_alone(
    simulator: SimulatorServer, make_prober: ProberFactory, kind: str
) -> None:
    target = target_for(simulator, scenario="missing_usage")
    prober = make_prober(target, kinds=(kind, "usage_capture"))
    outcomes = {outcome.probe: outcome for outcome in prober.run_cycle().outcomes}
    assert outcomes[kind].ok, outcomes[kind].failure
    assert not outcomes["usage_capture"].ok
