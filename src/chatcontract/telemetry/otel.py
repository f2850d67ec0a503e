"""OpenTelemetry, GenAI semantic conventions: client metrics and a span per attempt.

Optional: needs ``pip install 'chatcontract[otel]'`` (the OpenTelemetry API; bring the SDK or
a distro to export). Nothing here imports OpenTelemetry until a sink is created.

Metrics (histograms): ``gen_ai.client.operation.duration`` (s),
``gen_ai.client.token.usage`` ({token}, ``gen_ai.token.type`` = input | output) and
``gen_ai.client.operation.time_to_first_chunk`` (s, streams), with ``gen_ai.operation.name``,
``gen_ai.provider.name``, ``gen_ai.request.model``, ``gen_ai.response.model``,
``server.address`` / ``server.port`` and, on failure, ``error.type`` (the failure category)
plus ``chatcontract.failure.kind``, and ``chatcontract.closed_by_caller`` on a call its caller
stopped before its answer ended (``Exchange.closed_by_caller``). Client decisions (retry,
fallback, budget refusal, deadline) are counted in ``chatcontract.client.decisions``.

Spans: one ``chat <model>`` CLIENT span per HTTP attempt, timed from the Exchange (start =
``started_at``, end = start + ``total_ms``), carrying the same attributes and
``gen_ai.response.finish_reasons``, ``gen_ai.response.id``, ``gen_ai.usage.*``,
``chatcontract.attempt``, ``chatcontract.route``, status ERROR on failure.

Example::

    reader = InMemoryMetricReader()
    sink = OpenTelemetrySink(meter_provider=MeterProvider(metric_readers=[reader]),
                             tracer_provider=tracer_provider)
"""

from __future__ import annotations

from functools import lru_cache
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from chatcontract.errors import ConfigError
from chatcontract.exchange import Exchange

from ._labels import BoundedValues
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

if TYPE_CHECKING:
    from opentelemetry.metrics import MeterProvider
    from opentelemetry.trace import TracerProvider

__all__ = ["INSTRUMENTATION_NAME", "OpenTelemetrySink"]

#: The instrumentation scope of the meter and the tracer.
INSTRUMENTATION_NAME = "chatcontract"

# Bucket boundaries advised by the GenAI semantic conventions.
_DURATION_BUCKETS_S = (
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
)  # fmt: skip
_TOKEN_BUCKETS = (
    1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864,
)  # fmt: skip

_MAX_MODELS = 50
_OPERATION = "chat"

# Client event → its ``chatcontract.event`` attribute value.
_EVENT_NAMES: dict[type, str] = {
    RetryDecided: "retry_decided",
    RetrySucceeded: "retry_succeeded",
    FallbackActivated: "fallback_activated",
    BudgetRefusal: "budget_refusal",
    DeadlineExhausted: "deadline_exhausted",
    BreakerChanged: "breaker_changed",
}


def _library_version() -> str:
    try:
        return version("chatcontract")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"


@lru_cache(maxsize=64)
def _server(url: str) -> tuple[str | None, int | None]:
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None and parts.scheme in ("http", "https"):
        port = 443 if parts.scheme == "https" else 80
    return parts.hostname, port


class OpenTelemetrySink:
    """A ``TelemetrySink`` recording GenAI client metrics and one span per attempt.

    Args:
        meter_provider: where the histograms live (default: the global meter provider,
            as configured by the application or an OpenTelemetry distro).
        tracer_provider: where the spans go (default: the global tracer provider).

    Raises:
        ConfigError: the OpenTelemetry API is not installed.
    """

    def __init__(
        self,
        meter_provider: MeterProvider | None = None,
        tracer_provider: TracerProvider | None = None,
    ) -> None:
        try:
            from opentelemetry import metrics, trace  # lazily: an optional extra
        except ImportError as exc:
            raise ConfigError(
                "OpenTelemetrySink needs the OpenTelemetry API, which is not installed: "
                "pip install 'chatcontract[otel]'"
            ) from exc
        self._trace = trace
        lib_version = _library_version()
        meter = metrics.get_meter(INSTRUMENTATION_NAME, lib_version, meter_provider=meter_provider)
        self._tracer = trace.get_tracer(
            INSTRUMENTATION_NAME, lib_version, tracer_provider=tracer_provider
        )
        self._duration = meter.create_histogram(
            "gen_ai.client.operation.duration",
            unit="s",
            description="GenAI operation duration.",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS_S,
        )
        self._tokens = meter.create_histogram(
            "gen_ai.client.token.usage",
            unit="{token}",
            description="Number of input and output tokens used.",
            explicit_bucket_boundaries_advisory=_TOKEN_BUCKETS,
        )
        self._first_chunk = meter.create_histogram(
            "gen_ai.client.operation.time_to_first_chunk",
            unit="s",
            description="Time to receive the first chunk (token) of a streaming response.",
            explicit_bucket_boundaries_advisory=_DURATION_BUCKETS_S,
        )
        self._decisions = meter.create_counter(
            "chatcontract.client.decisions",
            unit="{decision}",
            description="Client decisions: retries, fallbacks, budget refusals, deadlines.",
        )
        self._request_models = BoundedValues(limit=_MAX_MODELS)
        self._response_models = BoundedValues(limit=_MAX_MODELS)

    def handle_exchange(self, exchange: Exchange, labels: CallLabels) -> None:
        """Record the metrics and the span of one HTTP attempt."""
        request, response, failure = exchange.request, exchange.response, exchange.failure
        host, port = _server(request.url)
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": _OPERATION,
            "gen_ai.provider.name": labels.provider,
            "gen_ai.request.model": self._request_models(request.model),
        }
        if host is not None:
            attributes["server.address"] = host
        if port is not None:
            attributes["server.port"] = port
        if response is not None and response.model:
            attributes["gen_ai.response.model"] = self._response_models(response.model)
        if failure is not None:
            attributes["error.type"] = failure.category
            attributes["chatcontract.failure.kind"] = failure.kind
        if exchange.closed_by_caller:  # its length is the caller's: told apart, as Prometheus does
            attributes["chatcontract.closed_by_caller"] = True
        timings = exchange.timings
        self._duration.record(timings.total_ms / 1000.0, attributes)
        if request.stream and timings.ttft_ms is not None:
            self._first_chunk.record(timings.ttft_ms / 1000.0, attributes)
        usage = None if response is None else response.usage
        if usage is not None:
            if usage.prompt_tokens is not None and usage.prompt_tokens >= 0:
                self._tokens.record(
                    usage.prompt_tokens, {**attributes, "gen_ai.token.type": "input"}
                )
            if usage.completion_tokens is not None and usage.completion_tokens >= 0:
                self._tokens.record(
                    usage.completion_tokens, {**attributes, "gen_ai.token.type": "output"}
                )
        self._span(exchange, attributes)

    def handle_event(self, event: ClientEvent, labels: CallLabels) -> None:
        """Count one client decision."""
        attributes: dict[str, Any] = {
            "gen_ai.operation.name": _OPERATION,
            "gen_ai.provider.name": labels.provider,
            "gen_ai.request.model": self._request_models(event.model),
            "chatcontract.event": _EVENT_NAMES.get(type(event), "client_event"),
        }
        match event:
            case RetryDecided():
                attributes["chatcontract.decision"] = event.decision
                attributes["error.type"] = event.category
            case FallbackActivated():
                attributes["error.type"] = event.category
                attributes["chatcontract.route"] = event.to_route
            case BudgetRefusal():
                attributes["chatcontract.reason"] = event.reason
            case RetrySucceeded() | DeadlineExhausted():
                attributes["chatcontract.route"] = event.route
        self._decisions.add(1, attributes)

    def _span(self, exchange: Exchange, metric_attributes: dict[str, Any]) -> None:
        trace = self._trace
        request, response, failure = exchange.request, exchange.response, exchange.failure
        attributes = dict(metric_attributes)
        # Spans are not aggregated: the raw model names are kept.
        attributes["gen_ai.request.model"] = request.model or "unknown"
        attributes["chatcontract.attempt"] = exchange.attempt
        attributes["chatcontract.route"] = exchange.route
        attributes["chatcontract.stream"] = request.stream
        if request.max_tokens is not None:
            attributes["gen_ai.request.max_tokens"] = request.max_tokens
        if response is not None:
            attributes["http.response.status_code"] = response.status
            if response.model:
                attributes["gen_ai.response.model"] = response.model
            if response.response_id:
                attributes["gen_ai.response.id"] = response.response_id
            if response.finish_reason:
                attributes["gen_ai.response.finish_reasons"] = (response.finish_reason,)
            if response.stream_verdict:
                attributes["chatcontract.stream_verdict"] = response.stream_verdict
            usage = response.usage
            if usage is not None and usage.prompt_tokens is not None:
                attributes["gen_ai.usage.input_tokens"] = usage.prompt_tokens
            if usage is not None and usage.completion_tokens is not None:
                attributes["gen_ai.usage.output_tokens"] = usage.completion_tokens
        request_id = exchange.request_id
        if request_id:
            attributes["chatcontract.request_id"] = request_id
        if failure is not None:
            attributes["chatcontract.failure.category"] = failure.category
            attributes["chatcontract.failure.code"] = failure.code
        start_ns = int(exchange.started_at * 1e9)
        span = self._tracer.start_span(
            f"{_OPERATION} {request.model}" if request.model else _OPERATION,
            kind=trace.SpanKind.CLIENT,
            attributes=attributes,
            start_time=start_ns,
        )
        if failure is not None:
            span.set_status(trace.Status(trace.StatusCode.ERROR, f"{failure.kind}/{failure.code}"))
        span.end(end_time=start_ns + int(exchange.timings.total_ms * 1e6))
