"""A telemetry sink that raises never fails the caller's request: it is skipped, its first
error is logged once, and every error is counted (``llm_telemetry_sink_errors_total``)."""

from __future__ import annotations

import logging

import httpx2
import pytest
from prometheus_client import CollectorRegistry

from chatcontract import instrument
from chatcontract.client import ChatClient
from chatcontract.contract import load_preset
from chatcontract.telemetry import CallLabels, PrometheusSink, RetryDecided, Telemetry
from chatcontract.transport import InstrumentedTransport

COMET = load_preset("cometapi")
LABELS = CallLabels(provider="cometapi", endpoint="/chat/completions")
MODEL = "gpt-4.1-nano"
PONG = [{"role": "user", "content": "Reply with exactly: pong"}]
COMPLETION = (
    b'{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4.1-nano",'
    b'"choices":[{"index":0,"message":{"role":"assistant","content":"pong"},'
    b'"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}'
)


class BrokenSink:
    """A TelemetrySink whose exporter is down."""

    def __init__(self) -> None:
        self.calls = 0

    def handle_exchange(self, exchange, labels):
        self.calls += 1
        raise ConnectionError("collector unreachable")

    def handle_event(self, event, labels):
        self.calls += 1
        raise RuntimeError("collector unreachable")


def broken_callback(exchange):
    raise ValueError("bug in a user's sink")


def _mock():
    return httpx2.MockTransport(
        lambda request: httpx2.Response(
            200, headers={"content-type": "application/json"}, content=COMPLETION
        )
    )


def _sink_errors(registry, sink):
    labels = {"provider": "cometapi", "endpoint": "/chat/completions", "sink": sink}
    return registry.get_sample_value("llm_telemetry_sink_errors_total", labels) or 0.0


def _warnings(caplog):
    return [r for r in caplog.records if r.levelno == logging.WARNING and "raised" in r.message]


def test_a_raising_sink_never_fails_a_chat_client_call(caplog):
    registry = CollectorRegistry()
    broken = BrokenSink()
    sinks = [broken, PrometheusSink(registry, contract=COMET)]
    with ChatClient.from_contract(
        COMET, environ={"COMETAPI_KEY": "sk-test-0001"}, transport=_mock(), telemetry_sinks=sinks
    ) as client:
        results = [client.complete(PONG, max_tokens=16) for _ in range(3)]
    assert [r.content for r in results] == ["pong"] * 3
    assert broken.calls == 3
    assert _sink_errors(registry, "BrokenSink") == 3
    calls = {"provider": "cometapi", "endpoint": "/chat/completions", "model": MODEL,
             "stream": "false", "route": "primary"}  # fmt: skip
    assert registry.get_sample_value("llm_request_total", calls) == 3
    [warning] = _warnings(caplog)
    assert "BrokenSink" in warning.message
    assert "ConnectionError" in warning.message
    assert "collector unreachable" not in warning.message  # the type only, never the text


def test_a_raising_sink_is_counted_for_client_events_too():
    registry = CollectorRegistry()
    hub = Telemetry([BrokenSink(), PrometheusSink(registry, contract=COMET)], LABELS)
    event = RetryDecided(
        route="primary", model=MODEL, category="upstream", decision="retry", attempt=1
    )
    hub.event(event)
    hub.event(event)
    assert hub.sink_errors == 2
    assert _sink_errors(registry, "BrokenSink") == 2


def test_a_raising_plain_sink_never_fails_the_transport(caplog):
    transport = InstrumentedTransport(contract=COMET, sinks=[broken_callback], inner=_mock())
    with httpx2.Client(transport=transport) as client:
        statuses = [
            client.post("http://provider.test/v1/chat/completions", json={}).status_code
            for _ in range(2)
        ]
    assert statuses == [200, 200]
    assert transport.sink_errors == 2
    [warning] = _warnings(caplog)
    assert "broken_callback" in warning.message


def test_instrument_meters_a_raising_sink_and_the_sdk_call_goes_on(caplog):
    registry = CollectorRegistry()
    with instrument(
        contract=COMET, registry=registry, sinks=[broken_callback], transport=_mock()
    ) as client:
        response = client.post("http://provider.test/v1/chat/completions", json={})
    assert response.status_code == 200
    assert _sink_errors(registry, "broken_callback") == 1
    assert len(_warnings(caplog)) == 1


@pytest.mark.parametrize("calls", [1, 5], ids=["once", "five-times"])
def test_each_failing_sink_is_logged_once_however_often_it_fails(caplog, calls):
    hub = Telemetry([BrokenSink(), BrokenSink()], LABELS)
    event = RetryDecided(route="primary", model=MODEL, category="upstream", decision="retry",
                         attempt=1)  # fmt: skip
    for _ in range(calls):
        hub.event(event)
    assert hub.sink_errors == 2 * calls
    assert len(_warnings(caplog)) == 2
