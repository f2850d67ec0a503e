import sys

import msgspec
import pytest
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from chatcontract.errors import ConfigError
from chatcontract.failures import make_failure
from chatcontract.telemetry import (
    BudgetRefusal,
    CallLabels,
    OpenTelemetrySink,
    RetryDecided,
    TelemetrySink,
)
from chatcontract.wire import Usage

LABELS = CallLabels(provider="cometapi", endpoint="/chat/completions")
MODEL = "gpt-4.1-nano"


@pytest.fixture
def otel():
    reader = InMemoryMetricReader()
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    meter_provider = MeterProvider(metric_readers=[reader])
    sink = OpenTelemetrySink(meter_provider=meter_provider, tracer_provider=tracer_provider)
    yield sink, reader, exporter
    meter_provider.shutdown()
    tracer_provider.shutdown()


def _points(reader, name):
    data = reader.get_metrics_data()
    points = []
    for resource in data.resource_metrics if data else ():
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                if metric.name == name:
                    points.extend(metric.data.data_points)
    return points


def test_the_sink_satisfies_the_telemetry_sink_protocol(otel):
    assert isinstance(otel[0], TelemetrySink)


def test_a_call_records_duration_with_genai_attributes(otel, call):
    sink, reader, _ = otel
    exchange = call("ok")
    sink.handle_exchange(exchange, LABELS)
    [point] = _points(reader, "gen_ai.client.operation.duration")
    attributes = dict(point.attributes)
    assert attributes["gen_ai.operation.name"] == "chat"
    assert attributes["gen_ai.provider.name"] == "cometapi"
    assert attributes["gen_ai.request.model"] == MODEL
    assert attributes["gen_ai.response.model"] == exchange.response.model
    assert attributes["server.address"] == "127.0.0.1"
    assert "error.type" not in attributes
    assert point.count == 1
    assert point.sum == pytest.approx(exchange.timings.total_ms / 1000.0)


def test_token_usage_is_recorded_per_token_type(otel, call):
    sink, reader, _ = otel
    exchange = call("ok")
    sink.handle_exchange(exchange, LABELS)
    by_type = {
        point.attributes["gen_ai.token.type"]: point.sum
        for point in _points(reader, "gen_ai.client.token.usage")
    }
    usage = exchange.response.usage
    assert by_type == {"input": usage.prompt_tokens, "output": usage.completion_tokens}


def test_a_stream_records_time_to_first_chunk(otel, call):
    sink, reader, _ = otel
    exchange = call("ok", stream=True)
    sink.handle_exchange(exchange, LABELS)
    [point] = _points(reader, "gen_ai.client.operation.time_to_first_chunk")
    assert point.sum == pytest.approx(exchange.timings.ttft_ms / 1000.0)


def test_a_non_stream_call_records_no_time_to_first_chunk(otel, call):
    sink, reader, _ = otel
    sink.handle_exchange(call("ok"), LABELS)
    assert _points(reader, "gen_ai.client.operation.time_to_first_chunk") == []


def test_a_failure_sets_error_type_on_the_metrics(otel, call):
    sink, reader, _ = otel
    sink.handle_exchange(call("quota_exhausted"), LABELS)
    [point] = _points(reader, "gen_ai.client.operation.duration")
    assert point.attributes["error.type"] == "quota"
    assert point.attributes["chatcontract.failure.kind"] == "api_error"


def test_a_call_the_caller_closed_is_told_apart_on_the_metrics_and_the_span(otel, call):
    sink, reader, exporter = otel
    sink.handle_exchange(call("ok"), LABELS)
    closed = msgspec.structs.replace(call("ok", stream=True), closed_by_caller=True)
    sink.handle_exchange(closed, LABELS)
    points = _points(reader, "gen_ai.client.operation.duration")
    flags = sorted(point.attributes.get("chatcontract.closed_by_caller", False) for point in points)
    assert flags == [False, True]  # a caller's own stop is not mixed into the durations
    assert [span.attributes.get("chatcontract.closed_by_caller") for span in
            exporter.get_finished_spans()] == [None, True]  # fmt: skip
    assert all("error.type" not in point.attributes for point in points)


def test_each_attempt_is_a_client_span_timed_from_the_exchange(otel, built):
    sink, _, exporter = otel
    exchange = built(attempt=2, route="backup", usage=Usage(prompt_tokens=7, completion_tokens=3))
    sink.handle_exchange(exchange, LABELS)
    [span] = exporter.get_finished_spans()
    assert span.name == f"chat {MODEL}"
    assert span.kind is SpanKind.CLIENT
    assert span.start_time == int(exchange.started_at * 1e9)
    assert span.end_time - span.start_time == pytest.approx(120e6, abs=1)
    attributes = dict(span.attributes)
    assert attributes["chatcontract.attempt"] == 2
    assert attributes["chatcontract.route"] == "backup"
    assert attributes["gen_ai.response.finish_reasons"] == ("stop",)
    assert attributes["gen_ai.usage.input_tokens"] == 7
    assert attributes["gen_ai.usage.output_tokens"] == 3
    assert attributes["server.address"] == "api.example.test"
    assert attributes["server.port"] == 8443
    assert span.status.status_code is StatusCode.UNSET


def test_a_failed_attempt_span_has_error_status(otel, call):
    sink, _, exporter = otel
    exchange = call("rate_limit")
    sink.handle_exchange(exchange, LABELS)
    [span] = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert span.attributes["error.type"] == "rate_limit"
    assert span.attributes["chatcontract.failure.code"] == exchange.failure.code
    assert span.attributes["http.response.status_code"] == 429


def test_a_transport_failure_span_has_no_response_attributes(otel, built):
    sink, _, exporter = otel
    failure = make_failure(kind="transport", category="network", code="reset", message="reset")
    sink.handle_exchange(built(status=None, failure=failure), LABELS)
    [span] = exporter.get_finished_spans()
    assert "http.response.status_code" not in span.attributes
    assert span.attributes["error.type"] == "network"


def test_client_decisions_are_counted(otel):
    sink, reader, _ = otel
    event = RetryDecided(route="primary", model=MODEL, category="upstream", decision="retry",
                         attempt=1)  # fmt: skip
    sink.handle_event(event, LABELS)
    sink.handle_event(BudgetRefusal(reason="kill_switch", model=MODEL), LABELS)
    points = _points(reader, "chatcontract.client.decisions")
    by_event = {point.attributes["chatcontract.event"]: point for point in points}
    assert by_event["retry_decided"].value == 1
    assert by_event["retry_decided"].attributes["chatcontract.decision"] == "retry"
    assert by_event["budget_refusal"].attributes["chatcontract.reason"] == "kill_switch"


def test_metric_model_attributes_are_bounded_but_spans_keep_the_name(otel, built):
    sink, reader, exporter = otel
    sink.handle_exchange(built(model="not a model name!"), LABELS)
    [point] = _points(reader, "gen_ai.client.operation.duration")
    assert point.attributes["gen_ai.request.model"] == "other"
    [span] = exporter.get_finished_spans()
    assert span.attributes["gen_ai.request.model"] == "not a model name!"


def test_without_the_extra_the_sink_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "opentelemetry", None)
    with pytest.raises(ConfigError, match=r"pip install 'chatcontract\[otel\]'"):
        OpenTelemetrySink()
