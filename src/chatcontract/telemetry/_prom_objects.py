"""Per-call families as ordinary prometheus_client metric objects: the multiprocess-mode path.

With ``PROMETHEUS_MULTIPROC_DIR`` set, prometheus_client keeps every value in its own mmap files
(one per process, merged by its ``MultiProcessCollector``), which only its metric objects write.
``PrometheusSink`` uses this path then (or when asked with ``metric_objects=True``); otherwise the
cheaper collector in ``_prom_calls`` keeps the same families. Both count the same things in the
same way: a test feeds one sequence of Exchanges through both and compares the scrapes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from prometheus_client import CollectorRegistry, Counter, Histogram

from chatcontract.exchange import Exchange

from ._labels import BoundedValues
from ._prom_families import CALL_FAMILIES, MetricFamily, SeriesIndex, SeriesKey
from .events import CallLabels

__all__ = ["CallMetricObjects"]

_Add = Callable[[float], None]


def _counter(family: MetricFamily, registry: CollectorRegistry) -> Counter:
    return Counter(family.name, family.documentation, labelnames=family.labelnames,
                   registry=registry)  # fmt: skip


def _histogram(family: MetricFamily, registry: CollectorRegistry) -> Histogram:
    return Histogram(family.name, family.documentation, labelnames=family.labelnames,
                     buckets=family.buckets, registry=registry)  # fmt: skip


class _Series:
    """The children of one label set, bound once: ``labels()`` costs more than ``inc()``."""

    __slots__ = (
        "add_completion_tokens",
        "add_prompt_tokens",
        "count_missing_usage",
        "count_request",
        "count_schema_invalid",
        "count_schema_valid",
        "count_stream_enabled",
        "empty_content",
        "errors",
        "incomplete",
        "missing_choices",
        "observe_budget",
        "observe_completion",
        "observe_latency_failure",
        "observe_latency_success",
        "observe_network",
        "observe_ttfb",
        "observe_ttft",
        "request_invalid",
        "timeouts",
        "values",
    )

    def __init__(self, calls: CallMetricObjects, values: SeriesKey) -> None:
        counters, histograms = calls.counters, calls.histograms
        self.values = values
        # Children are made in this order (it is the order a scrape lists them in).
        self.count_request = counters["llm_request"].labels(*values).inc
        self.request_invalid = counters["llm_request_schema_invalid"].labels(*values)
        self.count_stream_enabled = counters["llm_request_stream_enabled"].labels(*values).inc
        self.observe_budget = histograms["llm_request_timeout_budget_ms"].labels(*values).observe
        self.count_schema_valid = counters["llm_response_schema_valid"].labels(*values).inc
        self.count_schema_invalid = counters["llm_response_schema_invalid"].labels(*values).inc
        self.missing_choices = counters["llm_response_missing_choices"].labels(*values)
        self.empty_content = counters["llm_response_empty_content"].labels(*values)
        self.count_missing_usage = counters["llm_response_missing_usage"].labels(*values).inc
        latency = histograms["llm_latency_ms"]
        self.observe_latency_success = latency.labels(*values, "success").observe
        self.observe_latency_failure = latency.labels(*values, "failure").observe
        self.observe_ttfb = histograms["llm_time_to_first_byte_ms"].labels(*values).observe
        self.observe_ttft = histograms["llm_time_to_first_token_ms"].labels(*values).observe
        self.observe_completion = histograms["llm_completion_duration_ms"].labels(*values).observe
        self.add_prompt_tokens = counters["llm_usage_prompt_tokens"].labels(*values).inc
        self.add_completion_tokens = counters["llm_usage_completion_tokens"].labels(*values).inc
        provider, endpoint, _, _, route = values
        self.observe_network: tuple[_Add, _Add, _Add] = (
            histograms["llm_dns_ms"].labels(provider, endpoint, route).observe,
            histograms["llm_connect_ms"].labels(provider, endpoint, route).observe,
            histograms["llm_tls_ms"].labels(provider, endpoint, route).observe,
        )
        # Keyed children created on first use: (kind, category, status), code, verdict.
        self.errors: dict[tuple[str, str, str], Counter] = {}
        self.timeouts: dict[str, Counter] = {}
        self.incomplete: dict[str, Counter] = {}


class CallMetricObjects(SeriesIndex[_Series]):
    """The per-call families (``CALL_FAMILIES``) as metric objects registered on ``registry``."""

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        models: BoundedValues,
        routes: BoundedValues,
        small: BoundedValues,
    ) -> None:
        super().__init__(models=models, routes=routes)
        self._small = small
        self._lock = threading.Lock()
        self.counters: dict[str, Counter] = {}
        self.histograms: dict[str, Histogram] = {}
        for family in CALL_FAMILIES:
            if family.type == "histogram":
                self.histograms[family.name] = _histogram(family, registry)
            else:
                self.counters[family.name] = _counter(family, registry)

    def _new_series(self, key: SeriesKey) -> _Series:
        with self._lock:
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = _Series(self, key)
            return series

    def handle_exchange(self, exchange: Exchange, labels: CallLabels) -> None:
        """Meter one HTTP call."""
        request = exchange.request
        raw = (labels.provider, labels.endpoint, request.model, request.stream, exchange.route)
        series = self._by_raw.get(raw)
        if series is None:
            series = self._series_for(raw)
        series.count_request(1)
        if request.stream:
            series.count_stream_enabled(1)
        if request.timeout_budget_ms is not None:
            series.observe_budget(request.timeout_budget_ms)
        self._observe_timings(series, exchange)
        self._count_response(series, exchange)
        if exchange.failure is not None:
            self._count_failure(series, exchange)

    @staticmethod
    def _observe_timings(series: _Series, exchange: Exchange) -> None:
        timings = exchange.timings
        ok = exchange.failure is None
        total = timings.total_ms
        closed = exchange.closed_by_caller  # its length is the caller's: see CallCollector
        if not closed:
            (series.observe_latency_success if ok else series.observe_latency_failure)(total)
        ttfb, ttft = timings.ttfb_ms, timings.ttft_ms
        if ttfb is not None:
            series.observe_ttfb(ttfb)
        if ttft is not None:
            series.observe_ttft(ttft)
        # New connections only: a reused one has none of the three phases.
        dns, connect, tls = series.observe_network
        if timings.dns_ms is not None:
            dns(timings.dns_ms)
        if timings.connect_ms is not None:
            connect(timings.connect_ms)
        if timings.tls_ms is not None:
            tls(timings.tls_ms)
        response = exchange.response
        if response is None or not 200 <= response.status < 300 or closed:
            return
        start = ttft if exchange.request.stream else ttfb
        if start is not None:
            series.observe_completion(max(total - start, 0.0))

    def _count_response(self, series: _Series, exchange: Exchange) -> None:
        response = exchange.response
        if response is None:
            return
        failure = exchange.failure
        kind = None if failure is None else failure.kind
        code = None if failure is None else failure.code
        verdict = response.stream_verdict
        closed = exchange.closed_by_caller  # what it did not read is not judged
        if verdict is not None and verdict != "complete" and not closed:
            counter = series.incomplete.get(verdict)
            if counter is None:
                counter = series.incomplete.setdefault(
                    verdict, self.counters["llm_stream_incomplete"].labels(*series.values, verdict)
                )
            counter.inc()
        usage = response.usage
        if usage is not None:
            if usage.prompt_tokens:
                series.add_prompt_tokens(max(usage.prompt_tokens, 0))
            if usage.completion_tokens:
                series.add_completion_tokens(max(usage.completion_tokens, 0))
        if code == "missing_usage":
            series.count_missing_usage(1)
        if not 200 <= response.status < 300 or closed:
            return
        if kind == "parser":
            series.count_schema_invalid(1)
        elif kind is None or kind == "semantic":
            series.count_schema_valid(1)
            request = exchange.request
            expected = not request.stream or request.include_usage
            if usage is None and expected and code != "missing_usage":
                series.count_missing_usage(1)

    def _count_failure(self, series: _Series, exchange: Exchange) -> None:
        failure = exchange.failure
        if failure is None:  # pragma: no cover - the caller checked
            return
        status = "none" if failure.status is None else str(failure.status)
        key = (failure.kind, failure.category, status)
        counter = series.errors.get(key)
        if counter is None:
            counter = series.errors.setdefault(
                key, self.counters["llm_error"].labels(*series.values, *key)
            )
        counter.inc()
        if failure.category == "validation":
            series.request_invalid.inc()
        if failure.code == "missing_choices":
            series.missing_choices.inc()
        elif failure.code == "empty_content":
            series.empty_content.inc()
        if failure.kind == "transport" and failure.category == "timeout":
            code = self._small(failure.code)
            timeout = series.timeouts.get(code)
            if timeout is None:
                timeout = series.timeouts.setdefault(
                    code, self.counters["llm_client_timeout"].labels(*series.values, code)
                )
            timeout.inc()
