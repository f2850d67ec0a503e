import pytest

from chatcontract.redact import (
    REDACTED,
    known_secrets,
    redact_headers,
    redact_text,
    redact_value,
)


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("key sk-abcdefghijklmnopqrstuvwx used", "sk-abcdefghijklmnopqrstuvwx"),
        ("Authorization: Bearer abcdefghijklmnop", "abcdefghijklmnop"),
        ("jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.sig", "eyJhbGciOiJIUzI1NiJ9"),
        ("aws AKIAABCDEFGHIJKLMNOP here", "AKIAABCDEFGHIJKLMNOP"),
    ],
    ids=["openai-key", "bearer", "jwt", "aws"],
)
def test_credential_shapes_are_redacted(text, secret):
    out = redact_text(text)
    assert REDACTED in out
    assert secret not in out


def test_known_secret_is_redacted_even_without_a_credential_shape():
    assert redact_text("token=plainsecret99 end", ["plainsecret99"]) == "token=*** end"


def test_one_secret_given_as_a_string_is_one_secret():
    """Not its characters: each is too short to redact, so the secret itself was kept."""
    assert redact_text("token=plainsecret99 end", "plainsecret99") == "token=*** end"
    assert known_secrets("plainsecret99") == ("plainsecret99",)
    assert known_secrets("") == ()
    assert known_secrets(["a-secret", "", "b-secret"]) == ("a-secret", "b-secret")


def test_a_secret_that_is_not_a_string_is_refused():
    with pytest.raises(TypeError, match="secrets takes strings"):
        known_secrets(["ok-secret", b"raw-bytes"])


@pytest.mark.parametrize("kind", ["transport", "event-log", "ledger"])
def test_each_holder_of_secrets_takes_one_given_as_a_string(kind, tmp_path):
    import httpx2

    from chatcontract.contract import load_preset
    from chatcontract.telemetry import JsonEventLog, UsageLedger
    from chatcontract.transport import InstrumentedTransport

    secret = "plainsecret99"
    if kind == "transport":
        held = InstrumentedTransport(inner=httpx2.MockTransport(lambda r: None), secrets=secret)
        assert secret in held._secrets
    elif kind == "event-log":
        assert JsonEventLog(secrets=secret)._secrets == (secret,)
    else:
        ledger = UsageLedger(tmp_path / "ledger", contract=load_preset("cometapi"), secrets=secret)
        assert ledger._secrets == (secret,)


def test_a_ledger_given_a_secret_that_is_not_a_string_says_so(tmp_path):
    from chatcontract.contract import load_preset
    from chatcontract.errors import ConfigError
    from chatcontract.telemetry import UsageLedger

    with pytest.raises(ConfigError, match="UsageLedger secrets takes strings"):
        UsageLedger(tmp_path / "ledger", contract=load_preset("cometapi"), secrets=[b"raw"])


def test_plain_text_is_untouched():
    assert redact_text("model name is required") == "model name is required"


def test_sensitive_headers_are_redacted_case_insensitively():
    headers = redact_headers({"Authorization": "Bearer sk-x", "X-API-Key": "k", "Accept": "json"})
    assert headers == {"Authorization": REDACTED, "X-API-Key": REDACTED, "Accept": "json"}


# -- end to end: the contract's key never leaves, whoever forgot ``secrets=`` -----------------

# A key with no credential shape: only knowing the key itself can hide it.
PLANTED = "local-proxy-key-7f3a9c51"


def _planted_answers():
    import orjson

    from raw_servers import response

    echoed = {"x-request-id": PLANTED, "x-ratelimit-remaining-requests": PLANTED}
    completion = {
        "id": f"chatcmpl-{PLANTED}",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4.1-nano",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": f"your key is {PLANTED}"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 4, "total_tokens": 9},
    }
    error = {
        "error": {
            "message": f"Incorrect API key provided: {PLANTED} (request id: {PLANTED})",
            "type": "invalid_request_error",
            "code": "invalid_api_key",
        }
    }
    return [
        response(200, orjson.dumps(completion), headers=echoed),
        response(401, orjson.dumps(error), headers=echoed),
    ]


def _outputs(exchanges):
    import orjson

    return [repr(e) for e in exchanges] + [orjson.dumps(e.to_dict()).decode() for e in exchanges]


@pytest.fixture
def planted_env(monkeypatch):
    monkeypatch.setenv("COMETAPI_KEY", PLANTED)


def test_the_transport_redacts_the_contract_key_without_being_told(planted_env, tmp_path):
    import httpx2

    from chatcontract.contract import load_preset
    from chatcontract.probe.records import ProbeRun
    from chatcontract.probe.store import ProbeStore
    from chatcontract.transport import InstrumentedTransport
    from raw_servers import in_order, raw_server

    exchanges = []
    contract = load_preset("cometapi")
    with raw_server(in_order(_planted_answers())) as server:
        transport = InstrumentedTransport(
            contract=contract, sinks=[exchanges.append], capture_content=True
        )
        with httpx2.Client(transport=transport, timeout=5.0) as client:
            for _ in range(2):
                client.post(server.url, json={"model": "gpt-4.1-nano", "messages": []})
    assert [e.response.status for e in exchanges] == [200, 401]
    assert exchanges[0].response.request_ids["x-request-id"] == REDACTED
    store = ProbeStore.open(tmp_path / "probe.db")
    for exchange in exchanges:
        store.record_run(
            ProbeRun.from_exchange(
                exchange,
                probe="canary",
                started_at=1.0,
                ok=exchange.ok,
                failure=exchange.failure,
                execution_id="e1",
            )
        )
    store.close()
    database = b"".join(path.read_bytes() for path in tmp_path.iterdir())
    assert PLANTED.encode() not in database
    for text in _outputs(exchanges):
        assert PLANTED not in text


def test_a_key_the_request_carries_is_redacted_even_without_a_contract_key():
    import httpx2

    from chatcontract.transport import InstrumentedTransport
    from raw_servers import in_order, raw_server

    exchanges = []
    with raw_server(in_order(_planted_answers()[1:])) as server:
        transport = InstrumentedTransport(sinks=[exchanges.append])
        with httpx2.Client(transport=transport, timeout=5.0) as client:
            client.post(
                server.url, json={"model": "m", "messages": []},
                headers={"Authorization": f"Bearer {PLANTED}"},
            )  # fmt: skip
    [exchange] = exchanges
    assert exchange.failure is not None
    assert exchange.failure.category == "auth"
    for text in _outputs(exchanges):
        assert PLANTED not in text


def test_instrument_keeps_the_key_out_of_event_log_spans_and_exchanges(planted_env, caplog):
    import logging

    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    from chatcontract import instrument
    from chatcontract.contract import load_preset
    from chatcontract.telemetry import OpenTelemetrySink
    from raw_servers import in_order, raw_server

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    exchanges = []
    caplog.set_level(logging.INFO, logger="chatcontract")
    with raw_server(in_order(_planted_answers())) as server:
        sinks = [exchanges.append, OpenTelemetrySink(tracer_provider=provider)]
        with instrument(contract=load_preset("cometapi"), sinks=sinks, shadow_rate=1.0) as client:
            for _ in range(2):
                client.post(
                    server.url, json={"model": "gpt-4.1-nano", "messages": []},
                    headers={"Authorization": f"Bearer {PLANTED}"},
                )  # fmt: skip
    spans = exporter.get_finished_spans()
    assert len(spans) == 2
    assert len(caplog.records) >= 2
    texts = [
        *_outputs(exchanges),
        *(record.getMessage() for record in caplog.records),
        *(span.to_json() for span in spans),
    ]
    assert any("x-request-id" in text for text in texts)
    for text in texts:
        assert PLANTED not in text


def test_chat_client_results_and_errors_never_show_the_key(planted_env):
    from chatcontract.client import ChatClient, NonRetryableError
    from chatcontract.contract import load_preset
    from raw_servers import in_order, raw_server

    contract = load_preset("cometapi")
    with raw_server(in_order(_planted_answers())) as server:
        from dataclasses import replace

        aimed = replace(contract, endpoint=replace(contract.endpoint, base_url=server.base_url))
        with ChatClient.from_contract(aimed) as client:
            result = client.complete([{"role": "user", "content": "hi"}], max_tokens=8)
            with pytest.raises(NonRetryableError) as caught:
                client.complete([{"role": "user", "content": "hi"}], max_tokens=8)
    assert PLANTED in result.content  # the answer itself is the caller's data
    error = caught.value
    texts = [
        repr(result), str(result.attempts), repr(error), str(error), repr(error.failure),
        str(error.failure), *_outputs(error.attempts), repr(client),
    ]  # fmt: skip
    for text in texts:
        assert PLANTED not in text


def test_an_interrupted_stream_does_not_show_the_key(planted_env):
    from dataclasses import replace

    from chatcontract.client import ChatClient, StreamInterrupted
    from chatcontract.contract import load_preset
    from raw_servers import in_order, raw_server

    chunk = (
        '{"id":"c1","object":"chat.completion.chunk","created":1,"model":"gpt-4.1-nano",'
        f'"choices":[{{"index":0,"delta":{{"content":"key {PLANTED}"}},"finish_reason":null}}]}}'
    )
    cut = (
        f"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nx-request-id: {PLANTED}\r\n\r\n"
        f"data: {chunk}\n\n"
    ).encode()
    contract = load_preset("cometapi")
    with raw_server(in_order([cut], then_close=True)) as server:
        aimed = replace(contract, endpoint=replace(contract.endpoint, base_url=server.base_url))
        with ChatClient.from_contract(aimed) as client:
            stream = client.stream([{"role": "user", "content": "hi"}], max_tokens=8)
            with pytest.raises(StreamInterrupted) as caught:
                stream.until_done()
    error = caught.value
    assert PLANTED in error.partial_content
    for text in [repr(error), str(error), repr(error.failure), *_outputs(error.attempts)]:
        assert PLANTED not in text


def test_redact_value_walks_lists_and_mappings_and_leaves_other_values():
    value = {"a": ["sk-abcdefghijklmnopqrstuvwx", 3], "b": {"c": "plain"}, "d": None}
    assert redact_value(value) == {"a": [REDACTED, 3], "b": {"c": "plain"}, "d": None}
