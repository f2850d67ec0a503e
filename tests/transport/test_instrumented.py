import asyncio
import json

import httpx2
import pytest

from chatcontract.contract import load_preset
from chatcontract.simulator import DEFAULT_API_KEY, create_app
from chatcontract.transport import AsyncInstrumentedTransport, InstrumentedTransport

COMET = load_preset("cometapi")
SECRET = DEFAULT_API_KEY
PROMPT = "Reply with exactly: pong"
BODY = {
    "model": "gpt-4.1-nano",
    "max_tokens": 16,
    "messages": [{"role": "system", "content": "marker-9f2c"}, {"role": "user", "content": PROMPT}],
}
AUTH = {"Authorization": f"Bearer {SECRET}"}


def _asgi_client(exchanges, **kwargs):
    inner = httpx2.ASGITransport(app=create_app(flavor="cometapi"))

    async def collect():
        pass

    transport = AsyncInstrumentedTransport(
        contract=COMET, sinks=[exchanges.append], inner=inner, secrets=[SECRET], **kwargs
    )
    return httpx2.AsyncClient(transport=transport, base_url="http://sim/v1")


def _run(coro):
    return asyncio.run(coro)


async def _post(exchanges, body=BODY, headers=AUTH, **kwargs):
    async with _asgi_client(exchanges, **kwargs) as client:
        response = await client.post("/chat/completions", json=body, headers=headers)
        await response.aread()
        return response


def test_a_successful_call_records_request_and_response_facts():
    exchanges = []
    response = _run(_post(exchanges))
    assert response.status_code == 200
    [exchange] = exchanges
    assert exchange.ok
    assert exchange.request.model == "gpt-4.1-nano"
    assert exchange.request.message_count == 2
    assert exchange.request.roles == ("system", "user")
    assert exchange.request.max_tokens == 16
    assert exchange.request.stream is False
    assert exchange.request.shape_fingerprint
    assert exchange.response.status == 200
    assert exchange.response.model == "gpt-4.1-nano-2025-04-14"
    assert exchange.response.usage.total_tokens == (
        exchange.response.usage.prompt_tokens + exchange.response.usage.completion_tokens
    )
    assert exchange.response.content_chars == len("pong")
    assert "x-oneapi-request-id" in exchange.response.request_ids
    assert exchange.timings.total_ms > 0


def test_prompt_completion_and_secret_never_enter_an_exchange():
    exchanges = []
    _run(_post(exchanges))
    dumped = json.dumps(exchanges[0].to_dict())
    assert SECRET not in dumped
    assert "marker-9f2c" not in dumped
    assert PROMPT not in dumped
    assert "pong" not in dumped
    assert exchanges[0].response.content is None


def test_completion_text_is_kept_only_when_opted_in():
    exchanges = []
    _run(_post(exchanges, capture_content=True))
    assert exchanges[0].response.content == "pong"


def test_error_responses_are_classified_with_the_contract():
    exchanges = []
    _run(_post(exchanges, body={**BODY, "model": "no-such-model"}))
    failure = exchanges[0].failure
    assert (failure.kind, failure.category, failure.code, failure.retry) == (
        "api_error",
        "model",
        "model_not_found",
        "none",
    )
    assert failure.request_id


def test_streams_are_watched_as_they_pass():
    exchanges = []
    body = {**BODY, "stream": True, "stream_options": {"include_usage": True}}

    async def go():
        async with (
            _asgi_client(exchanges) as client,
            client.stream("POST", "/chat/completions", json=body, headers=AUTH) as response,
        ):
            return b"".join([chunk async for chunk in response.aiter_bytes()])

    raw = _run(go())
    assert b"data: [DONE]" in raw  # passed through unchanged
    [exchange] = exchanges
    assert exchange.ok
    assert exchange.request.stream and exchange.request.include_usage
    assert exchange.response.stream_verdict == "complete"
    assert exchange.response.chunk_count >= 2
    assert exchange.response.usage is not None
    assert exchange.timings.ttft_ms is not None


@pytest.mark.parametrize(
    ("scenario", "kind", "code"),
    [
        ("cut_stream", "transport", "stream_dropped"),  # the simulator drops the connection
        ("done_without_finish_reason", "parser", "stream_truncated"),
        ("inband_error_chunk", "api_error", None),
        ("malformed_chunk", "parser", "malformed_chunk"),
    ],
    ids=["cut", "truncated", "inband", "malformed"],
)
def test_broken_streams_are_named(simulator, scenario, kind, code):
    exchanges = []
    transport = InstrumentedTransport(contract=COMET, sinks=[exchanges.append], secrets=[SECRET])
    body = {**BODY, "stream": True, "stream_options": {"include_usage": True}}
    with httpx2.Client(transport=transport, timeout=10) as client:
        try:
            with client.stream(
                "POST",
                simulator.base_url + "/chat/completions",
                json=body,
                headers={**AUTH, "X-Chatcontract-Scenario": scenario},
            ) as response:
                for _ in response.iter_bytes():
                    pass
        except httpx2.HTTPError:
            pass
    [exchange] = exchanges
    assert exchange.failure is not None
    assert exchange.failure.kind == kind
    if code:
        assert exchange.failure.code == code


def test_real_loopback_call_times_connect_and_first_byte(simulator):
    exchanges = []
    transport = InstrumentedTransport(contract=COMET, sinks=[exchanges.append], secrets=[SECRET])
    url = simulator.base_url.replace("127.0.0.1", "localhost") + "/chat/completions"
    with httpx2.Client(transport=transport, timeout=10) as client:
        client.post(url, json=BODY, headers=AUTH)
        client.post(url, json=BODY, headers=AUTH)
    first, second = exchanges
    assert first.timings.dns_ms is not None  # "localhost" was resolved, and timed
    assert first.timings.connect_ms is not None
    assert first.timings.ttfb_ms is not None and first.timings.ttfb_ms <= first.timings.total_ms
    assert second.timings.connect_ms is None  # the pooled connection was reused


def test_transport_exceptions_are_recorded_then_re_raised():
    exchanges = []

    def refuse(request):
        raise httpx2.ConnectError("[Errno 111] Connection refused")

    transport = InstrumentedTransport(
        contract=COMET, sinks=[exchanges.append], inner=httpx2.MockTransport(refuse)
    )
    with httpx2.Client(transport=transport) as client, pytest.raises(httpx2.ConnectError):
        client.post("http://127.0.0.1:9/v1/chat/completions", json=BODY)
    [exchange] = exchanges
    assert exchange.response is None
    assert (exchange.failure.kind, exchange.failure.code) == ("transport", "connect_refused")


def test_attempt_and_route_travel_in_request_extensions():
    exchanges = []
    transport = InstrumentedTransport(
        contract=COMET,
        sinks=[exchanges.append],
        inner=httpx2.MockTransport(lambda r: httpx2.Response(429)),
    )
    with httpx2.Client(transport=transport) as client:
        request = client.build_request(
            "POST",
            "http://x/v1/chat/completions",
            json=BODY,
            extensions={"chatcontract": {"attempt": 2, "route": "backup"}},
        )
        client.send(request)
    assert (exchanges[0].attempt, exchanges[0].route) == (2, "backup")
    assert exchanges[0].failure.category == "rate_limit"


def test_sync_and_async_transports_record_the_same_facts(simulator):
    sync_ex, async_ex = [], []
    url = simulator.base_url + "/chat/completions"
    with httpx2.Client(
        transport=InstrumentedTransport(contract=COMET, sinks=[sync_ex.append])
    ) as c:
        c.post(url, json=BODY, headers=AUTH)

    async def go():
        transport = AsyncInstrumentedTransport(contract=COMET, sinks=[async_ex.append])
        async with httpx2.AsyncClient(transport=transport) as c:
            await c.post(url, json=BODY, headers=AUTH)

    _run(go())
    a, b = sync_ex[0], async_ex[0]
    assert a.request == b.request
    assert (a.response.status, a.response.model, a.response.usage) == (
        b.response.status,
        b.response.model,
        b.response.usage,
    )
    assert a.failure == b.failure is None
    assert b.timings.connect_ms is not None


def _self_signed(tmp_path):
    import shutil
    import subprocess

    if shutil.which("openssl") is None:  # pragma: no cover - Debian images ship openssl
        pytest.skip("openssl is not installed")
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost",
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )
    return key, cert


def test_tls_handshake_is_timed_by_the_backend(tmp_path):
    import socket
    import ssl
    import threading
    import time

    import uvicorn

    from chatcontract.transport import install_backend

    key, cert = _self_signed(tmp_path)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(
        create_app(flavor="cometapi"),
        host="127.0.0.1",
        port=port,
        ssl_keyfile=str(key),
        ssl_certfile=str(cert),
        log_level="error",
        lifespan="off",
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.02)
        context = ssl.create_default_context(cafile=str(cert))
        inner = httpx2.HTTPTransport(verify=context)
        assert install_backend(inner, is_async=False)
        exchanges = []
        transport = InstrumentedTransport(contract=COMET, sinks=[exchanges.append], inner=inner)
        with httpx2.Client(transport=transport, timeout=10) as client:
            client.post(f"https://localhost:{port}/v1/chat/completions", json=BODY, headers=AUTH)
        [exchange] = exchanges
        assert exchange.ok
        assert exchange.timings.tls_ms is not None and exchange.timings.tls_ms > 0
        assert exchange.timings.dns_ms is not None
        assert exchange.timings.connect_ms is not None
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def test_a_litellm_call_id_is_the_exchange_request_id():
    exchanges = []
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "pong"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }
    answer = httpx2.Response(200, json=body, headers={"x-litellm-call-id": "call-42"})
    transport = InstrumentedTransport(
        contract=COMET, sinks=[exchanges.append], inner=httpx2.MockTransport(lambda r: answer)
    )
    with httpx2.Client(transport=transport) as client:
        client.post("http://x/v1/chat/completions", json=BODY)
    [exchange] = exchanges
    assert exchange.request_id == "call-42"
