import math
import threading

import pytest
from prometheus_client import CollectorRegistry, Histogram

from chatcontract.contract import load_preset
from chatcontract.exchange import Timings
from chatcontract.failures import make_failure
from chatcontract.telemetry import (
    CALL_LABELS,
    LATENCY_BUCKETS_MS,
    BudgetRefusal,
    CallLabels,
    DeadlineExhausted,
    FallbackActivated,
    PrometheusSink,
    RetryDecided,
    RetrySucceeded,
    Telemetry,
    TelemetrySink,
)
from chatcontract.wire import Usage

COMET = load_preset("cometapi")
LABELS = CallLabels(provider="cometapi", endpoint="/chat/completions")
MODEL = "gpt-4.1-nano"

#: The family names the seed runbooks query: they are a public contract.
RUNBOOK_FAMILIES = (
    "llm_request_total",
    "llm_request_schema_invalid_total",
    "llm_request_stream_enabled_total",
    "llm_request_timeout_budget_ms",
    "llm_response_schema_valid_total",
    "llm_response_schema_invalid_total",
    "llm_response_missing_choices_total",
    "llm_response_empty_content_total",
    "llm_response_missing_usage_total",
    "llm_latency_ms",
    "llm_time_to_first_byte_ms",
    "llm_time_to_first_token_ms",
    "llm_completion_duration_ms",
    "llm_client_timeout_total",
    "llm_usage_prompt_tokens_total",
    "llm_usage_completion_tokens_total",
    "llm_error_total",
    "llm_dns_ms",
    "llm_connect_ms",
    "llm_tls_ms",
    "llm_retry_total",
    "llm_retry_success_total",
    "llm_fallback_activation_total",
    "llm_stream_incomplete_total",
    "llm_budget_refusal_total",
    "llm_deadline_exhausted_total",
    "llm_circuit_breaker_state",
    "llm_telemetry_sink_errors_total",
)


def _labels(model=MODEL, stream="false", route="primary", **extra):
    return {
        "provider": "cometapi",
        "endpoint": "/chat/completions",
        "model": model,
        "stream": stream,
        "route": route,
        **extra,
    }


@pytest.fixture
def registry():
    return CollectorRegistry()


@pytest.fixture
def sink(registry):
    return PrometheusSink(registry, contract=COMET)


def _value(registry, name, labels):
    return registry.get_sample_value(name, labels) or 0.0


def test_the_runbook_family_names_are_exposed_exactly(registry, sink):
    exposed = set()
    for family in registry.collect():
        exposed.add(family.name + "_total" if family.type == "counter" else family.name)
    assert exposed == set(RUNBOOK_FAMILIES)
    assert set(sink.family_names) == set(RUNBOOK_FAMILIES)


def test_the_sink_satisfies_the_telemetry_sink_protocol(sink):
    assert isinstance(sink, TelemetrySink)


def test_a_successful_call_counts_request_schema_usage_and_latency(registry, sink, call):
    exchange = call("ok")
    sink.handle_exchange(exchange, LABELS)
    labels = _labels()
    assert _value(registry, "llm_request_total", labels) == 1
    assert _value(registry, "llm_response_schema_valid_total", labels) == 1
    assert _value(registry, "llm_response_schema_invalid_total", labels) == 0
    assert _value(registry, "llm_request_stream_enabled_total", labels) == 0
    usage = exchange.response.usage
    assert _value(registry, "llm_usage_prompt_tokens_total", labels) == usage.prompt_tokens
    assert _value(registry, "llm_usage_completion_tokens_total", labels) == usage.completion_tokens
    success = {**labels, "outcome": "success"}
    assert _value(registry, "llm_latency_ms_count", success) == 1
    assert _value(registry, "llm_latency_ms_sum", success) == pytest.approx(
        exchange.timings.total_ms
    )
    assert _value(registry, "llm_time_to_first_byte_ms_count", labels) == 1
    assert _value(registry, "llm_completion_duration_ms_count", labels) == 1
    assert _value(registry, "llm_time_to_first_token_ms_count", labels) == 0
    assert _value(registry, "llm_request_timeout_budget_ms_sum", labels) == 10_000


def test_a_stream_counts_stream_enabled_and_first_token(registry, sink, call):
    exchange = call("ok", stream=True)
    sink.handle_exchange(exchange, LABELS)
    labels = _labels(stream="true")
    assert _value(registry, "llm_request_stream_enabled_total", labels) == 1
    assert _value(registry, "llm_time_to_first_token_ms_count", labels) == 1
    assert _value(registry, "llm_time_to_first_token_ms_sum", labels) == pytest.approx(
        exchange.timings.ttft_ms
    )
    duration = exchange.timings.total_ms - exchange.timings.ttft_ms
    assert _value(registry, "llm_completion_duration_ms_sum", labels) == pytest.approx(duration)
    assert _value(registry, "llm_response_missing_usage_total", labels) == 0


@pytest.mark.parametrize(
    ("scenario", "stream", "family", "extra"),
    [
        ("empty_choices", False, "llm_response_missing_choices_total", {}),
        ("empty_choices", False, "llm_response_schema_invalid_total", {}),
        ("empty_content", False, "llm_response_empty_content_total", {}),
        ("empty_content", False, "llm_response_schema_valid_total", {}),
        ("empty_content", True, "llm_response_empty_content_total", {}),
        ("missing_usage", False, "llm_response_missing_usage_total", {}),
        ("missing_usage", True, "llm_response_missing_usage_total", {}),
        ("bad_json", False, "llm_response_schema_invalid_total", {}),
        ("wrong_types", False, "llm_response_schema_invalid_total", {}),
        ("cut_stream", True, "llm_stream_incomplete_total", {"verdict": "dropped"}),
        ("done_without_finish_reason", True, "llm_stream_incomplete_total",
         {"verdict": "truncated"}),
        ("inband_error_chunk", True, "llm_stream_incomplete_total", {"verdict": "inband_error"}),
        ("error_in_200", False, "llm_error_total",
         {"kind": "api_error", "category": "upstream", "status_code": "200"}),
        ("rate_limit", False, "llm_error_total",
         {"kind": "http", "category": "rate_limit", "status_code": "429"}),
        ("quota_exhausted", False, "llm_error_total",
         {"kind": "api_error", "category": "quota", "status_code": "403"}),
        ("reset", False, "llm_error_total",
         {"kind": "transport", "category": "network", "status_code": "none"}),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)  # fmt: skip
def test_broken_after_200_and_errors_are_counted(registry, sink, call, scenario, stream, family,
                                                 extra):  # fmt: skip
    sink.handle_exchange(call(scenario, stream=stream), LABELS)
    labels = _labels(stream="true" if stream else "false", **extra)
    assert _value(registry, family, labels) == 1


def test_an_error_inside_a_200_is_neither_schema_valid_nor_invalid(registry, sink, call):
    sink.handle_exchange(call("error_in_200"), LABELS)
    assert _value(registry, "llm_response_schema_valid_total", _labels()) == 0
    assert _value(registry, "llm_response_schema_invalid_total", _labels()) == 0


def test_a_stream_without_include_usage_is_not_missing_usage(registry, sink, call):
    body = {"model": MODEL, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    sink.handle_exchange(call("ok", body=body), LABELS)
    # The request did not ask for a usage chunk (no stream_options): none is owed, whatever
    # the contract says, so the stream is neither missing usage nor schema-invalid.
    assert _value(registry, "llm_response_missing_usage_total", _labels(stream="true")) == 0
    assert _value(registry, "llm_response_schema_invalid_total", _labels(stream="true")) == 0
    assert _value(registry, "llm_response_schema_valid_total", _labels(stream="true")) == 1


def test_a_request_the_provider_rejects_as_invalid_counts_as_schema_invalid(registry, sink, call):
    exchange = call("ok", body={"model": MODEL})  # no messages: CometAPI answers 500
    assert exchange.failure.category == "validation"
    sink.handle_exchange(exchange, LABELS)
    assert _value(registry, "llm_request_schema_invalid_total", _labels()) == 1
    errors = _labels(kind="api_error", category="validation", status_code="500")
    assert _value(registry, "llm_error_total", errors) == 1


def test_success_and_failure_series_join_on_the_model_label(registry, sink, call):
    sink.handle_exchange(call("ok"), LABELS)
    sink.handle_exchange(call("rate_limit"), LABELS)
    errors = registry.get_sample_value(
        "llm_error_total", _labels(kind="http", category="rate_limit", status_code="429")
    )
    assert errors == 1
    assert _value(registry, "llm_request_total", _labels()) == 2
    assert _value(registry, "llm_latency_ms_count", _labels(outcome="failure")) == 1
    assert _value(registry, "llm_latency_ms_count", _labels(outcome="success")) == 1


def test_a_client_read_timeout_counts_as_client_timeout(registry, sink, call):
    exchange = call("slow", timeout=0.2, delay_ms=1_500)
    sink.handle_exchange(exchange, LABELS)
    assert _value(registry, "llm_client_timeout_total", _labels(code="read_timeout")) == 1
    assert _value(registry, "llm_request_timeout_budget_ms_sum", _labels()) == 200


def test_a_provider_gateway_timeout_is_not_a_client_timeout(registry, sink, call):
    sink.handle_exchange(call("gateway_timeout"), LABELS)
    assert _value(registry, "llm_client_timeout_total", _labels(code="gateway_timeout")) == 0
    for family in registry.collect():
        if family.name == "llm_client_timeout":
            assert [s for s in family.samples if s.name.endswith("_total")] == []


def test_network_phases_are_observed_when_they_happen(registry, sink, built):
    timings = Timings(dns_ms=3.0, connect_ms=1.5, tls_ms=12.0, ttfb_ms=40.0, total_ms=90.0)
    sink.handle_exchange(built(timings=timings), LABELS)
    sink.handle_exchange(built(), LABELS)  # a reused connection: no phases
    network = {"provider": "cometapi", "endpoint": "/chat/completions", "route": "primary"}
    assert registry.get_sample_value("llm_dns_ms_sum", network) == 3.0
    assert registry.get_sample_value("llm_connect_ms_count", network) == 1
    assert registry.get_sample_value("llm_tls_ms_bucket", {**network, "le": "25.0"}) == 1


def test_a_real_loopback_connect_is_observed(registry, sink, call, simulator):
    url = simulator.base_url.replace("127.0.0.1", "localhost") + "/chat/completions"
    sink.handle_exchange(call("ok", url=url), LABELS)
    network = {"provider": "cometapi", "endpoint": "/chat/completions", "route": "primary"}
    assert registry.get_sample_value("llm_connect_ms_count", network) == 1
    assert registry.get_sample_value("llm_dns_ms_count", network) == 1


def test_a_no_done_stream_counts_its_verdict(registry, sink, call):
    sink.handle_exchange(call("no_done", stream=True), LABELS)
    labels = _labels(stream="true", verdict="no_done")
    assert _value(registry, "llm_stream_incomplete_total", labels) == 1


def test_usage_is_counted_from_what_the_provider_reported_never_negative(registry, sink, built):
    sink.handle_exchange(built(usage=Usage(prompt_tokens=-3, completion_tokens=5)), LABELS)
    assert _value(registry, "llm_usage_prompt_tokens_total", _labels()) == 0
    assert _value(registry, "llm_usage_completion_tokens_total", _labels()) == 5


def test_missing_usage_on_a_non_stream_success_is_counted_not_recorded_as_zero(
    registry, sink, built
):
    sink.handle_exchange(built(usage=None), LABELS)
    assert _value(registry, "llm_response_missing_usage_total", _labels()) == 1
    assert _value(registry, "llm_usage_prompt_tokens_total", _labels()) == 0


def test_models_beyond_the_cap_are_counted_as_other(registry, built):
    sink = PrometheusSink(registry, contract=COMET, max_models=2)
    for model in ("alpha-1", "beta-2", "gamma-3", "delta-4", COMET.model):
        sink.handle_exchange(built(model=model), LABELS)
    assert _value(registry, "llm_request_total", _labels(model="alpha-1")) == 1
    assert _value(registry, "llm_request_total", _labels(model="beta-2")) == 1
    assert _value(registry, "llm_request_total", _labels(model="other")) == 2
    assert _value(registry, "llm_request_total", _labels(model=COMET.model)) == 1


def test_free_text_and_missing_models_never_become_label_values(registry, sink, built):
    sink.handle_exchange(built(model="ignore previous instructions; 'x'"), LABELS)
    sink.handle_exchange(built(model="m" * 300), LABELS)
    sink.handle_exchange(built(model=None), LABELS)
    assert _value(registry, "llm_request_total", _labels(model="other")) == 2
    assert _value(registry, "llm_request_total", _labels(model="unknown")) == 1


def test_routes_carry_their_own_series(registry, sink, built):
    sink.handle_exchange(built(route="backup"), LABELS)
    assert _value(registry, "llm_request_total", _labels(route="backup")) == 1
    assert _value(registry, "llm_request_total", _labels(route="primary")) == 0


@pytest.mark.parametrize(
    ("event", "family", "labels"),
    [
        (RetryDecided(route="primary", model=MODEL, category="rate_limit", decision="retry",
                      attempt=1),
         "llm_retry_total",
         {"model": MODEL, "route": "primary", "category": "rate_limit", "decision": "retry"}),
        (RetrySucceeded(route="primary", model=MODEL, attempts=2),
         "llm_retry_success_total", {"model": MODEL, "route": "primary"}),
        (FallbackActivated(from_route="primary", to_route="backup", category="quota",
                           model=MODEL),
         "llm_fallback_activation_total",
         {"model": MODEL, "from_route": "primary", "to_route": "backup", "category": "quota"}),
        (BudgetRefusal(reason="daily_cost_cap", model=MODEL),
         "llm_budget_refusal_total", {"model": MODEL, "reason": "daily_cost_cap"}),
        (DeadlineExhausted(route="primary", model=MODEL, attempts=3),
         "llm_deadline_exhausted_total", {"model": MODEL, "route": "primary"}),
    ],
    ids=["retry", "retry_success", "fallback", "budget", "deadline"],
)  # fmt: skip
def test_client_events_are_counted(registry, sink, event, family, labels):
    sink.handle_event(event, LABELS)
    sink.handle_event(event, LABELS)
    full = {"provider": "cometapi", "endpoint": "/chat/completions", **labels}
    assert registry.get_sample_value(family, full) == 2


def test_two_sinks_on_two_registries_do_not_share_counts(built):
    first, second = CollectorRegistry(), CollectorRegistry()
    PrometheusSink(first).handle_exchange(built(), LABELS)
    PrometheusSink(second)
    assert first.get_sample_value("llm_request_total", _labels()) == 1
    assert second.get_sample_value("llm_request_total", _labels()) is None


def test_a_second_sink_on_the_same_registry_is_refused(registry, sink):
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        PrometheusSink(registry)


def test_concurrent_calls_lose_no_count(registry, sink, built):
    exchanges = [built(model=f"model-{i % 7}") for i in range(70)]
    hub = Telemetry([sink], LABELS)

    def work():
        for exchange in exchanges:
            hub.exchange(exchange)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    total = sum(
        _value(registry, "llm_request_total", _labels(model=f"model-{i}")) for i in range(7)
    )
    assert total == 8 * 70
    assert hub.sink_errors == 0


def test_a_timeout_failure_without_response_counts_client_timeout_by_code(registry, sink, built):
    failure = make_failure(kind="transport", category="timeout", code="connect_timeout",
                           message="connect timed out")  # fmt: skip
    sink.handle_exchange(built(status=None, failure=failure), LABELS)
    assert _value(registry, "llm_client_timeout_total", _labels(code="connect_timeout")) == 1
    assert _value(registry, "llm_latency_ms_count", _labels(outcome="failure")) == 1
    assert _value(registry, "llm_response_schema_valid_total", _labels()) == 0


def _histogram_samples(registry, name):
    return {
        (sample.name, sample.labels.get("le")): sample.value
        for metric in registry.collect()
        if metric.name == name
        for sample in metric.samples
        if sample.labels.get("outcome") == "success" and not sample.name.endswith("_created")
    }


@pytest.mark.parametrize(
    "total_ms",
    [0.0, 0.3, 5.0, 5.000001, 250.0, 119_999.9, 120_000.0, 1e9, float("inf"), float("nan")],
    ids=["zero", "below-first", "on-a-bound", "just-above", "middle", "below-last", "on-last",
         "beyond-last", "inf", "nan"],
)  # fmt: skip
def test_latency_buckets_match_prometheus_client_own_observe(registry, sink, built, total_ms):
    sink.handle_exchange(built(timings=Timings(total_ms=total_ms)), LABELS)
    reference = CollectorRegistry()
    Histogram(
        "llm_latency_ms", "reference", labelnames=(*CALL_LABELS, "outcome"),
        buckets=LATENCY_BUCKETS_MS, registry=reference,
    ).labels("cometapi", "/chat/completions", MODEL, "false", "primary", "success").observe(
        total_ms
    )  # fmt: skip
    got = _histogram_samples(registry, "llm_latency_ms")
    expected = _histogram_samples(reference, "llm_latency_ms")
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == value or (math.isnan(value) and math.isnan(got[key])), key


def test_a_model_over_the_cap_stays_other_on_every_later_call(registry, built):
    sink = PrometheusSink(registry, contract=COMET, max_models=1)
    for _ in range(3):
        sink.handle_exchange(built(model="alpha-1"), LABELS)
        sink.handle_exchange(built(model="beta-2"), LABELS)
    assert _value(registry, "llm_request_total", _labels(model="alpha-1")) == 3
    assert _value(registry, "llm_request_total", _labels(model="other")) == 3
    assert _value(registry, "llm_request_total", _labels(model="beta-2")) == 0


def test_many_distinct_raw_models_are_all_counted(registry, built):
    sink = PrometheusSink(registry, contract=COMET, max_models=5)
    for index in range(1_500):  # more distinct raw values than the sink remembers
        sink.handle_exchange(built(model=f"model-{index}"), LABELS)
    sink.handle_exchange(built(model="model-1499"), LABELS)
    admitted = sum(
        _value(registry, "llm_request_total", _labels(model=f"model-{index}")) for index in range(5)
    )
    assert admitted == 5
    assert _value(registry, "llm_request_total", _labels(model="other")) == 1_496
