"""The ``llm_*`` families ``PrometheusSink`` registers, declared once (name, HELP, type, labels,
buckets), and the lookup of a call's series shared by the two ways of keeping per-call values:
``_prom_calls``' collector (plain numbers under one lock) and ``_prom_objects``' metric objects
(prometheus_client's multiprocess mode). Both, and the rare-event metric objects, are built from
this table, so they cannot disagree on what a scrape shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from ._labels import BoundedValues

__all__ = [
    "BUDGET_BUCKETS_MS",
    "CALL_FAMILIES",
    "CALL_LABELS",
    "EVENT_FAMILIES",
    "LATENCY_BUCKETS_MS",
    "PHASE_BUCKETS_MS",
    "MetricFamily",
    "RawKey",
    "SeriesIndex",
    "SeriesKey",
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
NETWORK_LABELS: tuple[str, ...] = ("provider", "endpoint", "route")


@dataclass(frozen=True, slots=True, kw_only=True)
class MetricFamily:
    """One family as a scrape shows it.

    ``name`` is what prometheus_client's constructors take: a counter's samples add ``_total``
    (``llm_request`` is scraped as ``llm_request_total``), which ``exposed`` spells out.
    """

    name: str
    documentation: str
    type: Literal["counter", "gauge", "histogram"]
    labelnames: tuple[str, ...]
    buckets: tuple[float, ...] = ()

    def __post_init__(self) -> None:
        if (self.type == "histogram") != bool(self.buckets):
            raise ValueError(f"{self.name}: buckets are for histograms, and histograms need them")

    @property
    def exposed(self) -> str:
        """The family name a scrape and a PromQL query use."""
        return self.name + "_total" if self.type == "counter" else self.name


def _counter(name: str, documentation: str, labelnames: tuple[str, ...]) -> MetricFamily:
    return MetricFamily(name=name, documentation=documentation, type="counter",
                        labelnames=labelnames)  # fmt: skip


def _histogram(
    name: str, documentation: str, labelnames: tuple[str, ...], buckets: tuple[float, ...]
) -> MetricFamily:
    return MetricFamily(name=name, documentation=documentation, type="histogram",
                        labelnames=labelnames, buckets=buckets)  # fmt: skip


_CALLS = CALL_LABELS

#: The families every call updates (``PrometheusSink.handle_exchange``), in registration order.
CALL_FAMILIES: tuple[MetricFamily, ...] = (
    _counter("llm_request", "Chat completion requests sent.", _CALLS),
    _counter(
        "llm_request_schema_invalid",
        "Requests rejected as invalid (failure category validation), locally or by the provider.",
        _CALLS,
    ),
    _counter("llm_request_stream_enabled", "Requests sent with stream=true.", _CALLS),
    _histogram(
        "llm_request_timeout_budget_ms",
        "The timeout budget a request was sent with (largest httpx timeout), in ms.",
        _CALLS,
        BUDGET_BUCKETS_MS,
    ),
    _counter(
        "llm_response_schema_valid",
        "2xx responses the contract parser accepted (semantic problems included).",
        _CALLS,
    ),
    _counter(
        "llm_response_schema_invalid",
        "2xx responses the contract parser rejected (failure kind parser).",
        _CALLS,
    ),
    _counter("llm_response_missing_choices", "2xx responses without any choice.", _CALLS),
    _counter(
        "llm_response_empty_content",
        "Completions whose assistant content is empty (no text, no tool call).",
        _CALLS,
    ),
    _counter(
        "llm_response_missing_usage",
        "Completions without usage where usage was expected (never counted as zero).",
        _CALLS,
    ),
    _histogram(
        "llm_latency_ms",
        "Whole-call duration, request start to the last byte (or the failure), in ms.",
        (*_CALLS, "outcome"),
        LATENCY_BUCKETS_MS,
    ),
    _histogram(
        "llm_time_to_first_byte_ms",
        "Request start to the complete response head, in ms.",
        _CALLS,
        LATENCY_BUCKETS_MS,
    ),
    _histogram(
        "llm_time_to_first_token_ms",
        "Request start to the first content token of a stream, in ms.",
        _CALLS,
        LATENCY_BUCKETS_MS,
    ),
    _histogram(
        "llm_completion_duration_ms",
        "Generation time of a 2xx answer: first byte to end (non-stream) or first token to end "
        "(stream), in ms.",
        _CALLS,
        LATENCY_BUCKETS_MS,
    ),
    _counter(
        "llm_client_timeout",
        "Calls our side gave up on (connect/read/pool timeout, stalled stream, deadline).",
        (*_CALLS, "code"),
    ),
    _counter("llm_usage_prompt_tokens", "Prompt tokens reported by the provider.", _CALLS),
    _counter("llm_usage_completion_tokens", "Completion tokens reported by the provider.", _CALLS),
    _counter(
        "llm_error",
        "Failed calls by failure kind, category and HTTP status.",
        (*_CALLS, "kind", "category", "status_code"),
    ),
    _histogram(
        "llm_dns_ms",
        "Name resolution time of new connections, in ms.",
        NETWORK_LABELS,
        PHASE_BUCKETS_MS,
    ),
    _histogram(
        "llm_connect_ms",
        "TCP connect time of new connections, in ms.",
        NETWORK_LABELS,
        PHASE_BUCKETS_MS,
    ),
    _histogram(
        "llm_tls_ms",
        "TLS handshake time of new connections, in ms.",
        NETWORK_LABELS,
        PHASE_BUCKETS_MS,
    ),
    _counter(
        "llm_stream_incomplete",
        "Streams that did not complete, by verdict (cut, dropped, truncated, no_done, stalled, "
        "malformed_chunk, inband_error).",
        (*_CALLS, "verdict"),
    ),
)

#: The families of client decisions and sink errors (``handle_event``, ``count_sink_error``):
#: rare, so they stay ordinary prometheus_client metric objects.
EVENT_FAMILIES: tuple[MetricFamily, ...] = (
    _counter(
        "llm_retry",
        "Policy decisions after a failed attempt (retry, fallback, none).",
        ("provider", "endpoint", "model", "route", "category", "decision"),
    ),
    _counter(
        "llm_retry_success",
        "Calls that succeeded after at least one failed attempt.",
        ("provider", "endpoint", "model", "route"),
    ),
    _counter(
        "llm_fallback_activation",
        "Traffic moved to the next route, by the failure category that moved it.",
        ("provider", "endpoint", "model", "from_route", "to_route", "category"),
    ),
    _counter(
        "llm_budget_refusal",
        "Calls a local cost/token guard refused to send.",
        ("provider", "endpoint", "model", "reason"),
    ),
    _counter(
        "llm_deadline_exhausted",
        "Calls whose single deadline ran out across attempts and fallbacks.",
        ("provider", "endpoint", "model", "route"),
    ),
    MetricFamily(
        name="llm_circuit_breaker_state",
        documentation="A route's circuit breaker: 0 closed, 1 open, 2 half-open (set on each "
        "change).",
        type="gauge",
        labelnames=("provider", "endpoint", "route"),
    ),
    _counter(
        "llm_telemetry_sink_errors",
        "Telemetry sinks that raised while observing a call (the call itself went on).",
        ("provider", "endpoint", "sink"),
    ),
)


_MAX_RAW_KEYS = 1024
_STREAM_VALUES = {True: "true", False: "false"}

#: A call's labels as the Exchange gives them: provider, endpoint, model, stream, route.
RawKey = tuple[str, str, str | None, bool, str]
#: The same, bounded and as label values.
SeriesKey = tuple[str, str, str, str, str]


S = TypeVar("S")


class SeriesIndex(Generic[S]):
    """Finds the series of a call: label values bounded once per distinct raw label tuple.

    Raw (provider, endpoint, model, stream, route) tuples are remembered with their series: the
    label mapping of a raw value never changes once made, so a known call skips it. Bounded,
    because raw model names come from callers (the rest take the mapping each time).
    Subclasses build a series in ``_new_series``, under their own lock.
    """

    def __init__(self, *, models: BoundedValues, routes: BoundedValues) -> None:
        self._models = models
        self._routes = routes
        self._series: dict[SeriesKey, S] = {}
        self._by_raw: dict[RawKey, S] = {}

    def _series_for(self, raw: RawKey) -> S:
        """The series of a raw label tuple, its values bounded (and remembered, up to a cap)."""
        provider, endpoint, model, stream, route = raw
        key = (provider, endpoint, self._models(model), _STREAM_VALUES[stream], self._routes(route))
        series = self._series.get(key)
        if series is None:
            series = self._new_series(key)
        if len(self._by_raw) < _MAX_RAW_KEYS:
            self._by_raw[raw] = series
        return series

    def _new_series(self, key: SeriesKey) -> S:
        raise NotImplementedError
