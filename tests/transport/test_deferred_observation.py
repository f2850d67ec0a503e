"""Deferred observation (``defer=True``): Exchanges built off the critical path are the ones an
inline observer builds; they reach the sinks in the next wait window, by the janitor, or on
``flush()``; failures, mocks, long streams and a full queue are observed inline."""

import asyncio
import logging
import socket
import threading
import time

import httpx2
import orjson
import pytest

import chatcontract
import chatcontract.transport
from chatcontract.contract import load_preset
from chatcontract.simulator import DEFAULT_API_KEY
from chatcontract.transport import (
    AsyncInstrumentedTransport,
    CallObserver,
    DeferredCall,
    InstrumentedTransport,
    flush,
    request_facts,
)
from chatcontract.transport import deferred as deferred_module
from chatcontract.transport._pending import PENDING

COMET = load_preset("cometapi")
SECRET = DEFAULT_API_KEY
SCENARIO_HEADER = "X-Chatcontract-Scenario"
BODY = {
    "model": "gpt-4.1-nano",
    "max_tokens": 16,
    "messages": [{"role": "user", "content": "Reply with exactly: pong"}],
}
STREAM_BODY = {**BODY, "stream": True, "stream_options": {"include_usage": True}}
AUTH = {"Authorization": f"Bearer {SECRET}"}
REQUEST_ID = "x-oneapi-request-id"

COMPLETION = {
    "id": "chatcmpl-mock",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "gpt-4.1-nano-2025-04-14",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "pong"},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 12, "completion_tokens": 1, "total_tokens": 13},
}


@pytest.fixture(autouse=True)
def _empty_queue():
    """Every test starts and ends with no deferred call pending (nothing leaks across tests)."""
    flush()
    yield
    flush()
    assert len(PENDING) == 0


@pytest.fixture
def slow_janitor(monkeypatch):
    """The janitor waits 1 s instead of 0.25 s: only the code under test completes calls.

    (1 s, not more: the janitor sleeps MAX_DELAY_S per loop, and a later test relies on it
    being back on its 0.25 s cycle within its 3 s bound.)
    """
    monkeypatch.setattr(deferred_module, "MAX_DELAY_S", 1.0)


def _url(simulator):
    return simulator.base_url + "/chat/completions"


def _headers(scenario=None, key=SECRET):
    headers = {"Authorization": f"Bearer {key}"}
    if scenario:
        headers[SCENARIO_HEADER] = scenario
    return headers


def _transport(exchanges, *, defer, **kwargs):
    return InstrumentedTransport(
        contract=COMET, sinks=[exchanges.append], secrets=[SECRET], defer=defer, **kwargs
    )


def _read(client, url, body, headers):
    """Send and read the whole body; returns how many bytes came (a cut stream raises
    mid-read: swallowed)."""
    received = 0
    try:
        with client.stream("POST", url, json=body, headers=headers) as response:
            for chunk in response.iter_raw():
                received += len(chunk)
    except httpx2.HTTPError:
        pass
    return received


def _comparable(exchange):
    """``to_dict()`` without what differs per call: timestamps, durations and ids."""
    data = exchange.to_dict()
    data.pop("started_at")
    timings = data.pop("timings")
    # Which phases were measured must match (the recorded clock was handed over).
    data["timings_present"] = {name: value is not None for name, value in timings.items()}
    response = data["response"]
    if response is not None:
        response["request_ids"] = sorted(response["request_ids"])
        response["response_id"] = response["response_id"] is not None
        # error bodies quote the request id, whose length varies: checked per call instead
        response.pop("body_bytes")
    failure = data["failure"]
    if failure is not None:
        request_id = failure["request_id"]
        if request_id:
            failure["message"] = failure["message"].replace(request_id, "<request-id>")
        failure["request_id"] = request_id is not None
    return data


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _factory(sinks):
    """A DeferredCall factory as the transport's: the subject is the request body sent."""
    built = []

    def build(subject, clock, started_at):
        facts = request_facts("POST", "http://127.0.0.1:1/v1/chat/completions", subject, {}, None)
        observer = CallObserver(
            request=facts,
            contract=COMET,
            sinks=tuple(sinks),
            clock=clock,
            started_at=started_at,
        )
        built.append(observer)
        return observer

    return build, built


def _sse(*docs):
    return b"".join(b"data: " + orjson.dumps(doc) + b"\n\n" for doc in docs) + b"data: [DONE]\n\n"


def _chunk(delta, finish_reason=None):
    return {
        "id": "chatcmpl-unit",
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": "gpt-4.1-nano-2025-04-14",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
    }


SSE_BODY = _sse(
    _chunk({"role": "assistant", "content": ""}),
    _chunk({"content": "pong"}),
    _chunk({}, "stop"),
)
SSE_HEADERS = {"content-type": "text/event-stream"}


# -- 1. equivalence ---------------------------------------------------------------------------

CASES = [
    # id, body, scenario, key, deferred (a 2xx that ends normally waits for flush)
    ("plain", BODY, None, SECRET, True),
    ("stream_usage", STREAM_BODY, None, SECRET, True),
    ("cut_stream", STREAM_BODY, "cut_stream", SECRET, False),
    ("server_error_500", BODY, "server_error", SECRET, False),
    ("wrong_key_401", BODY, None, "sk-wrong-key-0000", False),
    ("bad_json_200", BODY, "bad_json", SECRET, True),
]


@pytest.mark.parametrize(
    ("body", "scenario", "key", "waits"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_a_deferred_exchange_equals_the_inline_one(
    simulator, slow_janitor, body, scenario, key, waits
):
    inline, deferred = [], []
    headers = _headers(scenario, key)
    with httpx2.Client(transport=_transport(inline, defer=False), timeout=10) as client:
        inline_bytes = _read(client, _url(simulator), body, headers)
    assert len(inline) == 1
    with httpx2.Client(transport=_transport(deferred, defer=True), timeout=10) as client:
        deferred_bytes = _read(client, _url(simulator), body, headers)
        assert len(deferred) == (0 if waits else 1)  # failures are observed at once
        assert flush() == (1 if waits else 0)
    [expected], [got] = inline, deferred
    assert _comparable(got) == _comparable(expected)
    assert expected.response.body_bytes == inline_bytes > 0
    assert got.response.body_bytes == deferred_bytes
    # the facts named in the contract of the feature, spelled out
    if expected.failure is not None:
        assert (got.failure.kind, got.failure.category, got.failure.code) == (
            expected.failure.kind,
            expected.failure.category,
            expected.failure.code,
        )
    assert got.request == expected.request
    if scenario is None and key == SECRET:
        assert got.ok
        assert got.response.usage == expected.response.usage is not None
        assert got.response.content_chars == expected.response.content_chars > 0
        assert got.response.shape_fingerprint == expected.response.shape_fingerprint is not None


def test_an_async_deferred_stream_equals_the_inline_one(simulator, slow_janitor):
    inline, deferred = [], []

    async def go(exchanges, defer):
        transport = AsyncInstrumentedTransport(
            contract=COMET, sinks=[exchanges.append], secrets=[SECRET], defer=defer
        )
        async with httpx2.AsyncClient(transport=transport, timeout=10) as client:
            async with client.stream(
                "POST", _url(simulator), json=STREAM_BODY, headers=AUTH
            ) as response:
                async for _ in response.aiter_bytes():
                    pass
            pending = len(exchanges)
            completed = flush()
        return pending, completed

    assert asyncio.run(go(inline, False)) == (1, 0)
    assert asyncio.run(go(deferred, True)) == (0, 1)
    assert _comparable(deferred[0]) == _comparable(inline[0])
    assert deferred[0].response.stream_verdict == "complete"
    assert deferred[0].response.usage is not None


# -- 2. a deferred success waits for flush ------------------------------------------------------


def test_a_deferred_success_reaches_the_sink_on_flush(simulator, slow_janitor):
    exchanges = []
    with httpx2.Client(transport=_transport(exchanges, defer=True), timeout=10) as client:
        response = client.post(_url(simulator), json=BODY, headers=AUTH)
        assert response.status_code == 200
        assert response.json()["choices"][0]["message"]["content"] == "pong"
        assert exchanges == []
        assert len(PENDING) == 1
        assert flush() == 1
        assert len(exchanges) == 1
        assert flush() == 0  # completed once
    [exchange] = exchanges
    assert exchange.ok
    assert exchange.response.request_ids[REQUEST_ID] == response.headers[REQUEST_ID]


def test_flush_returns_how_many_calls_it_completed(simulator, slow_janitor):
    exchanges = []
    url = _url(simulator)
    with httpx2.Client(transport=_transport(exchanges, defer=True), timeout=10) as client:
        # three requests in flight at once (three connections): all are sent before any
        # ends, so no wait window finds an ended call to complete
        with (
            client.stream("POST", url, json=BODY, headers=AUTH) as a,
            client.stream("POST", url, json=STREAM_BODY, headers=AUTH) as b,
            client.stream("POST", url, json=BODY, headers=AUTH) as c,
        ):
            for response in (a, b, c):
                response.read()
        assert exchanges == []
        assert len(PENDING) == 3
        assert flush() == 3
        assert len(exchanges) == 3
        assert flush() == 0
    assert all(exchange.ok for exchange in exchanges)


# -- 3. the wait window -------------------------------------------------------------------------


def test_a_call_is_observed_in_the_next_calls_wait_window(simulator, slow_janitor):
    exchanges, threads = [], []

    def sink(exchange):
        threads.append(threading.current_thread())
        exchanges.append(exchange)

    transport = InstrumentedTransport(contract=COMET, sinks=[sink], defer=True)
    with httpx2.Client(transport=transport, timeout=10) as client:
        first = client.post(_url(simulator), json=BODY, headers=AUTH)
        assert exchanges == []
        second = client.post(_url(simulator), json=BODY, headers=AUTH)
        assert second.status_code == 200
        # A was completed while B waited for the server, on the caller's own thread
        assert len(exchanges) == 1
        assert exchanges[0].response.request_ids[REQUEST_ID] == first.headers[REQUEST_ID]
        assert threads == [threading.current_thread()]
        assert len(PENDING) == 1  # B waits for the next window
        assert flush() == 1
    assert exchanges[1].response.request_ids[REQUEST_ID] == second.headers[REQUEST_ID]


def test_an_async_call_is_observed_in_the_next_calls_wait_window(simulator, slow_janitor):
    exchanges = []

    async def go():
        transport = AsyncInstrumentedTransport(contract=COMET, sinks=[exchanges.append], defer=True)
        async with httpx2.AsyncClient(transport=transport, timeout=10) as client:
            first = await client.post(_url(simulator), json=BODY, headers=AUTH)
            assert exchanges == []
            second = await client.post(_url(simulator), json=BODY, headers=AUTH)
            assert second.status_code == 200
            assert len(exchanges) == 1
            assert exchanges[0].response.request_ids[REQUEST_ID] == first.headers[REQUEST_ID]
            assert len(PENDING) == 1
            assert flush() == 1
            assert exchanges[1].response.request_ids[REQUEST_ID] == second.headers[REQUEST_ID]

    asyncio.run(go())
    assert len(exchanges) == 2


def test_a_streamed_call_is_observed_in_the_next_calls_wait_window(simulator, slow_janitor):
    exchanges = []
    with httpx2.Client(transport=_transport(exchanges, defer=True), timeout=10) as client:
        _read(client, _url(simulator), STREAM_BODY, AUTH)
        assert exchanges == []
        client.post(_url(simulator), json=BODY, headers=AUTH)
        assert len(exchanges) == 1
        assert exchanges[0].response.stream_verdict == "complete"
        assert exchanges[0].timings.ttft_ms is not None


# -- 4. failures are observed inline ------------------------------------------------------------


def test_a_non_2xx_response_is_observed_before_the_call_returns(simulator, slow_janitor):
    exchanges = []
    with httpx2.Client(transport=_transport(exchanges, defer=True), timeout=10) as client:
        response = client.post(_url(simulator), json=BODY, headers=_headers(key="sk-wrong-0000"))
        assert response.status_code == 401
        [exchange] = exchanges  # no flush
        assert len(PENDING) == 0
    assert (exchange.failure.kind, exchange.failure.category) == ("api_error", "auth")
    assert exchange.response.status == 401


def test_a_transport_exception_is_observed_before_the_call_raises(slow_janitor):
    exchanges = []
    port = _free_port()  # bound then closed: nothing listens there
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    with httpx2.Client(transport=_transport(exchanges, defer=True), timeout=5) as client:
        with pytest.raises(httpx2.ConnectError):
            client.post(url, json=BODY, headers=AUTH)
        assert len(exchanges) == 1  # no flush (and the client still open: close flushes)
        assert len(PENDING) == 0
    [exchange] = exchanges
    assert exchange.response is None
    assert (exchange.failure.kind, exchange.failure.code) == ("transport", "connect_refused")


def test_an_async_transport_exception_is_observed_before_the_call_raises(slow_janitor):
    exchanges = []
    url = f"http://127.0.0.1:{_free_port()}/v1/chat/completions"

    async def go():
        transport = AsyncInstrumentedTransport(contract=COMET, sinks=[exchanges.append], defer=True)
        async with httpx2.AsyncClient(transport=transport, timeout=5) as client:
            with pytest.raises(httpx2.ConnectError):
                await client.post(url, json=BODY, headers=AUTH)
            assert len(exchanges) == 1
            assert len(PENDING) == 0

    asyncio.run(go())
    assert exchanges[0].failure.kind == "transport"


# -- 5. a response built with its content -------------------------------------------------------


def test_a_mock_response_is_observed_at_once_even_deferred(slow_janitor):
    exchanges = []
    inner = httpx2.MockTransport(lambda request: httpx2.Response(200, json=COMPLETION))
    transport = _transport(exchanges, defer=True, inner=inner)
    with httpx2.Client(transport=transport) as client:
        response = client.post("http://mock/v1/chat/completions", json=BODY, headers=AUTH)
        assert response.status_code == 200
        [exchange] = exchanges  # no flush
        assert len(PENDING) == 0
        assert flush() == 0
    assert exchange.ok
    assert exchange.response.model == COMPLETION["model"]
    assert exchange.response.content_chars == len("pong")


# -- 6. timings survive deferral ----------------------------------------------------------------


def test_deferred_timings_reflect_the_call_not_the_flush(simulator, slow_janitor):
    exchanges = []
    with httpx2.Client(transport=_transport(exchanges, defer=True), timeout=10) as client:
        before = time.time()
        _read(client, _url(simulator), STREAM_BODY, AUTH)
        time.sleep(0.3)
        assert exchanges == []  # still pending: the flush below builds the Exchange
        assert flush() == 1
    [exchange] = exchanges
    timings = exchange.timings
    assert exchange.ok and exchange.response.stream_verdict == "complete"
    assert timings.ttft_ms is not None and timings.ttfb_ms is not None
    assert 0 < timings.ttfb_ms <= timings.ttft_ms <= timings.total_ms < 300
    assert timings.connect_ms is not None  # the clock of the call, not a fresh one
    assert before - 0.05 <= exchange.started_at <= before + 0.25


# -- 7. the janitor -----------------------------------------------------------------------------


def test_the_janitor_completes_an_idle_deferred_call(simulator):
    assert deferred_module.MAX_DELAY_S == 0.25
    exchanges, threads = [], []

    def sink(exchange):
        threads.append(threading.current_thread().name)
        exchanges.append(exchange)

    transport = InstrumentedTransport(contract=COMET, sinks=[sink], defer=True)
    with httpx2.Client(transport=transport, timeout=10) as client:
        client.post(_url(simulator), json=BODY, headers=AUTH)
        assert exchanges == []
        deadline = time.monotonic() + 3.0
        while not exchanges and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(exchanges) == 1, "the janitor did not complete the call within 3 s"
    assert threads == ["chatcontract-janitor"]
    assert exchanges[0].ok


# -- 8. bounded memory --------------------------------------------------------------------------


def test_a_long_stream_switches_to_inline_observation(simulator, slow_janitor, monkeypatch):
    inline, deferred = [], []
    with httpx2.Client(transport=_transport(inline, defer=False), timeout=10) as client:
        _read(client, _url(simulator), STREAM_BODY, AUTH)
    monkeypatch.setattr(deferred_module, "MAX_BUFFERED_BYTES", 64)
    with httpx2.Client(transport=_transport(deferred, defer=True), timeout=10) as client:
        received = _read(client, _url(simulator), STREAM_BODY, AUTH)
        assert len(deferred) == 1  # no flush
        assert len(PENDING) == 0
    [got] = deferred
    assert got.response.stream_verdict == "complete"
    assert got.response.content_chars > 0
    assert got.response.body_bytes == received > 64
    assert _comparable(got) == _comparable(inline[0])


def test_a_call_switches_to_inline_when_its_buffer_passes_the_bound(monkeypatch):
    monkeypatch.setattr(deferred_module, "MAX_BUFFERED_BYTES", 64)
    exchanges = []
    build, built = _factory([exchanges.append])
    call = DeferredCall(build, orjson.dumps(STREAM_BODY))
    call.on_response(200, SSE_HEADERS)
    head, rest = SSE_BODY[:40], SSE_BODY[40:]
    call.on_chunk(head)
    assert built == []  # 40 bytes: still recording
    call.on_chunk(rest[:30])  # 70 bytes buffered: observed inline from here on
    assert len(built) == 1
    call.on_chunk(rest[30:])
    length = len(PENDING)
    call.finish()
    assert len(PENDING) == length  # not queued: finished inline
    assert call.exchange is not None
    assert exchanges == [call.exchange]
    assert call.exchange.response.stream_verdict == "complete"
    assert call.exchange.response.body_bytes == len(SSE_BODY)


# -- 9. a full queue ----------------------------------------------------------------------------


def test_a_full_queue_observes_the_next_call_inline(simulator, slow_janitor, monkeypatch):
    monkeypatch.setattr(deferred_module, "MAX_PENDING", 0)
    exchanges = []
    with httpx2.Client(transport=_transport(exchanges, defer=True), timeout=10) as client:
        response = client.post(_url(simulator), json=BODY, headers=AUTH)
        assert response.status_code == 200
        assert len(exchanges) == 1  # no flush
        assert len(PENDING) == 0
        assert flush() == 0
    assert exchanges[0].ok


def test_the_call_past_max_pending_is_observed_inline(monkeypatch):
    monkeypatch.setattr(deferred_module, "MAX_DELAY_S", 1.0)
    monkeypatch.setattr(deferred_module, "MAX_PENDING", 1)
    exchanges = []
    calls = []
    for _ in range(2):
        build, _built = _factory([exchanges.append])
        call = DeferredCall(build, orjson.dumps(BODY))
        call.on_response(200, {"content-type": "application/json"})
        call.on_chunk(orjson.dumps(COMPLETION))
        call.finish()
        calls.append(call)
    first, second = calls
    assert len(PENDING) == 1 and PENDING[0] is first
    assert first.exchange is None
    assert second.exchange is not None and exchanges == [second.exchange]
    assert flush() == 1
    assert exchanges == [second.exchange, first.exchange]


# -- 10. a failing deferred observation never fails a request ----------------------------------


class SinkExplodedError(Exception):
    pass


def test_a_failing_deferred_observation_never_fails_another_request(
    simulator, slow_janitor, caplog
):
    calls = []

    def sink(exchange):
        calls.append(exchange)
        raise SinkExplodedError("quoted body: secret-detail-7f3a")

    transport = InstrumentedTransport(contract=COMET, sinks=[sink], defer=True)
    caplog.set_level(logging.WARNING, logger="chatcontract.transport")
    with httpx2.Client(transport=transport, timeout=10) as client:
        first = client.post(_url(simulator), json=BODY, headers=AUTH)
        assert first.status_code == 200
        assert calls == []
        second = client.post(_url(simulator), json=BODY, headers=AUTH)  # drains A: sink raises
        assert second.status_code == 200
        assert second.json()["choices"][0]["message"]["content"] == "pong"
        assert len(calls) == 1  # A was completed (and its sink raised) during B
        records = [r for r in caplog.records if r.name == "chatcontract.transport"]
        assert len(records) == 1
        [record] = records
        assert record.levelno == logging.WARNING
        assert "SinkExplodedError" in record.getMessage()
        assert "secret-detail-7f3a" not in caplog.text
        assert flush() == 1  # B: its sink raises too, flush does not
    assert len(calls) == 2


# -- 11. DeferredCall, unit level ---------------------------------------------------------------


def test_a_deferred_call_replays_into_an_inline_observer():
    exchanges = []
    build, built = _factory([exchanges.append])
    call = DeferredCall(build, orjson.dumps(BODY))
    body = orjson.dumps(COMPLETION)
    call.on_response(200, {"content-type": "application/json", "x-request-id": "req-1"})
    call.on_chunk(body[:50])
    call.on_chunk(body[50:])
    assert call.exchange is None
    assert built == []  # nothing observed yet: only recorded
    length = len(PENDING)
    call.finish()
    assert len(PENDING) == length + 1
    call.finish()  # the stream's close() finishes again: queued once
    assert len(PENDING) == length + 1
    assert call.exchange is None  # until completed
    assert call.waited >= 0.0
    observer = call.inline()
    assert isinstance(observer, CallObserver)
    assert observer is built[0]
    assert observer.exchange is not None
    assert call.exchange is observer.exchange
    assert call.inline() is observer
    exchange = observer.exchange
    assert exchange.ok
    assert exchange.response.status == 200
    assert exchange.response.body_bytes == len(body)
    assert exchange.response.request_ids == {"x-request-id": "req-1"}
    assert exchange.response.content_chars == len("pong")
    assert flush() == 1  # still queued: completing it again emits nothing new
    assert exchanges == [exchange]


def test_a_deferred_call_is_completed_by_the_queue_once():
    exchanges = []
    build, _built = _factory([exchanges.append])
    call = DeferredCall(build, orjson.dumps(BODY))
    call.on_response(200, {"content-type": "application/json"})
    call.on_chunk(orjson.dumps(COMPLETION))
    call.finish()
    call.finish()
    assert call.exchange is None
    assert flush() == 1
    assert call.exchange is not None
    assert exchanges == [call.exchange]
    call.finish()  # after completion: no second Exchange
    assert exchanges == [call.exchange]


def test_a_deferred_call_with_a_failure_status_is_observed_at_once():
    exchanges = []
    build, built = _factory([exchanges.append])
    call = DeferredCall(build, orjson.dumps(BODY))
    call.on_response(503, {"content-type": "application/json"})
    assert len(built) == 1  # inline from the head on
    call.on_chunk(b'{"error": {"message": "overloaded", "type": "server_error"}}')
    length = len(PENDING)
    call.finish()
    assert len(PENDING) == length
    assert exchanges == [call.exchange]
    assert call.exchange.failure is not None


# -- 12. the top-level flush --------------------------------------------------------------------


def test_the_top_level_flush_is_the_transport_flush():
    assert chatcontract.flush is chatcontract.transport.flush
    assert chatcontract.flush is deferred_module.flush


# -- a queued call belongs to the queue ---------------------------------------------------------


def test_a_second_finish_during_completion_does_not_emit_a_half_replayed_exchange():
    """Regression: the stream's close() calls finish() again right after the queued finish;
    if another thread is completing the call at that moment (replaying its events), that
    second finish must not classify the half-replayed observer (it used to emit a 200 without
    its body as a parser failure, and under contention a second Exchange)."""
    exchanges = []
    replaying, closed = threading.Event(), threading.Event()

    class Interleaved(CallObserver):
        def on_chunk(self, chunk, at=None):
            # The drainer is replaying; the owner's close() runs now (a thread switch).
            if not replaying.is_set():
                replaying.set()
                closed.wait(timeout=5)
            super().on_chunk(chunk, at)

    body = orjson.dumps(COMPLETION)
    facts = request_facts("POST", "http://127.0.0.1:1/v1/chat/completions", b"{}", {}, None)

    def build(subject, clock, started_at):
        return Interleaved(
            request=facts,
            contract=COMET,
            sinks=(exchanges.append,),
            clock=clock,
            started_at=started_at,
        )

    call = DeferredCall(build, orjson.dumps(BODY))
    call.on_response(200, {"content-type": "application/json"})
    call.on_chunk(body)
    call.finish()  # end of the body: queued
    drainer = threading.Thread(target=flush, name="other-request-wait-window")
    drainer.start()
    try:
        assert replaying.wait(timeout=5)
        call.finish()  # the owner's response.close() -> _ObservedStream.close() -> finish()
    finally:
        closed.set()
        drainer.join(timeout=5)
    [exchange] = exchanges
    assert exchange.response.body_bytes == len(body)
    assert exchange.ok, exchange.failure


# -- sinks run in the context of the call (e.g. its OpenTelemetry span) -------------------------


@pytest.fixture
def otel_sink():
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from chatcontract.telemetry import CallLabels, OpenTelemetrySink

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    otel = OpenTelemetrySink(tracer_provider=provider)
    labels = CallLabels(provider="cometapi", endpoint="/chat/completions")

    def sink(exchange):
        otel.handle_exchange(exchange, labels)

    def chat_spans():
        spans = [s for s in exporter.get_finished_spans() if s.name.startswith("chat")]
        return sorted(spans, key=lambda s: s.start_time)

    yield sink, provider.get_tracer("test"), chat_spans
    provider.shutdown()


def test_a_deferred_calls_span_keeps_the_parent_of_the_call(simulator, slow_janitor, otel_sink):
    sink, tracer, chat_spans = otel_sink
    transport = InstrumentedTransport(contract=COMET, sinks=[sink], defer=True)
    with httpx2.Client(transport=transport, timeout=10) as client:
        with tracer.start_as_current_span("request-a") as parent_a:
            client.post(_url(simulator), json=BODY, headers=AUTH)
        assert chat_spans() == []  # deferred
        with tracer.start_as_current_span("request-b") as parent_b:
            client.post(_url(simulator), json=BODY, headers=AUTH)  # A completes in B's window
            assert len(chat_spans()) == 1
        assert flush() == 1  # B completes here, outside any span: in its call's context
    first, second = chat_spans()
    assert first.parent is not None and second.parent is not None
    assert first.parent.span_id == parent_a.get_span_context().span_id
    assert second.parent.span_id == parent_b.get_span_context().span_id


def test_an_async_deferred_calls_span_keeps_the_parent_of_the_call(
    simulator, slow_janitor, otel_sink
):
    sink, tracer, chat_spans = otel_sink
    parents = {}

    async def go():
        transport = AsyncInstrumentedTransport(contract=COMET, sinks=[sink], defer=True)
        async with httpx2.AsyncClient(transport=transport, timeout=10) as client:
            with tracer.start_as_current_span("request-a") as parent_a:
                await client.post(_url(simulator), json=BODY, headers=AUTH)
            with tracer.start_as_current_span("request-b") as parent_b:
                await client.post(_url(simulator), json=BODY, headers=AUTH)
                assert len(chat_spans()) == 1
            assert flush() == 1
        parents["a"], parents["b"] = parent_a, parent_b

    asyncio.run(go())
    first, second = chat_spans()
    assert first.parent.span_id == parents["a"].get_span_context().span_id
    assert second.parent.span_id == parents["b"].get_span_context().span_id
