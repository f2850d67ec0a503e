"""Every call is observed inline: its Exchange reaches the sinks before the call returns (a
streamed body's when it has been read or closed), on the caller's thread, with no queue, no
background thread and no hook left in other requests' reads."""

import asyncio
import socket
import threading
import warnings

import httpx2
import pytest

import chatcontract
import chatcontract.transport
from chatcontract.contract import load_preset
from chatcontract.simulator import DEFAULT_API_KEY
from chatcontract.transport import (
    EXCHANGE_EXTENSION,
    STREAM_EXTENSION,
    AsyncInstrumentedTransport,
    InstrumentedTransport,
)
from chatcontract.wire import StreamParser

COMET = load_preset("cometapi")
SECRET = DEFAULT_API_KEY
BODY = {
    "model": "gpt-4.1-nano",
    "max_tokens": 16,
    "messages": [{"role": "user", "content": "Reply with exactly: pong"}],
}
STREAM_BODY = {**BODY, "stream": True, "stream_options": {"include_usage": True}}
AUTH = {"Authorization": f"Bearer {SECRET}"}
COMPLETION = {
    "id": "chatcmpl-mock",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "gpt-4.1-nano-2025-04-14",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "pong"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 12, "completion_tokens": 1, "total_tokens": 13},
}


def _url(simulator):
    return simulator.base_url + "/chat/completions"


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _transport(exchanges, **kwargs):
    return InstrumentedTransport(
        contract=COMET, sinks=[exchanges.append], secrets=[SECRET], **kwargs
    )


def test_a_success_is_observed_before_the_call_returns(simulator):
    exchanges = []
    with httpx2.Client(transport=_transport(exchanges), timeout=10) as client:
        response = client.post(_url(simulator), json=BODY, headers=AUTH)
        [exchange] = exchanges
    assert exchange.ok
    assert exchange.response.response_id == response.json()["id"]


def test_a_stream_is_observed_when_its_body_has_been_read(simulator):
    exchanges = []
    client = httpx2.Client(transport=_transport(exchanges), timeout=10)
    with client, client.stream("POST", _url(simulator), json=STREAM_BODY, headers=AUTH) as response:
        assert exchanges == []  # the head alone: the body is still to come
        for _ in response.iter_raw():
            pass
        [exchange] = exchanges
    assert exchange.response.stream_verdict == "complete"
    assert exchange.timings.ttfb_ms <= exchange.timings.ttft_ms <= exchange.timings.total_ms


def test_sinks_run_on_the_callers_thread(simulator):
    threads = []
    transport = InstrumentedTransport(
        contract=COMET, sinks=[lambda _: threads.append(threading.current_thread())]
    )
    with httpx2.Client(transport=transport, timeout=10) as client:
        client.post(_url(simulator), json=BODY, headers=AUTH)
    assert threads == [threading.current_thread()]


def test_an_async_success_is_observed_before_the_call_returns(simulator):
    exchanges = []

    async def go():
        transport = AsyncInstrumentedTransport(contract=COMET, sinks=[exchanges.append])
        async with httpx2.AsyncClient(transport=transport, timeout=10) as client:
            await client.post(_url(simulator), json=BODY, headers=AUTH)
            return len(exchanges)

    assert asyncio.run(go()) == 1
    assert exchanges[0].ok


def test_a_non_2xx_response_is_observed_before_the_call_returns(simulator):
    exchanges = []
    with httpx2.Client(transport=_transport(exchanges), timeout=10) as client:
        response = client.post(
            _url(simulator), json=BODY, headers={"Authorization": "Bearer sk-wrong-0000"}
        )
        [exchange] = exchanges
    assert response.status_code == 401
    assert (exchange.failure.kind, exchange.failure.category) == ("api_error", "auth")


def test_a_transport_exception_is_observed_before_the_call_raises():
    exchanges = []
    url = f"http://127.0.0.1:{_free_port()}/v1/chat/completions"  # nothing listens there
    with httpx2.Client(transport=_transport(exchanges), timeout=5) as client:
        with pytest.raises(httpx2.ConnectError):
            client.post(url, json=BODY, headers=AUTH)
        [exchange] = exchanges
    assert exchange.response is None
    assert (exchange.failure.kind, exchange.failure.code) == ("transport", "connect_refused")


def test_a_mock_response_is_observed_at_once():
    exchanges = []
    inner = httpx2.MockTransport(lambda request: httpx2.Response(200, json=COMPLETION))
    with httpx2.Client(transport=_transport(exchanges, inner=inner)) as client:
        client.post("http://mock/v1/chat/completions", json=BODY, headers=AUTH)
        [exchange] = exchanges
    assert exchange.ok
    assert exchange.response.content_chars == len("pong")


def test_no_background_thread_is_started(simulator):
    before = {thread.name for thread in threading.enumerate()}
    with httpx2.Client(transport=_transport([]), timeout=10) as client:
        for _ in range(3):
            client.post(_url(simulator), json=BODY, headers=AUTH)
    after = {thread.name for thread in threading.enumerate()}
    assert not {name for name in after - before if name.startswith("chatcontract")}


@pytest.mark.parametrize(
    "make",
    [
        lambda: InstrumentedTransport(defer=True),
        lambda: AsyncInstrumentedTransport(defer=True),
    ],
    ids=["sync", "async"],
)
def test_the_defer_argument_is_gone(make):
    with pytest.raises(TypeError, match="defer"):
        make()


def test_flush_is_a_deprecated_no_op():
    with pytest.warns(DeprecationWarning, match="observed inline"):
        assert chatcontract.flush() == 0


def test_the_transport_package_no_longer_offers_deferral():
    assert not hasattr(chatcontract.transport, "DeferredCall")
    assert not hasattr(chatcontract.transport, "flush")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ImportError):
            __import__("chatcontract.transport.deferred")


def test_the_exchange_comes_back_in_the_responses_extensions(simulator):
    exchanges = []
    with httpx2.Client(transport=_transport(exchanges), timeout=10) as client:
        response = client.post(_url(simulator), json=BODY, headers=AUTH)
    assert response.extensions[EXCHANGE_EXTENSION] is exchanges[0]


def test_a_streams_exchange_comes_back_once_its_body_was_read(simulator):
    client = httpx2.Client(transport=_transport([]), timeout=10)
    with client, client.stream("POST", _url(simulator), json=STREAM_BODY, headers=AUTH) as response:
        assert EXCHANGE_EXTENSION not in response.extensions
        assert isinstance(response.extensions[STREAM_EXTENSION], StreamParser)
        response.read()
        exchange = response.extensions[EXCHANGE_EXTENSION]
    assert exchange.response.stream_verdict == "complete"
    assert response.extensions[STREAM_EXTENSION].result.content  # the same parser's result


def test_a_failed_sends_exchange_comes_back_with_its_request():
    url = f"http://127.0.0.1:{_free_port()}/v1/chat/completions"
    with httpx2.Client(transport=_transport([]), timeout=5) as client:
        request = client.build_request("POST", url, json=BODY, headers=AUTH)
        with pytest.raises(httpx2.ConnectError):
            client.send(request)
    assert request.extensions[EXCHANGE_EXTENSION].failure.kind == "transport"


def test_the_extension_holds_the_redacted_exchange():
    inner = httpx2.MockTransport(
        lambda request: httpx2.Response(401, json={"error": {"message": f"bad key {SECRET}"}})
    )
    with httpx2.Client(transport=_transport([], inner=inner)) as client:
        response = client.post("http://mock/v1/chat/completions", json=BODY, headers=AUTH)
    exchange = response.extensions[EXCHANGE_EXTENSION]
    assert exchange.failure is not None
    assert SECRET not in exchange.failure.message
