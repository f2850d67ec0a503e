"""Prometheus metrics for every call: the seed runbooks' family names, bounded labels.

Every family is registered on the ``CollectorRegistry`` you pass (never the global one unless you
pass it). Every per-call family carries the same labels, ``provider``, ``endpoint``, ``model``
(the *requested* model, bounded: the contract's models plus the first 50 others, then
``other``), ``stream`` and ``route``, so success and failure series join on them. Error series
add ``kind``, ``category`` and ``status_code`` from the failure taxonomy. ``docs/metrics.md``
documents each family and what to alert on.

Example::

    registry = CollectorRegistry()
    sink = PrometheusSink(registry, contract=load_preset("cometapi"))
    telemetry = Telemetry([sink], CallLabels(provider="cometapi", endpoint="/chat/completions"))
    transport = InstrumentedTransport(contract=contract, sinks=[telemetry.exchange])
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from chatcontract.contract import Contract
from chatcontract.exchange import Exchange
from chatcontract.policy.breaker import BREAKER_STATES

from ._labels import BoundedValues, contract_models, contract_routes
from .events import (
    BreakerChanged,
    BudgetRefusal,
    CallLabels,
    ClientEvent,
    DeadlineExhausted,
    FallbackActivated,
    RetryDecided,
    RetrySucceeded,
)

__all__ = [
    "BUDGET_BUCKETS_MS",
    "CALL_LABELS",
    "LATENCY_BUCKETS_MS",
    "PHASE_BUCKETS_MS",
    "PrometheusSink",
]

#: Whole-call latencies of an LLM API: from a cached 5 ms answer to a 2-minute generation.
LATENCY_BUCKETS_MS: tuple[float, ...] = (
    5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 20_000, 30_000, 60_000, 120_000,
)  # fmt: skip
#: Network phases (DNS, connect, TLS): sub-millisecond on loopback, seconds when broken.
PHASE_BUCKETS_MS: tuple[float, ...] = (
    0.5, 1, 2.5, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000,
)  # fmt: skip
#: Timeout budgets: from a 1 s health ping to the openai SDK's 600 s default.
BUDGET_BUCKETS_MS: tuple[float, ...] = (
    1_000, 5_000, 10_000, 30_000, 60_000, 120_000, 300_000, 600_000,
)  # fmt: skip

#: The labels every per-call family carries, in order.
CALL_LABELS: tuple[str, ...] = ("provider", "endpoint", "model", "stream", "route")
_NETWORK_LABELS = ("provider", "endpoint", "route")
_ERROR_LABELS = (*CALL_LABELS, "kind", "category", "status_code")

_MAX_MODELS = 50
_MAX_ROUTES = 20
_MAX_SMALL = 30  # reasons, timeout codes: small sets from our own tables, capped anyway
# Raw (provider, endpoint, model, stream, route) tuples remembered with their series: the label
# mapping of a raw value never changes once made, so a known call skips it. Bounded, because
# raw model names come from callers (the rest take the mapping each time, as before).
_MAX_RAW_KEYS = 1024
_STREAM_VALUES = {True: "true", False: "false"}

_Add = Callable[[float], None]


def _adder(child: Counter) -> _Add:
    """The child's public ``inc``, bound once (``labels()`` is the costly part, done once)."""
    return child.inc


def _observer(child: Histogram) -> _Add:
    """The child's public ``observe``, bound once."""
    return child.observe


class _Series:
    """The children of one label set, bound once: ``labels()`` costs more than ``inc()``."""

    __slots__ = (
        "add_completion_tokens",
        "add_prompt_tokens",
        "budget",
        "completion",
        "completion_tokens",
        "count_missing_usage",
        "count_request",
        "count_schema_invalid",
        "count_schema_valid",
        "count_stream_enabled",
        "empty_content",
        "errors",
        "incomplete",
        "latency_failure",
        "latency_success",
        "missing_choices",
        "missing_usage",
        "network",
        "observe_budget",
        "observe_completion",
        "observe_latency_failure",
        "observe_latency_success",
        "observe_network",
        "observe_ttfb",
        "observe_ttft",
        "prompt_tokens",
        "request",
        "request_invalid",
        "schema_invalid",
        "schema_valid",
        "stream_enabled",
        "timeouts",
        "ttfb",
        "ttft",
        "values",
    )

    def __init__(self, sink: PrometheusSink, values: tuple[str, str, str, str, str]) -> None:
        self.values = values
        self.request = sink.request.labels(*values)
        self.request_invalid = sink.request_schema_invalid.labels(*values)
        self.stream_enabled = sink.request_stream_enabled.labels(*values)
        self.budget = sink.request_timeout_budget.labels(*values)
        self.schema_valid = sink.response_schema_valid.labels(*values)
        self.schema_invalid = sink.response_schema_invalid.labels(*values)
        self.missing_choices = sink.response_missing_choices.labels(*values)
        self.empty_content = sink.response_empty_content.labels(*values)
        self.missing_usage = sink.response_missing_usage.labels(*values)
        self.latency_success = sink.latency.labels(*values, "success")
        self.latency_failure = sink.latency.labels(*values, "failure")
        self.ttfb = sink.time_to_first_byte.labels(*values)
        self.ttft = sink.time_to_first_token.labels(*values)
        self.completion = sink.completion_duration.labels(*values)
        self.prompt_tokens = sink.usage_prompt_tokens.labels(*values)
        self.completion_tokens = sink.usage_completion_tokens.labels(*values)
        provider, endpoint, _, _, route = values
        self.network = (
            sink.dns.labels(provider, endpoint, route),
            sink.connect.labels(provider, endpoint, route),
            sink.tls.labels(provider, endpoint, route),
        )
        # What every call touches, as bound fast paths (see ``_adder`` and ``_observer``).
        self.count_request = _adder(self.request)
        self.count_stream_enabled = _adder(self.stream_enabled)
        self.count_schema_valid = _adder(self.schema_valid)
        self.count_schema_invalid = _adder(self.schema_invalid)
        self.count_missing_usage = _adder(self.missing_usage)
        self.add_prompt_tokens = _adder(self.prompt_tokens)
        self.add_completion_tokens = _adder(self.completion_tokens)
        self.observe_budget = _observer(self.budget)
        self.observe_latency_success = _observer(self.latency_success)
        self.observe_latency_failure = _observer(self.latency_failure)
        self.observe_ttfb = _observer(self.ttfb)
        self.observe_ttft = _observer(self.ttft)
        self.observe_completion = _observer(self.completion)
        self.observe_network = tuple(_observer(child) for child in self.network)
        # Keyed children created on first use: (kind, category, status), code, verdict.
        self.errors: dict[tuple[str, str, str], Counter] = {}
        self.timeouts: dict[str, Counter] = {}
        self.incomplete: dict[str, Counter] = {}


class PrometheusSink:
    """A ``TelemetrySink`` that meters every Exchange and client event in Prometheus.

    Args:
        registry: where the families are registered (inject it; one sink per registry).
        contract: names the models and routes always kept as label values.
        max_models: how many further distinct requested models get their own label value
            before the rest are counted as ``other``.

    Read values back with ``registry.get_sample_value("llm_request_total", {...})``.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        contract: Contract | None = None,
        max_models: int = _MAX_MODELS,
    ) -> None:
        self._registry = registry
        self._models = BoundedValues(known=contract_models(contract), limit=max_models)
        self._routes = BoundedValues(known=contract_routes(contract), limit=_MAX_ROUTES)
        self._small = BoundedValues(limit=_MAX_SMALL)
        self._series: dict[tuple[str, str, str, str, str], _Series] = {}
        self._by_raw: dict[tuple[str, str, str | None, bool, str], _Series] = {}
        self._lock = threading.Lock()
        self._names: list[str] = []

        calls = CALL_LABELS
        self.request = self._counter("llm_request", "Chat completion requests sent.", calls)
        self.request_schema_invalid = self._counter(
            "llm_request_schema_invalid",
            "Requests rejected as invalid (failure category validation), locally or by the "
            "provider.",
            calls,
        )
        self.request_stream_enabled = self._counter(
            "llm_request_stream_enabled", "Requests sent with stream=true.", calls
        )
        self.request_timeout_budget = self._histogram(
            "llm_request_timeout_budget_ms",
            "The timeout budget a request was sent with (largest httpx timeout), in ms.",
            calls,
            BUDGET_BUCKETS_MS,
        )
        self.response_schema_valid = self._counter(
            "llm_response_schema_valid",
            "2xx responses the contract parser accepted (semantic problems included).",
            calls,
        )
        self.response_schema_invalid = self._counter(
            "llm_response_schema_invalid",
            "2xx responses the contract parser rejected (failure kind parser).",
            calls,
        )
        self.response_missing_choices = self._counter(
            "llm_response_missing_choices", "2xx responses without any choice.", calls
        )
        self.response_empty_content = self._counter(
            "llm_response_empty_content",
            "Completions whose assistant content is empty (no text, no tool call).",
            calls,
        )
        self.response_missing_usage = self._counter(
            "llm_response_missing_usage",
            "Completions without usage where usage was expected (never counted as zero).",
            calls,
        )
        self.latency = self._histogram(
            "llm_latency_ms",
            "Whole-call duration, request start to the last byte (or the failure), in ms.",
            (*calls, "outcome"),
            LATENCY_BUCKETS_MS,
        )
        self.time_to_first_byte = self._histogram(
            "llm_time_to_first_byte_ms",
            "Request start to the complete response head, in ms.",
            calls,
            LATENCY_BUCKETS_MS,
        )
        self.time_to_first_token = self._histogram(
            "llm_time_to_first_token_ms",
            "Request start to the first content token of a stream, in ms.",
            calls,
            LATENCY_BUCKETS_MS,
        )
        self.completion_duration = self._histogram(
            "llm_completion_duration_ms",
            "Generation time of a 2xx answer: first byte to end (non-stream) or first token "
            "to end (stream), in ms.",
            calls,
            LATENCY_BUCKETS_MS,
        )
        self.client_timeout = self._counter(
            "llm_client_timeout",
            "Calls our side gave up on (connect/read/pool timeout, stalled stream, deadline).",
            (*calls, "code"),
        )
        self.usage_prompt_tokens = self._counter(
            "llm_usage_prompt_tokens", "Prompt tokens reported by the provider.", calls
        )
        self.usage_completion_tokens = self._counter(
            "llm_usage_completion_tokens", "Completion tokens reported by the provider.", calls
        )
        self.error = self._counter(
            "llm_error", "Failed calls by failure kind, category and HTTP status.", _ERROR_LABELS
        )
        self.dns = self._histogram(
            "llm_dns_ms", "Name resolution time of new connections, in ms.",
            _NETWORK_LABELS, PHASE_BUCKETS_MS,
        )  # fmt: skip
        self.connect = self._histogram(
            "llm_connect_ms", "TCP connect time of new connections, in ms.",
            _NETWORK_LABELS, PHASE_BUCKETS_MS,
        )  # fmt: skip
        self.tls = self._histogram(
            "llm_tls_ms", "TLS handshake time of new connections, in ms.",
            _NETWORK_LABELS, PHASE_BUCKETS_MS,
        )  # fmt: skip
        self.stream_incomplete = self._counter(
            "llm_stream_incomplete",
            "Streams that did not complete, by verdict (cut, dropped, truncated, no_done, "
            "stalled, malformed_chunk, inband_error).",
            (*calls, "verdict"),
        )
        self.retry = self._counter(
            "llm_retry",
            "Policy decisions after a failed attempt (retry, fallback, none).",
            ("provider", "endpoint", "model", "route", "category", "decision"),
        )
        self.retry_success = self._counter(
            "llm_retry_success",
            "Calls that succeeded after at least one failed attempt.",
            ("provider", "endpoint", "model", "route"),
        )
        self.fallback_activation = self._counter(
            "llm_fallback_activation",
            "Traffic moved to the next route, by the failure category that moved it.",
            ("provider", "endpoint", "model", "from_route", "to_route", "category"),
        )
        self.budget_refusal = self._counter(
            "llm_budget_refusal",
            "Calls a local cost/token guard refused to send.",
            ("provider", "endpoint", "model", "reason"),
        )
        self.deadline_exhausted = self._counter(
            "llm_deadline_exhausted",
            "Calls whose single deadline ran out across attempts and fallbacks.",
            ("provider", "endpoint", "model", "route"),
        )
        self.breaker_state = self._gauge(
            "llm_circuit_breaker_state",
            "A route's circuit breaker: 0 closed, 1 open, 2 half-open (set on each change).",
            ("provider", "endpoint", "route"),
        )
        self.sink_errors = self._counter(
            "llm_telemetry_sink_errors",
            "Telemetry sinks that raised while observing a call (the call itself went on).",
            ("provider", "endpoint", "sink"),
        )

    # -- construction -----------------------------------------------------------------------

    def _counter(self, name: str, doc: str, labels: Sequence[str]) -> Counter:
        # prometheus_client appends ``_total`` to a counter's samples: "llm_request" is
        # exposed as llm_request_total.
        self._names.append(name + "_total")
        return Counter(name, doc, labelnames=labels, registry=self._registry)

    def _gauge(self, name: str, doc: str, labels: Sequence[str]) -> Gauge:
        self._names.append(name)
        return Gauge(name, doc, labelnames=labels, registry=self._registry)

    def _histogram(
        self, name: str, doc: str, labels: Sequence[str], buckets: Sequence[float]
    ) -> Histogram:
        self._names.append(name)
        return Histogram(name, doc, labelnames=labels, buckets=buckets, registry=self._registry)

    @property
    def family_names(self) -> tuple[str, ...]:
        """The exposed family names (counters with their ``_total``), in registration order."""
        return tuple(self._names)

    # -- TelemetrySink ----------------------------------------------------------------------

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

    def handle_event(self, event: ClientEvent, labels: CallLabels) -> None:
        """Count one client decision."""
        provider, endpoint = labels.provider, labels.endpoint
        model = self._models(event.model)
        match event:
            case RetryDecided():
                self.retry.labels(
                    provider, endpoint, model, self._routes(event.route), event.category,
                    event.decision,
                ).inc()  # fmt: skip
            case RetrySucceeded():
                self.retry_success.labels(
                    provider, endpoint, model, self._routes(event.route)
                ).inc()
            case FallbackActivated():
                self.fallback_activation.labels(
                    provider, endpoint, model, self._routes(event.from_route),
                    self._routes(event.to_route), event.category,
                ).inc()  # fmt: skip
            case BudgetRefusal():
                self.budget_refusal.labels(
                    provider, endpoint, model, self._small(event.reason)
                ).inc()
            case DeadlineExhausted():
                self.deadline_exhausted.labels(
                    provider, endpoint, model, self._routes(event.route)
                ).inc()
            case BreakerChanged():
                self.breaker_state.labels(provider, endpoint, self._routes(event.route)).set(
                    BREAKER_STATES.index(event.after)
                )

    def count_sink_error(self, sink: str, labels: CallLabels) -> None:
        """Count one error of a telemetry sink (``Telemetry`` calls this for every sink)."""
        self.sink_errors.labels(labels.provider, labels.endpoint, self._small(sink)).inc()

    # -- per call ---------------------------------------------------------------------------

    def _series_for(self, raw: tuple[str, str, str | None, bool, str]) -> _Series:
        """The series of a raw label tuple, its values bounded (and remembered, up to a cap)."""
        provider, endpoint, model, stream, route = raw
        key = (provider, endpoint, self._models(model), _STREAM_VALUES[stream], self._routes(route))
        series = self._series.get(key)
        if series is None:
            series = self._new_series(key)
        if len(self._by_raw) < _MAX_RAW_KEYS:
            self._by_raw[raw] = series
        return series

    def _new_series(self, key: tuple[str, str, str, str, str]) -> _Series:
        with self._lock:
            series = self._series.get(key)
            if series is None:
                series = self._series[key] = _Series(self, key)
            return series

    @staticmethod
    def _observe_timings(series: _Series, exchange: Exchange) -> None:
        timings = exchange.timings
        ok = exchange.failure is None
        total = timings.total_ms
        (series.observe_latency_success if ok else series.observe_latency_failure)(total)
        ttfb, ttft = timings.ttfb_ms, timings.ttft_ms
        if ttfb is not None:
            series.observe_ttfb(ttfb)
        if ttft is not None:
            series.observe_ttft(ttft)
        # New connections only: a reused one has none of the three phases.
        if (
            timings.dns_ms is not None
            or timings.connect_ms is not None
            or timings.tls_ms is not None
        ):
            dns, connect, tls = series.observe_network
            if timings.dns_ms is not None:
                dns(timings.dns_ms)
            if timings.connect_ms is not None:
                connect(timings.connect_ms)
            if timings.tls_ms is not None:
                tls(timings.tls_ms)
        response = exchange.response
        if response is None or not 200 <= response.status < 300:
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
        if verdict is not None and verdict != "complete":
            counter = series.incomplete.get(verdict)
            if counter is None:
                counter = series.incomplete.setdefault(
                    verdict, self.stream_incomplete.labels(*series.values, verdict)
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
        if not 200 <= response.status < 300:
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
            counter = series.errors.setdefault(key, self.error.labels(*series.values, *key))
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
                    code, self.client_timeout.labels(*series.values, code)
                )
            timeout.inc()
