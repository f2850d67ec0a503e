"""How a ``CallObserver`` hands its Exchange out: redacted or not, into the request's and the
response's extensions, to sinks that may raise, marked when the connection was replaced."""

import pytest
from msgspec.structs import replace

from chatcontract.exchange import Exchange
from chatcontract.transport.observer import (
    EXCHANGE_EXTENSION,
    STREAM_EXTENSION,
    CallObserver,
    request_facts,
)

URL = "http://127.0.0.1/v1/chat/completions"
KEY = "sk-test-0123456789abcdef"
CLEAN = (
    b'{"id":"c1","model":"m","choices":[{"index":0,"message":{"role":"assistant",'
    b'"content":"pong"},"finish_reason":"stop"}]}'
)
LEAKY = CLEAN.replace(b'"id":"c1"', b'"id":"' + KEY.encode() + b'"')
STREAM = (
    b'data: {"id":"c1","model":"m","choices":[{"index":0,"delta":{"content":"po"},'
    b'"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'
)


def _observer(**options):
    request = request_facts("POST", URL, b"", {}, None)
    return CallObserver(request=request, contract=None, secrets=(KEY,), **options)


def _finish(observer, body, status=200):
    observer.on_response(status, {"content-type": "application/json", "x-request-id": "r1"})
    observer.on_chunk(body)
    return observer.finish()


@pytest.mark.parametrize(
    ("body", "status"), [(CLEAN, 200), (LEAKY, 200), (b"{}", 500)], ids=["clean", "leaky", "failed"]
)
def test_a_redacting_observer_hands_out_what_exchange_redacted_gives(body, status):
    plain = _finish(_observer(sinks=()), body, status)
    seen = []
    redacted = _finish(_observer(sinks=(seen.append,), redact=True), body, status)
    expected = replace(
        plain.redacted((KEY,)), started_at=redacted.started_at, timings=redacted.timings
    )
    assert redacted == expected
    assert seen == [redacted]
    assert KEY not in repr(redacted)


def test_without_redact_the_exchange_keeps_what_came():
    exchange = _finish(_observer(sinks=()), LEAKY)
    assert exchange.response.response_id == KEY


def test_a_clean_success_is_handed_out_as_built():
    exchange = _finish(_observer(sinks=(), redact=True), CLEAN)
    assert exchange.response.response_id == "c1"
    assert exchange.redacted((KEY,)) is exchange


def test_the_exchange_is_left_in_the_home_and_in_each_response_extensions():
    home, early, late = {}, {}, {}
    observer = _observer(sinks=(), home=home)
    observer.hand_back_in(early)  # before the end: filled when the Exchange is made
    exchange = _finish(observer, CLEAN)
    observer.hand_back_in(late)  # after it: filled at once
    assert home[EXCHANGE_EXTENSION] is exchange
    assert early == {EXCHANGE_EXTENSION: exchange}
    assert late == {EXCHANGE_EXTENSION: exchange}


def test_a_streams_parser_is_handed_back_with_the_response():
    observer = _observer(sinks=())
    observer.on_response(200, {"content-type": "text/event-stream"})
    extensions = {}
    observer.hand_back_in(extensions)
    assert extensions[STREAM_EXTENSION] is observer.stream
    observer.on_chunk(STREAM)
    exchange = observer.finish()
    assert extensions[EXCHANGE_EXTENSION] is exchange
    assert exchange.response.stream_verdict == "complete"


def test_a_raising_sink_is_reported_and_the_others_still_run():
    errors, seen = [], []

    def broken(exchange: Exchange) -> None:
        raise RuntimeError("sink down")

    observer = _observer(
        sinks=(broken, seen.append), on_sink_error=lambda sink, exc: errors.append((sink, exc))
    )
    exchange = _finish(observer, CLEAN)
    assert seen == [exchange]
    assert [(sink, type(exc)) for sink, exc in errors] == [(broken, RuntimeError)]


def test_without_an_error_handler_a_raising_sink_raises():
    def broken(exchange: Exchange) -> None:
        raise RuntimeError("sink down")

    with pytest.raises(RuntimeError, match="sink down"):
        _finish(_observer(sinks=(broken,)), CLEAN)


@pytest.mark.parametrize("replaced", [False, True], ids=["same-connection", "replaced"])
def test_a_replaced_connection_is_marked_in_the_exchange(replaced):
    observer = _observer(sinks=())
    observer.clock.sent = True
    if replaced:
        observer.connection_replaced()
    assert observer.clock.sent is not replaced  # the send is timed anew
    assert _finish(observer, CLEAN).stale_connection_replaced is replaced
