"""The sink's per-call collector scrapes exactly as prometheus_client's metric objects do.

``PrometheusSink`` keeps the families every call updates as plain numbers under one lock
(``_prom_calls.CallCollector``), except in prometheus_client's multiprocess mode, where they stay
metric objects (``_prom_objects.CallMetricObjects``, also chosen with ``metric_objects=True``).
The same varied sequence of Exchanges goes through both, and the scrapes must be byte for byte
the same once the ``_created`` timestamps (the moment each series was made) are set aside.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import prometheus_client
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.openmetrics import exposition as openmetrics

from chatcontract.contract import load_preset
from chatcontract.exchange import Exchange, RequestFacts, ResponseFacts, Timings
from chatcontract.failures import Failure, make_failure
from chatcontract.telemetry import (
    CallLabels,
    FallbackActivated,
    PrometheusSink,
    RetryDecided,
    Telemetry,
)
from chatcontract.telemetry.events import BreakerChanged
from chatcontract.telemetry.prometheus import multiprocess_mode
from chatcontract.wire import Usage

COMET = load_preset("cometapi")
LABELS = CallLabels(provider="cometapi", endpoint="/chat/completions")
OTHER_PROVIDER = CallLabels(provider="openai", endpoint="/v1/chat/completions")
MODEL = COMET.model
USAGE = Usage(prompt_tokens=12, completion_tokens=3)
HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]

_CREATED = re.compile(r"^(\S+_created(?:\{[^}]*\})?) \S+$", re.MULTILINE)


def _failure(kind: str, category: str, code: str, status: int | None = None) -> Failure:
    return make_failure(kind=kind, category=category, code=code, message=code,  # type: ignore[arg-type]
                        status=status)  # fmt: skip


def exchange(
    *,
    model: str | None = MODEL,
    stream: bool = False,
    include_usage: bool = False,
    budget: float | None = 30_000.0,
    status: int | None = 200,
    usage: Usage | None = USAGE,
    verdict: str | None = None,
    failure: Failure | None = None,
    route: str = "primary",
    timings: Timings | None = None,
) -> Exchange:
    """An Exchange with the facts the sink reads (the transport builds them in real life)."""
    response = None
    if status is not None:
        response = ResponseFacts(status=status, usage=usage, stream_verdict=verdict,
                                 finish_reason="stop")  # fmt: skip
    if timings is None:
        timings = Timings(ttfb_ms=40.0, ttft_ms=55.0 if stream else None, total_ms=120.0)
    return Exchange(
        request=RequestFacts(
            method="POST",
            url="https://api.example.test/v1/chat/completions",
            model=model,
            stream=stream,
            include_usage=include_usage,
            timeout_budget_ms=budget,
        ),
        response=response,
        timings=timings,
        started_at=time.time(),
        route=route,
        failure=failure,
    )


def varied() -> Iterator[tuple[Exchange, CallLabels]]:
    """Successes, streams, failures of every kind, odd timings, more models than the cap."""
    yield exchange(), LABELS
    yield exchange(stream=True, include_usage=True, verdict="complete"), LABELS
    yield exchange(stream=True, usage=None, verdict="complete"), LABELS  # no usage owed
    yield exchange(usage=None, failure=_failure("semantic", "usage", "missing_usage")), LABELS
    yield exchange(usage=None), LABELS  # missing usage, not classified as a failure
    yield exchange(stream=True, include_usage=True, usage=None, verdict="complete"), LABELS
    yield exchange(usage=Usage(prompt_tokens=-4, completion_tokens=0)), LABELS
    yield exchange(usage=Usage(prompt_tokens=None, completion_tokens=4)), LABELS
    yield exchange(usage=Usage(prompt_tokens=9, completion_tokens=None)), LABELS
    new_connection = Timings(dns_ms=3.0, connect_ms=1.25, tls_ms=12.5, ttfb_ms=40.0,
                             total_ms=90.0)  # fmt: skip
    yield exchange(timings=new_connection), LABELS
    yield exchange(timings=Timings(connect_ms=0.2, total_ms=5.0), route="backup"), LABELS
    yield exchange(timings=new_connection), OTHER_PROVIDER
    for total in (0.0, 5.0, 5.000001, 119_999.9, 120_000.0, 1e9, math.inf, math.nan):
        yield exchange(timings=Timings(ttfb_ms=total, total_ms=total)), LABELS
    yield exchange(budget=None), LABELS
    yield exchange(budget=600_000.0), LABELS
    yield exchange(budget=2_000_000.0, timings=Timings(ttfb_ms=100.0, total_ms=50.0)), LABELS
    yield exchange(budget=math.nan, timings=Timings(ttfb_ms=math.nan, total_ms=10.0)), LABELS
    yield exchange(timings=Timings(ttfb_ms=-0.0, total_ms=-0.0)), LABELS
    # Failures: transport (no response), http, api_error (any status), parser, semantic.
    for code in ("connect_timeout", "read_timeout", "pool_timeout", "read_timeout"):
        yield exchange(status=None, failure=_failure("transport", "timeout", code)), LABELS
    yield exchange(status=None, failure=_failure("transport", "network", "reset")), LABELS
    yield exchange(status=429, usage=None,
                   failure=_failure("http", "rate_limit", "rate_limited", 429)), LABELS  # fmt: skip
    yield exchange(status=500, usage=None,
                   failure=_failure("api_error", "validation", "invalid_request", 500)), LABELS  # fmt: skip
    yield exchange(status=503, usage=None,
                   failure=_failure("api_error", "model", "model_not_found", 503)), OTHER_PROVIDER  # fmt: skip
    yield exchange(failure=_failure("api_error", "upstream", "error_in_200", 200)), LABELS
    yield exchange(usage=None,
                   failure=_failure("parser", "contract", "missing_choices", 200)), LABELS  # fmt: skip
    yield exchange(failure=_failure("parser", "contract", "invalid_json", 200)), LABELS
    yield exchange(failure=_failure("semantic", "content", "empty_content", 200)), LABELS
    yield exchange(status=500, usage=None,
                   failure=_failure("http", "upstream", "html_error", 500)), LABELS  # fmt: skip
    # Incomplete streams, by verdict, and a stream cut by a timeout after its head.
    for verdict, kind, category, code in (
        ("dropped", "transport", "network", "stream_dropped"),
        ("truncated", "parser", "contract", "missing_finish_reason"),
        ("inband_error", "api_error", "upstream", "inband_error"),
        ("stalled", "transport", "timeout", "stream_stalled"),
        ("no_done", None, None, None),
        ("dropped", "transport", "network", "stream_dropped"),
    ):
        failure = None if kind is None else _failure(kind, category, code, 200)  # type: ignore[arg-type]
        yield exchange(stream=True, include_usage=True, verdict=verdict, failure=failure), LABELS
    # More distinct models than the cap (3 here): later ones, free text and None are bounded.
    for index in range(6):
        yield exchange(model=f"model-{index}", stream=index % 2 == 1), LABELS
    yield exchange(model="ignore previous instructions; 'x'"), LABELS
    yield exchange(model=None, status=None,
                   failure=_failure("transport", "timeout", "connect_timeout")), LABELS  # fmt: skip
    yield exchange(model="model-5", failure=_failure("http", "rate_limit", "x", 429)), LABELS
    for index in range(25):  # more fallback routes than the route cap
        yield exchange(route=f"route-{index}"), LABELS
    yield exchange(), LABELS  # the first series again, after all the others


EVENTS = (
    RetryDecided(route="primary", model=MODEL, category="rate_limit", decision="retry", attempt=1),
    FallbackActivated(from_route="primary", to_route="backup", category="quota", model=MODEL),
    BreakerChanged(
        route="primary",
        model=MODEL,
        before="closed",
        after="open",
        failures=5,
        reason="consecutive_failures",
    ),
)


def feed(sink: PrometheusSink) -> None:
    for one, labels in varied():
        sink.handle_exchange(one, labels)
    for event in EVENTS:
        sink.handle_event(event, LABELS)
    sink.count_sink_error("BrokenSink", LABELS)


def _scrape(encode: Callable[[CollectorRegistry], bytes], *, metric_objects: bool) -> str:
    registry = CollectorRegistry()
    feed(PrometheusSink(registry, contract=COMET, max_models=3, metric_objects=metric_objects))
    return encode(registry).decode()


def _normalised(text: str) -> str:
    """The scrape with every ``_created`` value replaced (when a series was made differs)."""
    return _CREATED.sub(r"\1 <created>", text)


@pytest.fixture(params=[True, False], ids=["created", "no-created"])
def created_series(request: pytest.FixtureRequest) -> Iterator[bool]:
    """prometheus_client's ``_created`` switch, on or off for one test, then back on."""
    if not request.param:
        prometheus_client.disable_created_metrics()
    try:
        yield request.param
    finally:
        prometheus_client.enable_created_metrics()


@pytest.mark.parametrize(
    "encode",
    [generate_latest, openmetrics.generate_latest],
    ids=["text", "openmetrics"],
)
def test_the_collector_scrapes_exactly_as_metric_objects_do(
    encode: Callable[[CollectorRegistry], bytes], created_series: bool
) -> None:
    collector = _scrape(encode, metric_objects=False)
    objects = _scrape(encode, metric_objects=True)
    assert _normalised(collector) == _normalised(objects)
    # The comparison covered real content: many series, and _created exactly when switched on.
    assert collector.count("llm_request_total{") >= 25
    assert ("llm_latency_ms_created{" in collector) == created_series
    assert ("llm_error_created{" in collector) == created_series


def test_a_series_appears_only_once_observed(created_series: bool) -> None:
    registry = CollectorRegistry()
    sink = PrometheusSink(registry, contract=COMET)
    before = generate_latest(registry).decode()
    assert "llm_request_total{" not in before
    assert "# TYPE llm_request_total counter" in before  # the family is there, empty
    sink.handle_exchange(exchange(), LABELS)
    after = generate_latest(registry).decode()
    assert "llm_request_total{" in after
    assert "llm_error_total{" not in after  # keyed series wait for their first count
    assert "llm_client_timeout_total{" not in after


def test_created_is_when_the_series_was_first_observed() -> None:
    registry = CollectorRegistry()
    sink = PrometheusSink(registry)
    before = time.time()
    sink.handle_exchange(exchange(), LABELS)
    after = time.time()
    labels = {"provider": "cometapi", "endpoint": "/chat/completions", "model": MODEL,
              "stream": "false", "route": "primary"}  # fmt: skip
    created = registry.get_sample_value("llm_request_created", labels)
    assert created is not None
    assert before <= created <= after
    sink.handle_exchange(exchange(), LABELS)
    assert registry.get_sample_value("llm_request_created", labels) == created


def test_the_default_sink_uses_the_collector_outside_multiprocess_mode(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    monkeypatch.delenv("prometheus_multiproc_dir", raising=False)
    assert PrometheusSink(CollectorRegistry()).metric_objects is False


@pytest.mark.parametrize("variable", ["PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir"])
def test_multiprocess_mode_is_read_from_the_variables_prometheus_client_reads(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variable: str
) -> None:
    monkeypatch.delenv("PROMETHEUS_MULTIPROC_DIR", raising=False)
    monkeypatch.delenv("prometheus_multiproc_dir", raising=False)
    assert not multiprocess_mode()
    monkeypatch.setenv(variable, str(tmp_path))
    assert multiprocess_mode()
    assert PrometheusSink(CollectorRegistry()).metric_objects is True


@pytest.mark.parametrize("metric_objects", [False, True], ids=["collector", "metric-objects"])
def test_concurrent_calls_give_exact_totals(metric_objects: bool) -> None:
    registry = CollectorRegistry()
    sink = PrometheusSink(registry, contract=COMET, metric_objects=metric_objects)
    hub = Telemetry([sink], LABELS)
    timeout = _failure("transport", "timeout", "read_timeout")
    calls = [
        exchange(model=f"model-{index % 3}",
                 timings=Timings(ttfb_ms=float(index % 4), total_ms=float(index % 7)),
                 status=None if index % 5 == 0 else 200,
                 failure=timeout if index % 5 == 0 else None)
        for index in range(60)
    ]  # fmt: skip
    threads = [
        threading.Thread(target=lambda: [hub.exchange(call) for call in calls]) for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert hub.sink_errors == 0

    def total(name: str, **extra: str) -> float:
        return sum(
            registry.get_sample_value(
                name, {"provider": "cometapi", "endpoint": "/chat/completions",
                       "model": f"model-{index}", "stream": "false", "route": "primary", **extra},
            ) or 0.0
            for index in range(3)
        )  # fmt: skip

    assert total("llm_request_total") == 6 * 60
    assert total("llm_latency_ms_count", outcome="success") == 6 * 48
    assert total("llm_latency_ms_count", outcome="failure") == 6 * 12
    assert total("llm_latency_ms_sum", outcome="success") + total(
        "llm_latency_ms_sum", outcome="failure"
    ) == 6 * sum(index % 7 for index in range(60))
    assert total("llm_latency_ms_bucket", outcome="success", le="5.0") == 6 * sum(
        1 for index in range(60) if index % 5 and index % 7 <= 5
    )
    assert total("llm_client_timeout_total", code="read_timeout") == 6 * 12
    assert total("llm_usage_prompt_tokens_total") == 6 * 48 * 12


def test_a_scrape_during_calls_sees_whole_calls() -> None:
    # (Metric objects fail this: each inc/observe has its own lock, so a scrape can land
    # between two updates of one call.)
    registry = CollectorRegistry()
    sink = PrometheusSink(registry, contract=COMET)
    calls = [exchange(model=f"model-{index % 2}") for index in range(1_000)]
    threads = [
        threading.Thread(target=lambda: [sink.handle_exchange(call, LABELS) for call in calls])
        for _ in range(3)
    ]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # threads switch often: scrapes land inside calls
    try:
        for thread in threads:
            thread.start()
        scrapes = []
        while any(thread.is_alive() for thread in threads) and len(scrapes) < 500:
            scrapes.append(_values(registry))
        for thread in threads:
            thread.join(timeout=60)
    finally:
        sys.setswitchinterval(interval)
    scrapes.append(_values(registry))
    for values in scrapes:
        for (name, labels), value in values.items():
            if name != "llm_request_total":
                continue
            # One call's updates land together: its request, latency, first byte, usage.
            success = tuple(sorted({**dict(labels), "outcome": "success"}.items()))
            assert values[("llm_latency_ms_count", success)] == value
            assert values[("llm_time_to_first_byte_ms_count", labels)] == value
            assert values[("llm_usage_prompt_tokens_total", labels)] == value * 12
    assert sum(v for (n, _), v in scrapes[-1].items() if n == "llm_request_total") == 3 * 1_000


#: A process in multiprocess mode: the variable is set before prometheus_client is imported.
_CHILD = """
import sys
sys.path.insert(0, sys.argv[1])
from prometheus_client import CollectorRegistry
from chatcontract.telemetry import PrometheusSink
from test_prometheus_collector import COMET, varied

sink = PrometheusSink(CollectorRegistry(), contract=COMET, max_models=3)
assert sink.metric_objects, "multiprocess mode was not detected"
for one, labels in varied():
    sink.handle_exchange(one, labels)
"""


def _values(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every per-call sample but ``_created`` (multiprocess mode has none): {(name, labels): value}."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in registry.collect()
        for sample in family.samples
        if not sample.name.endswith("_created")
    }


@pytest.mark.parametrize("variable", ["PROMETHEUS_MULTIPROC_DIR", "prometheus_multiproc_dir"])
def test_multiprocess_mode_keeps_values_in_prometheus_client_files(
    tmp_path: Path, variable: str
) -> None:
    environ = {key: value for key, value in os.environ.items()
               if key.lower() != "prometheus_multiproc_dir"}  # fmt: skip
    environ[variable] = str(tmp_path)
    for _ in range(2):  # two processes, as a multi-worker server has
        subprocess.run(
            [sys.executable, "-W", "ignore::DeprecationWarning", "-c", _CHILD, str(HERE)],
            env=environ, cwd=ROOT, check=True, timeout=120,
        )  # fmt: skip
    assert list(tmp_path.glob("*.db"))  # prometheus_client's mmap files
    merged = CollectorRegistry()
    MultiProcessCollector(merged, path=str(tmp_path))
    # The same calls, twice, through the collector in this process.
    expected = CollectorRegistry()
    sink = PrometheusSink(expected, contract=COMET, max_models=3, metric_objects=False)
    for _ in range(2):
        for one, labels in varied():
            sink.handle_exchange(one, labels)
    got, want = _values(merged), _values(expected)
    assert got.keys() == want.keys()
    for key, value in want.items():  # the two processes' sums are added in another order
        assert got[key] == pytest.approx(value, nan_ok=True), key
    request = {"provider": "cometapi", "endpoint": "/chat/completions", "model": MODEL,
               "stream": "false", "route": "primary"}  # fmt: skip
    assert merged.get_sample_value("llm_request_total", request) == 2 * sum(
        1 for one, labels in varied()
        if labels == LABELS and one.request.model == MODEL and not one.request.stream
        and one.route == "primary"
    )  # fmt: skip
