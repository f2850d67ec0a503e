"""``Telemetry(retry_successes=True)`` tells a success after retries it did not decide."""

import pytest
from msgspec.structs import replace

from chatcontract.telemetry import CallLabels, RetrySucceeded, Telemetry
from chatcontract.telemetry.events import ClientEvent
from chatcontract.transport import CallObserver, request_facts

LABELS = CallLabels(provider="p", endpoint="/chat/completions")
BODY = (
    b'{"id":"c1","model":"m","choices":[{"index":0,"message":{"role":"assistant",'
    b'"content":"pong"},"finish_reason":"stop"}]}'
)


class _Recorder:
    def __init__(self) -> None:
        self.exchanges: list[object] = []
        self.events: list[ClientEvent] = []

    def handle_exchange(self, exchange, labels):
        self.exchanges.append(exchange)

    def handle_event(self, event, labels):
        self.events.append(event)


def _exchange(status: int, attempt: int):
    request = request_facts("POST", "http://x/v1/chat/completions", b'{"model":"gpt-x"}', {}, None)
    observer = CallObserver(request=request, contract=None, sinks=(), attempt=attempt)
    observer.on_response(status, {"content-type": "application/json"})
    observer.on_chunk(BODY if status == 200 else b"{}")
    return observer.finish()


@pytest.mark.parametrize(
    ("status", "attempt", "told"),
    [(200, 3, True), (200, 1, False), (500, 3, False)],
    ids=["success-after-retries", "first-attempt", "failed-retry"],
)
def test_a_success_after_retries_is_told_as_an_event(status, attempt, told):
    recorder = _Recorder()
    exchange = _exchange(status, attempt)
    Telemetry([recorder], LABELS, retry_successes=True).exchange(exchange)
    assert recorder.exchanges == [exchange]
    expected = [RetrySucceeded(route="primary", model="gpt-x", attempts=3)] if told else []
    assert recorder.events == expected


def test_by_default_no_event_is_told():
    recorder = _Recorder()
    Telemetry([recorder], LABELS).exchange(_exchange(200, 3))
    assert recorder.events == []


def test_a_success_without_a_model_is_told_as_unknown():
    recorder = _Recorder()
    exchange = _exchange(200, 2)
    exchange = replace(exchange, request=replace(exchange.request, model=None))
    Telemetry([recorder], LABELS, retry_successes=True).exchange(exchange)
    assert recorder.events == [RetrySucceeded(route="primary", model="unknown", attempts=2)]
