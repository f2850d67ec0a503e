"""Per-call families as plain numbers under one lock, exposed by a prometheus_client collector.

A call updates eight to twelve series. Through metric objects each update is its own
``inc``/``observe``: several Python frames and a lock each, histograms walking their buckets in
Python. Here the call takes one lock and adds to floats (counters) and lists (histograms: one
count per bucket, found with ``bisect``, and the sum last); a scrape copies everything under the
same lock and builds the families with ``prometheus_client.metrics_core``'s public classes.

What a scrape shows is what the metric objects showed (``_prom_objects``, still used in
multiprocess mode): the same names, HELP, types, label names and values, buckets, samples
(``_total``, ``_bucket``, ``_count``, ``_sum``, and ``_created`` unless prometheus_client's
``disable_created_metrics()`` or ``PROMETHEUS_DISABLE_CREATED_SERIES`` turned them off), the
same order, and a series appears once it was first observed.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from collections.abc import Iterator

from prometheus_client import Counter
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.utils import floatToGoString

from chatcontract.exchange import Exchange

from ._labels import BoundedValues
from ._prom_families import (
    BUDGET_BUCKETS_MS,
    CALL_FAMILIES,
    LATENCY_BUCKETS_MS,
    PHASE_BUCKETS_MS,
    MetricFamily,
    SeriesIndex,
    SeriesKey,
)
from .events import CallLabels

__all__ = ["CallCollector"]

_INF = float("inf")
# Floats, +Inf last: comparing a float with an int costs more than with a float.
_BUDGET = (*map(float, BUDGET_BUCKETS_MS), _INF)
_LATENCY = (*map(float, LATENCY_BUCKETS_MS), _INF)
_PHASE = (*map(float, PHASE_BUCKETS_MS), _INF)


def _le(bound: float) -> str:
    """A bucket bound as prometheus_client spells it in the ``le`` label."""
    label: str = floatToGoString(bound)  # type: ignore[no-untyped-call]  # untyped upstream
    return label


#: Each histogram's ``le`` label values.
_LE = {
    family.name: tuple(_le(bound) for bound in (*family.buckets, _INF))
    for family in CALL_FAMILIES
    if family.type == "histogram"
}
#: A child in a scrape's copy: label values, value (a histogram's state), created.
_CounterRow = tuple[tuple[str, ...], float, float]
_HistogramRow = tuple[tuple[str, ...], list[float], float]

#: The per-series counters: each family's ``_Series`` attribute is its name without ``llm_``.
_SERIES_COUNTERS = (
    "llm_request",
    "llm_request_schema_invalid",
    "llm_request_stream_enabled",
    "llm_response_schema_valid",
    "llm_response_schema_invalid",
    "llm_response_missing_choices",
    "llm_response_empty_content",
    "llm_response_missing_usage",
    "llm_usage_prompt_tokens",
    "llm_usage_completion_tokens",
)
_SERIES_HISTOGRAMS = (
    "llm_request_timeout_budget_ms",
    "llm_time_to_first_byte_ms",
    "llm_time_to_first_token_ms",
    "llm_completion_duration_ms",
)
_NETWORK_HISTOGRAMS = ("llm_dns_ms", "llm_connect_ms", "llm_tls_ms")


def _histogram(bounds: tuple[float, ...]) -> list[float]:
    """A histogram's state: the count of each bucket (not cumulative), then the sum."""
    return [0.0] * (len(bounds) + 1)


def _observe(histogram: list[float], bounds: tuple[float, ...], value: float) -> None:
    """What ``Histogram.observe`` does: the sum takes every value, the bucket a number's
    (``value <= bound``: ``bisect_left``), none a NaN's."""
    if value == value:  # noqa: PLR0124 - false for NaN only
        histogram[bisect_left(bounds, value)] += 1.0
    histogram[-1] += value


class _Network:
    """The three phase histograms of one (provider, endpoint, route)."""

    __slots__ = ("connect_ms", "created", "dns_ms", "tls_ms", "values")

    def __init__(self, values: tuple[str, str, str]) -> None:
        self.values = values
        self.created = time.time()
        self.dns_ms = _histogram(_PHASE)
        self.connect_ms = _histogram(_PHASE)
        self.tls_ms = _histogram(_PHASE)


class _Series:
    """The values of one label set: floats for counters, lists for histograms."""

    __slots__ = (
        "completion_duration_ms",
        "created",
        "errors",
        "incomplete",
        "latency_failure",
        "latency_success",
        "network",
        "request",
        "request_schema_invalid",
        "request_stream_enabled",
        "request_timeout_budget_ms",
        "response_empty_content",
        "response_missing_choices",
        "response_missing_usage",
        "response_schema_invalid",
        "response_schema_valid",
        "time_to_first_byte_ms",
        "time_to_first_token_ms",
        "timeouts",
        "usage_completion_tokens",
        "usage_prompt_tokens",
        "values",
    )

    def __init__(self, values: SeriesKey, network: _Network) -> None:
        self.values = values
        self.created = time.time()
        self.network = network
        self.request = 0.0
        self.request_schema_invalid = 0.0
        self.request_stream_enabled = 0.0
        self.response_schema_valid = 0.0
        self.response_schema_invalid = 0.0
        self.response_missing_choices = 0.0
        self.response_empty_content = 0.0
        self.response_missing_usage = 0.0
        self.usage_prompt_tokens = 0.0
        self.usage_completion_tokens = 0.0
        self.request_timeout_budget_ms = _histogram(_BUDGET)
        self.latency_success = _histogram(_LATENCY)
        self.latency_failure = _histogram(_LATENCY)
        self.time_to_first_byte_ms = _histogram(_LATENCY)
        self.time_to_first_token_ms = _histogram(_LATENCY)
        self.completion_duration_ms = _histogram(_LATENCY)
        # Keyed counters, by (kind, category, status), (code,), (verdict,): [value, created].
        self.errors: dict[tuple[str, ...], list[float]] = {}
        self.timeouts: dict[tuple[str, ...], list[float]] = {}
        self.incomplete: dict[tuple[str, ...], list[float]] = {}


class _Keyed:
    """One keyed counter family: its children in creation order (the order a scrape lists)."""

    __slots__ = ("children",)

    def __init__(self) -> None:
        self.children: list[tuple[tuple[str, ...], list[float]]] = []

    def add(self, cells: dict[tuple[str, ...], list[float]], series: _Series,
            key: tuple[str, ...]) -> None:  # fmt: skip
        """Count one under ``key`` (the caller holds the lock)."""
        cell = cells.get(key)
        if cell is None:
            cell = cells[key] = [0.0, time.time()]
            self.children.append(((*series.values, *key), cell))
        cell[0] += 1.0

    def rows(self) -> list[_CounterRow]:
        """A copy of every child: label values, value, created (the caller holds the lock)."""
        return [(values, cell[0], cell[1]) for values, cell in self.children]


class CallCollector(SeriesIndex[_Series]):
    """The per-call families (``CALL_FAMILIES``), kept here and collected by a registry.

    Register it once (``registry.register(collector)``); its ``describe`` names every family, so
    a second sink on the same registry is refused as prometheus_client refuses duplicates.
    """

    def __init__(
        self, *, models: BoundedValues, routes: BoundedValues, small: BoundedValues
    ) -> None:
        super().__init__(models=models, routes=routes)
        self._small = small
        self._lock = threading.Lock()
        self._network: dict[tuple[str, str, str], _Network] = {}
        self._errors = _Keyed()
        self._timeouts = _Keyed()
        self._incomplete = _Keyed()
        # An unregistered counter, collected at each scrape only to learn whether
        # prometheus_client emits ``_created`` samples now (it has no public getter).
        self._created_probe = Counter("created_probe", "", registry=None)

    def _new_series(self, key: SeriesKey) -> _Series:
        with self._lock:
            series = self._series.get(key)
            if series is None:
                provider, endpoint, _, _, route = key
                place = (provider, endpoint, route)
                network = self._network.get(place)
                if network is None:
                    network = self._network[place] = _Network(place)
                series = self._series[key] = _Series(key, network)
            return series

    # -- per call ---------------------------------------------------------------------------

    def handle_exchange(self, exchange: Exchange, labels: CallLabels) -> None:
        """Meter one HTTP call (the same counts as ``CallMetricObjects.handle_exchange``).

        One method, one lock: every helper call or lock taken here is paid on every call.
        """
        request = exchange.request
        stream = request.stream
        raw = (labels.provider, labels.endpoint, request.model, stream, exchange.route)
        series = self._by_raw.get(raw)
        if series is None:
            series = self._series_for(raw)
        timings = exchange.timings
        total, ttfb, ttft = timings.total_ms, timings.ttfb_ms, timings.ttft_ms
        budget = request.timeout_budget_ms
        failure = exchange.failure
        response = exchange.response
        # A call the caller stopped: counted, with the times it had (first byte, first token),
        # but its length is the caller's and what it did not read is not judged.
        closed = exchange.closed_by_caller
        with self._lock:
            series.request += 1.0
            if stream:
                series.request_stream_enabled += 1.0
            # The observations of nearly every call are ``_observe`` written out (a call fewer
            # each); ``value == value`` is false for NaN only.
            if budget is not None:
                histogram = series.request_timeout_budget_ms
                if budget == budget:  # noqa: PLR0124
                    histogram[bisect_left(_BUDGET, budget)] += 1.0
                histogram[-1] += budget
            if not closed:
                histogram = series.latency_success if failure is None else series.latency_failure
                if total == total:  # noqa: PLR0124
                    histogram[bisect_left(_LATENCY, total)] += 1.0
                histogram[-1] += total
            if ttfb is not None:
                histogram = series.time_to_first_byte_ms
                if ttfb == ttfb:  # noqa: PLR0124
                    histogram[bisect_left(_LATENCY, ttfb)] += 1.0
                histogram[-1] += ttfb
            if ttft is not None:
                _observe(series.time_to_first_token_ms, _LATENCY, ttft)
            # New connections only: a reused one has none of the three phases.
            if timings.dns_ms is not None:
                _observe(series.network.dns_ms, _PHASE, timings.dns_ms)
            if timings.connect_ms is not None:
                _observe(series.network.connect_ms, _PHASE, timings.connect_ms)
            if timings.tls_ms is not None:
                _observe(series.network.tls_ms, _PHASE, timings.tls_ms)
            if response is not None:
                ok = 200 <= response.status < 300 and not closed
                if ok:
                    start = ttft if stream else ttfb
                    if start is not None:
                        duration = total - start
                        # max(duration, 0.0) without the call; a NaN stays a NaN, as with max
                        if duration < 0.0:  # noqa: PLR1730
                            duration = 0.0
                        histogram = series.completion_duration_ms
                        if duration == duration:  # noqa: PLR0124
                            histogram[bisect_left(_LATENCY, duration)] += 1.0
                        histogram[-1] += duration
                verdict = response.stream_verdict
                if verdict is not None and verdict != "complete" and not closed:
                    self._incomplete.add(series.incomplete, series, (verdict,))
                usage = response.usage
                if usage is not None:  # what the provider reported (None: not reported)
                    prompt, completion = usage.prompt_tokens, usage.completion_tokens
                    if prompt and prompt > 0:
                        series.usage_prompt_tokens += prompt
                    if completion and completion > 0:
                        series.usage_completion_tokens += completion
                code = None if failure is None else failure.code
                if code == "missing_usage":
                    series.response_missing_usage += 1.0
                if ok:
                    kind = None if failure is None else failure.kind
                    if kind == "parser":
                        series.response_schema_invalid += 1.0
                    elif kind is None or kind == "semantic":
                        series.response_schema_valid += 1.0
                        expected = not stream or request.include_usage
                        if usage is None and expected and code != "missing_usage":
                            series.response_missing_usage += 1.0
            if failure is not None:
                self._count_failure(series, exchange)

    def _count_failure(self, series: _Series, exchange: Exchange) -> None:
        """A failed call's counts (the caller holds the lock)."""
        failure = exchange.failure
        if failure is None:  # pragma: no cover - the caller checked
            return
        status = "none" if failure.status is None else str(failure.status)
        self._errors.add(series.errors, series, (failure.kind, failure.category, status))
        if failure.category == "validation":
            series.request_schema_invalid += 1.0
        if failure.code == "missing_choices":
            series.response_missing_choices += 1.0
        elif failure.code == "empty_content":
            series.response_empty_content += 1.0
        if failure.kind == "transport" and failure.category == "timeout":
            self._timeouts.add(series.timeouts, series, (self._small(failure.code),))

    # -- scrape -----------------------------------------------------------------------------

    def describe(self) -> list[Metric]:
        """The families, without samples: what the registry checks for duplicates."""
        return [Metric(family.name, family.documentation, family.type) for family in CALL_FAMILIES]

    def collect(self) -> Iterator[Metric]:
        """Every per-call family, built from one consistent copy of the values."""
        created = self._created_series()
        counters: dict[str, list[_CounterRow]] = {}
        histograms: dict[str, list[_HistogramRow]] = {}
        with self._lock:  # copies only: the families are built once the calls may go on
            every = list(self._series.values())
            for name in _SERIES_COUNTERS:
                attribute = name.removeprefix("llm_")
                counters[name] = [(one.values, getattr(one, attribute), one.created)
                                  for one in every]  # fmt: skip
            for name in _SERIES_HISTOGRAMS:
                attribute = name.removeprefix("llm_")
                histograms[name] = [(one.values, getattr(one, attribute)[:], one.created)
                                    for one in every]  # fmt: skip
            histograms["llm_latency_ms"] = [
                row
                for one in every
                for row in (
                    ((*one.values, "success"), one.latency_success[:], one.created),
                    ((*one.values, "failure"), one.latency_failure[:], one.created),
                )
            ]
            for name in _NETWORK_HISTOGRAMS:
                attribute = name.removeprefix("llm_")
                histograms[name] = [(place.values, getattr(place, attribute)[:], place.created)
                                    for place in self._network.values()]  # fmt: skip
            counters["llm_error"] = self._errors.rows()
            counters["llm_client_timeout"] = self._timeouts.rows()
            counters["llm_stream_incomplete"] = self._incomplete.rows()
        for family in CALL_FAMILIES:
            if family.type == "counter":
                yield _counter_family(family, counters[family.name], created=created)
            else:
                yield _histogram_family(family, histograms[family.name], created=created)

    def _created_series(self) -> bool:
        """Whether prometheus_client emits ``_created`` samples now (its switch, read here)."""
        return any(
            sample.name.endswith("_created")
            for metric in self._created_probe.collect()
            for sample in metric.samples
        )


def _counter_family(family: MetricFamily, rows: list[_CounterRow], *, created: bool) -> Metric:
    """A counter family as ``Counter.collect`` builds it: ``_total``, then ``_created``."""
    metric = CounterMetricFamily(family.name, family.documentation, labels=family.labelnames)
    for values, value, created_at in rows:
        metric.add_metric(values, value, created=created_at if created else None)
    return metric


def _histogram_family(family: MetricFamily, rows: list[_HistogramRow], *, created: bool) -> Metric:
    """A histogram family as ``Histogram.collect`` builds it: cumulative ``_bucket`` samples,
    ``_count``, ``_sum``, then ``_created``."""
    metric = HistogramMetricFamily(family.name, family.documentation, labels=family.labelnames)
    bounds = _LE[family.name]
    for values, state, created_at in rows:
        buckets: list[tuple[str, float]] = []
        count = 0.0
        for bound, in_bucket in zip(bounds, state, strict=False):  # state ends with the sum
            count += in_bucket
            buckets.append((bound, count))
        metric.add_metric(values, buckets, state[-1])
        if created:
            labels = dict(zip(family.labelnames, values, strict=True))
            metric.add_sample(family.name + "_created", labels, created_at)
    return metric
