import asyncio
import dataclasses
import json
import logging
import re
import time
import warnings
from typing import Any

import httpx2
import openai
import pytest
from prometheus_client import CollectorRegistry

from chatcontract import instrumentation
from chatcontract.contract import dump, load_preset
from chatcontract.errors import ConfigError
from chatcontract.instrumentation import (
    StackedRetriesWarning,
    ainstrument,
    check_sdk_client,
    instrument,
)
from chatcontract.simulator import DELAY_HEADER, SCENARIO_HEADER
from chatcontract.telemetry import CallLabels, PrometheusSink

COMET = load_preset("cometapi")
MODEL = "gpt-4.1-nano"
MESSAGES = [{"role": "user", "content": "Reply with exactly: pong"}]
CHAT_LABELS = {"provider": "cometapi", "endpoint": "/chat/completions", "model": MODEL,
               "route": "primary"}  # fmt: skip

STACKED_MESSAGE = (
    "the openai SDK retried (x-stainless-retry-count=1) under a contract policy that also "
    "retries: set max_retries=0 on the SDK client"
)

COMPLETION = {
    "id": "chatcmpl-fixed-1",
    "object": "chat.completion",
    "created": 1_760_000_000,
    "model": "gpt-4.1-nano-2025-04-14",
    "choices": [{"index": 0, "finish_reason": "stop",
                 "message": {"role": "assistant", "content": "pong", "refusal": None}}],
    "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10},
}  # fmt: skip


def _no_retry_contract():
    policy = dataclasses.replace(
        COMET.policy, retry=dataclasses.replace(COMET.policy.retry, max_attempts=1)
    )
    return dataclasses.replace(COMET, policy=policy)


def _fixed(request: httpx2.Request) -> httpx2.Response:
    if request.url.path.endswith("/models"):
        return httpx2.Response(200, json={"object": "list", "data": []})
    return httpx2.Response(200, json=COMPLETION, headers={"x-request-id": "req-fixed-1"})


def _flaky(statuses):
    """A handler answering 429 (retry-after-ms: 1) for the given attempts, then the completion."""
    seen = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request.headers.get("x-stainless-retry-count"))
        if len(seen) <= statuses:
            body = {"error": {"message": "Rate limit reached", "type": "requests",
                              "code": "rate_limit_exceeded", "param": None}}  # fmt: skip
            return httpx2.Response(429, json=body, headers={"retry-after-ms": "1"})
        return _fixed(request)

    handler.seen = seen
    return handler


_OPEN = []


@pytest.fixture(autouse=True)
def _close_clients():
    """Every SDK client a test opens is closed after it (no socket left to the GC)."""
    yield
    while _OPEN:
        _OPEN.pop().close()


def _sdk(http_client, *, base_url="http://sim.test/v1", api_key="sk-test-key-000", **kwargs):
    sdk = openai.OpenAI(base_url=base_url, api_key=api_key, http_client=http_client, **kwargs)
    _OPEN.append(sdk)
    return sdk


def _http(client):
    _OPEN.append(client)
    return client


def _create(sdk, **kwargs):
    return sdk.chat.completions.create(model=MODEL, messages=MESSAGES, **kwargs)


# -- the SDK sees what it would have seen -----------------------------------------------------------


def test_the_sdk_parses_identical_results_with_and_without_instrument():
    plain = _create(_sdk(httpx2.Client(transport=httpx2.MockTransport(_fixed)), max_retries=0))
    http = instrument(transport=httpx2.MockTransport(_fixed), event_log=False)
    observed = _create(_sdk(http, max_retries=0))
    assert observed.model_dump() == plain.model_dump()
    assert observed.choices[0].message.content == "pong"


def test_the_sdk_parses_the_same_answer_from_the_simulator(openai_simulator):
    server = openai_simulator
    plain = _create(_sdk(httpx2.Client(), base_url=server.base_url, api_key=server.api_key))
    exchanges = []
    http = instrument(sinks=[exchanges.append], event_log=False, secrets=[server.api_key])
    observed = _create(_sdk(http, base_url=server.base_url, api_key=server.api_key))
    stable = {"id", "created", "system_fingerprint"}
    assert {k: v for k, v in observed.model_dump().items() if k not in stable} == {
        k: v for k, v in plain.model_dump().items() if k not in stable
    }
    [exchange] = exchanges
    assert exchange.ok
    assert exchange.response.response_id == observed.id


def test_a_stream_reaches_the_sdk_unchanged_and_is_watched(openai_simulator):
    server = openai_simulator

    def collect(http):
        sdk = _sdk(http, base_url=server.base_url, api_key=server.api_key)
        stream = _create(sdk, stream=True, stream_options={"include_usage": True})
        chunks = list(stream)
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        return text, chunks[-1].usage

    plain_text, plain_usage = collect(httpx2.Client())
    exchanges = []
    text, usage = collect(instrument(sinks=[exchanges.append], event_log=False))
    assert (text, usage) == (plain_text, plain_usage)
    [exchange] = exchanges
    assert exchange.ok
    assert exchange.response.stream_verdict == "complete"
    assert exchange.timings.ttft_ms is not None
    assert exchange.response.usage.completion_tokens == usage.completion_tokens


def test_a_stream_is_not_buffered_on_its_way_to_the_sdk(openai_simulator):
    server = openai_simulator
    exchanges = []
    sdk = _sdk(instrument(sinks=[exchanges.append], event_log=False),
               base_url=server.base_url, api_key=server.api_key)  # fmt: skip
    started = time.perf_counter()
    # The role chunk comes at once, the first token after 1000 ms.
    stream = _create(
        sdk, stream=True, extra_headers={SCENARIO_HEADER: "slow_first_token", DELAY_HEADER: "1000"}
    )
    arrivals = [time.perf_counter() - started for _ in stream]
    assert arrivals[-1] >= 0.95
    assert arrivals[0] < 0.5  # the SDK had the first chunk long before the stream ended
    assert exchanges[0].timings.ttft_ms >= 950


def test_a_call_is_observed_before_it_returns_to_the_sdk(openai_simulator):
    server = openai_simulator
    exchanges = []
    sdk = _sdk(instrument(sinks=[exchanges.append], event_log=False),
               base_url=server.base_url, api_key=server.api_key)  # fmt: skip
    first = _create(sdk)
    assert [e.response.response_id for e in exchanges] == [first.id]


def test_a_scrape_counts_a_call_as_soon_as_it_returned(openai_simulator):
    server = openai_simulator
    registry = CollectorRegistry()
    sdk = _sdk(instrument(registry=registry, event_log=False),
               base_url=server.base_url, api_key=server.api_key)  # fmt: skip
    _create(sdk)
    labels = {**CHAT_LABELS, "stream": "false"}
    assert registry.get_sample_value("llm_request_total", labels) == 1


# -- metering ------------------------------------------------------------------------------------


def test_sdk_calls_are_metered_on_the_given_registry(openai_simulator):
    server = openai_simulator
    registry = CollectorRegistry()
    sdk = _sdk(instrument(registry=registry, event_log=False),
               base_url=server.base_url, api_key=server.api_key, max_retries=0)  # fmt: skip
    _create(sdk)
    with pytest.raises(openai.RateLimitError):  # OpenAI's quota error is a 429
        _create(sdk, extra_headers={SCENARIO_HEADER: "quota_exhausted"})
    labels = {**CHAT_LABELS, "stream": "false"}
    assert registry.get_sample_value("llm_request_total", labels) == 2
    assert registry.get_sample_value("llm_response_schema_valid_total", labels) == 1
    errors = {**labels, "kind": "api_error", "category": "quota", "status_code": "429"}
    assert registry.get_sample_value("llm_error_total", errors) == 1
    latency = {**labels, "outcome": "success"}
    assert registry.get_sample_value("llm_latency_ms_count", latency) == 1


def test_calls_outside_the_chat_endpoint_pass_through_unobserved():
    exchanges = []
    registry = CollectorRegistry()
    http = instrument(transport=httpx2.MockTransport(_fixed), registry=registry,
                      sinks=[exchanges.append], event_log=False)  # fmt: skip
    page = _sdk(http, max_retries=0).models.list()
    assert page.data == []
    assert exchanges == []
    assert (
        registry.get_sample_value("llm_request_total", {**CHAT_LABELS, "stream": "false"}) is None
    )


def test_a_sink_that_raises_never_fails_the_call():
    def broken(exchange):
        raise RuntimeError("sink bug")

    seen = []
    http = instrument(transport=httpx2.MockTransport(_fixed), sinks=[broken, seen.append],
                      event_log=False)  # fmt: skip
    completion = _create(_sdk(http, max_retries=0))
    assert completion.choices[0].message.content == "pong"
    assert len(seen) == 1


def test_a_shared_prometheus_sink_meters_several_clients():
    registry = CollectorRegistry()
    sink = PrometheusSink(registry, contract=COMET)
    for _ in range(2):
        http = instrument(transport=httpx2.MockTransport(_fixed), sinks=[sink], event_log=False)
        _create(_sdk(http, max_retries=0))
    assert registry.get_sample_value("llm_request_total", {**CHAT_LABELS, "stream": "false"}) == 2


def test_the_event_log_records_failures_without_the_key(openai_simulator, caplog):
    server = openai_simulator
    caplog.set_level(logging.INFO, logger="chatcontract.events")
    wrong_key = "sk-wrong-key-1234567890"
    sdk = _sdk(instrument(secrets=[wrong_key], shadow_rate=0.0), base_url=server.base_url,
               api_key=wrong_key, max_retries=0)  # fmt: skip
    with pytest.raises(openai.AuthenticationError):
        _create(sdk)
    [record] = [r for r in caplog.records if r.name == "chatcontract.events"]
    assert record.levelno == logging.WARNING
    line = json.loads(record.getMessage())
    assert line["failure"]["category"] == "auth"
    assert wrong_key not in record.getMessage()
    assert "pong" not in record.getMessage()


def _event_lines(caplog):
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == "chatcontract.events"]


def test_the_shadow_log_keeps_the_shape_sampled_successes_with_their_fingerprints(caplog):
    caplog.set_level(logging.INFO, logger="chatcontract.events")
    exchanges = []
    http = instrument(transport=httpx2.MockTransport(_fixed), shadow_rate=1.0,
                      sinks=[exchanges.append])  # fmt: skip
    _create(_sdk(http, max_retries=0))
    [line] = _event_lines(caplog)
    assert line["outcome"] == "success"
    assert line["request"]["shape_fingerprint"] == exchanges[0].request.shape_fingerprint
    assert line["response"]["shape_fingerprint"]


def test_successes_outside_the_shape_sample_are_neither_fingerprinted_nor_logged(caplog):
    caplog.set_level(logging.INFO, logger="chatcontract.events")
    exchanges = []
    http = instrument(transport=httpx2.MockTransport(_fixed), shadow_rate=0.0,
                      sinks=[exchanges.append])  # fmt: skip
    _create(_sdk(http, max_retries=0))
    assert exchanges[0].ok
    assert exchanges[0].request.shape_fingerprint is None
    assert _event_lines(caplog) == []


def test_failures_are_always_fingerprinted_and_logged(caplog):
    caplog.set_level(logging.INFO, logger="chatcontract.events")
    exchanges = []
    http = instrument(transport=httpx2.MockTransport(_flaky(statuses=1)), shadow_rate=0.0,
                      sinks=[exchanges.append], contract=_no_retry_contract())  # fmt: skip
    with pytest.raises(openai.RateLimitError):
        _create(_sdk(http, max_retries=0))
    assert exchanges[0].request.shape_fingerprint is not None
    [line] = _event_lines(caplog)
    assert line["outcome"] == "failure"


def test_an_explicit_shape_rate_keeps_the_log_on_its_own_sample(caplog):
    caplog.set_level(logging.INFO, logger="chatcontract.events")
    exchanges = []
    http = instrument(transport=httpx2.MockTransport(_fixed), shadow_rate=0.0,
                      shape_sample_rate=1.0, sinks=[exchanges.append])  # fmt: skip
    _create(_sdk(http, max_retries=0))
    assert exchanges[0].request.shape_fingerprint is not None
    assert exchanges[0].response.shape_fingerprint is not None
    assert _event_lines(caplog) == []


def test_a_contract_file_names_the_labels(tmp_path):
    path = tmp_path / "chatcontract.yaml"
    path.write_text(dump(dataclasses.replace(COMET, provider="acme")), encoding="utf-8")
    registry = CollectorRegistry()
    http = instrument(contract=path, registry=registry, transport=httpx2.MockTransport(_fixed),
                      event_log=False)  # fmt: skip
    _create(_sdk(http, max_retries=0))
    labels = {**CHAT_LABELS, "provider": "acme", "stream": "false"}
    assert registry.get_sample_value("llm_request_total", labels) == 1


# -- the SDK's own retries -------------------------------------------------------------------------


def test_stacked_sdk_retries_warn_against_the_simulator(openai_simulator, caplog):
    server = openai_simulator
    exchanges = []
    sdk = _sdk(instrument(sinks=[exchanges.append], event_log=False),
               base_url=server.base_url, api_key=server.api_key, max_retries=1)  # fmt: skip
    with (
        pytest.warns(StackedRetriesWarning, match=re.escape(STACKED_MESSAGE)),
        pytest.raises(openai.RateLimitError),
    ):
        _create(sdk, extra_headers={SCENARIO_HEADER: "rate_limit"})
    assert [e.attempt for e in exchanges] == [1, 2]
    assert any("set max_retries=0" in r.getMessage() for r in caplog.records
               if r.name == "chatcontract.instrumentation")  # fmt: skip


def test_the_stacked_retries_warning_comes_once_per_client():
    handler = _flaky(statuses=2)
    sdk = _sdk(instrument(transport=httpx2.MockTransport(handler), event_log=False),
               max_retries=2)  # fmt: skip
    with pytest.warns(StackedRetriesWarning) as record:
        [_create(sdk) for _ in range(2)]
    assert handler.seen == ["0", "1", "2", "0"]
    assert len(record) == 1


def test_no_warning_when_the_contract_does_not_retry():
    sdk = _sdk(instrument(contract=_no_retry_contract(), event_log=False,
                          transport=httpx2.MockTransport(_flaky(statuses=1))),
               max_retries=1)  # fmt: skip
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        _create(sdk)
    assert [w for w in record if issubclass(w.category, StackedRetriesWarning)] == []


def test_warnings_as_errors_never_fail_the_observed_call(caplog):
    handler = _flaky(statuses=1)
    sdk = _sdk(instrument(transport=httpx2.MockTransport(handler), event_log=False),
               max_retries=1)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        completion = _create(sdk)
    assert completion.choices[0].message.content == "pong"
    assert handler.seen == ["0", "1"]  # no extra attempt caused by the warning
    assert any(r.name == "chatcontract.instrumentation" for r in caplog.records)


def test_sdk_retries_number_the_attempts_and_count_retry_success():
    registry = CollectorRegistry()
    exchanges = []
    http = instrument(contract=_no_retry_contract(), registry=registry,
                      transport=httpx2.MockTransport(_flaky(statuses=1)),
                      sinks=[exchanges.append], event_log=False)  # fmt: skip
    _create(_sdk(http, max_retries=1))
    assert [(e.attempt, e.ok) for e in exchanges] == [(1, False), (2, True)]
    assert registry.get_sample_value("llm_retry_success_total", CHAT_LABELS) == 1


# -- check_sdk_client ----------------------------------------------------------------------------


def test_check_sdk_client_flags_stacked_retries_and_a_long_timeout():
    sdk = _sdk(None, max_retries=2)
    problems = check_sdk_client(sdk, COMET)
    assert len(problems) == 2
    assert "max_retries=2" in problems[0] and "set max_retries=0" in problems[0]
    assert "600 s per attempt" in problems[1] and "timeout=" in problems[1]


def test_check_sdk_client_accepts_a_client_that_fits_the_contract():
    sdk = _sdk(None, max_retries=0, timeout=30.0)
    assert check_sdk_client(sdk, COMET) == []


def test_check_sdk_client_allows_sdk_retries_when_the_contract_does_not_retry():
    sdk = _sdk(None, max_retries=1, timeout=20.0)
    assert check_sdk_client(sdk, _no_retry_contract()) == []


def test_check_sdk_client_flags_a_client_without_timeout():
    sdk = _sdk(None, max_retries=0, timeout=None)
    [problem] = check_sdk_client(sdk, COMET)
    assert "no timeout" in problem


# -- configuration errors ------------------------------------------------------------------------


def test_a_registry_cannot_be_metered_twice_by_instrument():
    registry = CollectorRegistry()
    _http(instrument(registry=registry, event_log=False))
    with pytest.raises(ConfigError, match="PrometheusSink"):
        instrument(registry=registry, event_log=False)


def test_pool_options_with_a_custom_transport_are_refused():
    with pytest.raises(ConfigError, match="verify"):
        instrument(transport=httpx2.MockTransport(_fixed), verify=False)


def test_a_shadow_rate_without_the_event_log_is_refused():
    with pytest.raises(ConfigError, match="event_log"):
        instrument(event_log=False, shadow_rate=0.5)


@pytest.mark.parametrize(
    "kwargs",
    [{"shadow_rate": 1.5}, {"shape_sample_rate": -0.1}, {"shape_sample_rate": True}],
    ids=["shadow_above_one", "shape_negative", "shape_bool"],
)
def test_rates_outside_zero_to_one_are_refused(kwargs):
    with pytest.raises(ConfigError, match="between 0 and 1"):
        instrument(**kwargs)


def test_a_bad_contract_argument_is_refused():
    with pytest.raises(ConfigError, match="contract"):
        instrument(contract=42)


def test_a_sink_that_is_neither_sink_nor_callable_is_refused():
    with pytest.raises(ConfigError, match="sinks"):
        instrument(sinks=["not a sink"])


def test_the_client_keeps_the_sdk_defaults():
    http = _http(instrument(event_log=False))
    assert http.follow_redirects is True
    sdk = _sdk(http)
    assert sdk.timeout == openai.DEFAULT_TIMEOUT


# -- async twin ----------------------------------------------------------------------------------


def test_ainstrument_observes_the_async_sdk_like_the_sync_one(openai_simulator):
    server = openai_simulator
    sync_exchanges, async_exchanges = [], []
    http = instrument(sinks=[sync_exchanges.append], event_log=False, shape_sample_rate=1.0)
    sync_sdk = _sdk(http, base_url=server.base_url, api_key=server.api_key)
    _create(sync_sdk)
    for _ in _create(sync_sdk, stream=True, stream_options={"include_usage": True}):
        pass

    async def run():
        http = ainstrument(sinks=[async_exchanges.append], event_log=False, shape_sample_rate=1.0)
        sdk = openai.AsyncOpenAI(base_url=server.base_url, api_key=server.api_key,
                                 http_client=http)  # fmt: skip
        await sdk.chat.completions.create(model=MODEL, messages=MESSAGES)
        stream = await sdk.chat.completions.create(
            model=MODEL, messages=MESSAGES, stream=True, stream_options={"include_usage": True}
        )
        async for _ in stream:
            pass
        await sdk.close()

    asyncio.run(run())

    def facts(exchange):
        response = exchange.response
        return (exchange.request.model, exchange.request.stream, exchange.request.include_usage,
                exchange.request.shape_fingerprint, response.status, response.model,
                response.finish_reason, response.usage.total_tokens, exchange.ok)  # fmt: skip

    assert len(async_exchanges) == 2
    assert [facts(e) for e in async_exchanges] == [facts(e) for e in sync_exchanges]
    verdicts = [e.response.stream_verdict for e in (*sync_exchanges, *async_exchanges)]
    assert verdicts == [None, "complete", None, "complete"]


def test_ainstrument_counts_async_sdk_retries(caplog):
    handler = _flaky(statuses=1)
    registry = CollectorRegistry()

    async def run():
        http = ainstrument(contract=_no_retry_contract(), registry=registry, event_log=False,
                           transport=httpx2.MockTransport(handler))  # fmt: skip
        sdk = openai.AsyncOpenAI(base_url="http://sim.test/v1", api_key="sk-test-key-000",
                                 http_client=http, max_retries=1)  # fmt: skip
        completion = await sdk.chat.completions.create(model=MODEL, messages=MESSAGES)
        await sdk.close()
        return completion

    completion = asyncio.run(run())
    assert completion.choices[0].message.content == "pong"
    assert registry.get_sample_value("llm_retry_success_total", CHAT_LABELS) == 1


def test_call_labels_come_from_the_contract():
    labels = CallLabels(provider=COMET.provider, endpoint=COMET.endpoint.path)
    assert (labels.provider, labels.endpoint) == ("cometapi", "/chat/completions")


def test_a_calls_span_keeps_the_parent_it_was_made_under(openai_simulator):
    """Observation runs inline, in the caller's context."""
    pytest.importorskip("opentelemetry.sdk")
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from chatcontract.telemetry import OpenTelemetrySink

    server = openai_simulator
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("app")
    sink = OpenTelemetrySink(tracer_provider=provider)
    sdk = _sdk(instrument(sinks=[sink], event_log=False),
               base_url=server.base_url, api_key=server.api_key)  # fmt: skip
    with tracer.start_as_current_span("handler-a") as first:
        _create(sdk)
    with tracer.start_as_current_span("handler-b") as second:
        _create(sdk)
    calls = [s for s in exporter.get_finished_spans() if s.name not in ("handler-a", "handler-b")]
    parents = [s.parent.span_id for s in calls]
    assert parents == [first.get_span_context().span_id, second.get_span_context().span_id]
    provider.shutdown()


# -- a library does not print, and closes its sockets ---------------------------------------

_QUIET_APP = """
import openai
from chatcontract import instrument
from chatcontract.simulator import SimulatorServer

with SimulatorServer(flavor="cometapi", scenario="{scenario}") as server:
    sdk = openai.OpenAI(
        base_url=server.base_url, api_key=server.api_key, max_retries=0,
        http_client=instrument(),  # never closed, as in most applications
    )
    try:
        sdk.chat.completions.create(model="gpt-4.1-nano", messages={messages!r}, max_tokens=8)
    except openai.APIError as exc:
        print("failed", type(exc).__name__)
    else:
        print("answered")
    {ending}
"""


def _run_app(code, *flags):
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, *flags, "-c", code],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("scenario", "ending", "printed"),
    [
        ("ok", "del sdk; import gc; gc.collect()", "answered"),
        ("server_error", "pass", "failed"),
    ],
    ids=["success-client-collected", "failure-logged-client-left-open-at-exit"],
)
def test_an_application_without_logging_config_sees_nothing_on_stderr(scenario, ending, printed):
    # An unclosed socket is a ResourceWarning, printed to stderr under -W error.
    code = _QUIET_APP.format(scenario=scenario, messages=MESSAGES, ending=ending)
    done = _run_app(code, "-W", "error::ResourceWarning")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().startswith(printed)
    assert done.stderr == ""


def test_an_application_that_configures_logging_still_gets_the_event_log():
    code = "import logging\nlogging.basicConfig(level=logging.WARNING)\n" + _QUIET_APP.format(
        scenario="server_error", messages=MESSAGES, ending="del sdk"
    )
    done = _run_app(code)
    assert done.returncode == 0, done.stderr
    assert "WARNING:chatcontract.events:" in done.stderr
    assert '"event":"exchange"' in done.stderr


@pytest.mark.parametrize("seam", [True, False], ids=["url-seam", "no-url-seam"])
def test_only_requests_to_the_endpoint_are_observed_call_after_call(monkeypatch, seam):
    if not seam:
        monkeypatch.setattr(instrumentation, "url_key", lambda url: None)
    seen = []
    client = instrument(
        sinks=[seen.append], event_log=False, transport=httpx2.MockTransport(_fixed)
    )
    for _ in range(2):
        client.get("http://upstream.test/v1/models")
        client.post("http://upstream.test/v1/chat/completions", json={"model": MODEL})
        client.post("http://upstream.test/v1/chat/completions/?x=1", json={"model": MODEL})
    assert [e.request.url for e in seen] == [
        "http://upstream.test/v1/chat/completions",
        "http://upstream.test/v1/chat/completions/",
    ] * 2


def test_a_client_without_any_sink_still_hands_back_its_exchanges():
    client = instrument(event_log=False, transport=httpx2.MockTransport(_fixed))
    response = client.post("http://upstream.test/v1/chat/completions", json={"model": MODEL})
    exchange = response.extensions["chatcontract.exchange"]
    assert exchange.ok
    assert exchange.response.response_id == "chatcmpl-fixed-1"


def test_one_secret_given_as_a_string_is_redacted_whole():
    """``secrets="..."`` (a string, not a list) was taken as its characters, each too short
    to redact: the secret itself then reached the failure message and the event log."""
    token = "partner-token-7731"  # no credential shape: only ``secrets`` can redact it
    body = {"error": {"message": f"token {token} is not valid for this org", "type": "x"}}

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(400, json=body)

    exchanges: list[Any] = []
    http = instrument(
        transport=httpx2.MockTransport(handler),
        sinks=[exchanges.append],
        event_log=False,
        secrets=token,
    )
    with pytest.raises(openai.BadRequestError):
        _create(_sdk(http, max_retries=0))
    [exchange] = exchanges
    assert exchange.failure is not None
    assert "is not valid" in exchange.failure.message  # the provider's words are kept
    assert token not in exchange.failure.message
    assert token not in json.dumps(exchange.to_dict())


@pytest.mark.parametrize(
    ("options", "says"),
    [
        pytest.param({"secrets": [b"raw"]}, "secrets takes strings", id="bytes-secret"),
        pytest.param({"secrets": 5}, "secrets takes a list of strings", id="number-secrets"),
        pytest.param({"sinks": 5}, "sinks takes a list", id="number-sinks"),
        pytest.param(
            {"transport": httpx2.AsyncHTTPTransport()}, "takes an httpx2.BaseTransport", id="async"
        ),
    ],
)
def test_arguments_of_the_wrong_kind_are_refused(options, says):
    with pytest.raises(ConfigError, match=re.escape(says)):
        instrument(**options)


def test_ainstrument_refuses_a_sync_transport():
    with pytest.raises(ConfigError, match=re.escape("takes an httpx2.AsyncBaseTransport")):
        ainstrument(transport=httpx2.HTTPTransport())
