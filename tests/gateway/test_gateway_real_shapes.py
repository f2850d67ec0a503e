"""The gateway in front of servers no one here wrote, reproduced by small stand-alone servers.

Each server copies, byte for byte where it matters, a misbehaviour measured against a real
server (``docs/real-servers.md``, ``docs/gateway.md`` "Against real servers"): llama-cpp-python
0.3.36 (no auth at all, 200 for a body without ``messages``, a 500 ``text/plain`` then a dropped
keep-alive, 1 ms answers) and the LiteLLM 1.108.7 proxy (error codes rewritten to the status as
a string, a wrong key answered ``400 no_db_connection``, streams re-encoded with a usage chunk
whose ``choices`` is not empty, an upstream cut forwarded as an in-band error event). Through
the gateway each must get the right classification and the right client-visible result.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from typing import Any

import openai
import orjson
import pytest
from gateway_helpers import error_of, raw_request

from chatcontract.contract import Contract, ErrorRule, FallbackRoute, RetryPolicy, load_preset
from raw_servers import (
    COMPLETION,
    RawServer,
    drops_reused_connections,
    in_order,
    raw_server,
    read_request,
    response,
)

KEY_ENV = "CHATCONTRACT_TEST_REAL_SHAPES_KEY"
PROVIDER_KEY = "sk-provider-real-shapes-0123456789"
PROMPT = [{"role": "user", "content": "Reply with exactly: pong"}]
FAST_RETRY = RetryPolicy(max_attempts=2, backoff_initial_ms=5, backoff_max_ms=10, jitter=0.0)


def _contract(primary_url: str, *, backup: bool = False, **changes: Any) -> Contract:
    """The openai preset (with its message rules) aimed at ``primary_url``; with ``backup``, a
    ``backup`` route on the same endpoint with model ``backup-model``, else no fallback."""
    base = load_preset("openai")
    fallbacks: tuple[FallbackRoute, ...] = ()
    if backup:
        fallbacks = (FallbackRoute(name="backup", model="backup-model"),)
    return replace(
        base,
        endpoint=replace(base.endpoint, base_url=primary_url),
        auth=replace(base.auth, env=(KEY_ENV,)),
        model="primary-model",
        fallbacks=fallbacks,
        policy=replace(base.policy, retry=FAST_RETRY, fallback_reserve_ms=100),
        **changes,
    )


@pytest.fixture
def through(gateway):  # type: ignore[no-untyped-def]
    """``through(contract)``: a running gateway for ``contract``, the provider key in its env."""

    def make(contract: Contract):  # type: ignore[no-untyped-def]
        return gateway(contract, {KEY_ENV: PROVIDER_KEY})

    return make


def _chat(root_url: str, body: dict[str, Any], **headers: str) -> tuple[int, dict[str, str], bytes]:
    data = orjson.dumps({"messages": PROMPT, "max_tokens": 16, **body})
    return raw_request(
        root_url,
        "POST",
        "/v1/chat/completions",
        data,
        {"content-type": "application/json", **headers},
    )


def _verdict(headers: dict[str, str]) -> tuple[str, str, str]:
    return (
        headers["x-chatcontract-attempts"],
        headers["x-chatcontract-route"],
        headers["x-chatcontract-classification"],
    )


# -- llama-cpp-python shapes ---------------------------------------------------------------


def _recording(answer: bytes) -> Any:
    """Answers every request with ``answer`` and records each request's head and body."""
    return _recording_in_order([answer])


def _recording_in_order(answers: list[bytes]) -> Any:
    """Answers the requests with ``answers`` in turn (the last one repeats), keep-alive, and
    records each request's head and body."""
    queue = list(answers)

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: RawServer
    ) -> None:
        while True:
            try:
                head = await reader.readuntil(b"\r\n\r\n")
            except asyncio.IncompleteReadError:
                return
            length = 0
            for line in head.split(b"\r\n"):
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            body = await reader.readexactly(length) if length else b""
            server.requests += 1
            server.state.setdefault("heads", []).append(head.decode("latin-1").lower())
            server.state.setdefault("bodies", []).append(body)
            writer.write(queue.pop(0) if len(queue) > 1 else queue[0])
            await writer.drain()

    return handler


def test_a_server_without_auth_gets_only_the_contract_key_never_the_clients(through):
    # llama-cpp-python checks no key at all: the gateway still sends the contract's key, and
    # what the client sent as its own Authorization never goes upstream.
    with raw_server(_recording(response(200, COMPLETION))) as upstream:
        server = through(_contract(upstream.base_url))
        status, headers, body = _chat(
            server.root_url, {"model": "primary-model"}, authorization="Bearer client-own-secret"
        )
        heads = upstream.state["heads"]
    assert status == 200
    assert json.loads(body)["choices"][0]["message"]["content"] == "pong"
    assert _verdict(headers) == ("1", "primary", "success")
    assert len(heads) == 1
    assert f"authorization: bearer {PROVIDER_KEY}".lower() in heads[0]
    assert "client-own-secret" not in heads[0]


@pytest.mark.parametrize(
    "body",
    [
        pytest.param({"model": "primary-model"}, id="no-messages"),
        pytest.param({"model": "primary-model", "messages": "hi"}, id="messages-not-a-list"),
    ],
)
def test_a_request_a_lax_server_would_answer_200_never_reaches_it(through, body):
    # llama-cpp-python answers a body without messages with 200 (an empty prompt): the gateway
    # rejects it itself, OpenAI-shaped, and sends nothing upstream.
    with raw_server(_recording(response(200, COMPLETION))) as upstream:
        server = through(_contract(upstream.base_url))
        status, _, raw = raw_request(
            server.root_url,
            "POST",
            "/v1/chat/completions",
            orjson.dumps(body),
            {"content-type": "application/json"},
        )
        sent = upstream.requests
    assert status == 400
    error = error_of(raw)
    assert (error["type"], error["param"]) == ("invalid_request_error", "messages")
    assert sent == 0


def test_a_500_then_a_dropped_keep_alive_is_retried_and_never_leaks_into_the_next_call(through):
    # llama-cpp-python: 500 text/plain, then the keep-alive connection is closed without
    # "Connection: close". The 500 is retried (a policy attempt); the retry meets the dead
    # pooled connection and is resent on a new one (not an attempt). The next call succeeds
    # at its first attempt: the dropped connection is not turned into a "reset".
    first = response(500, b"Internal Server Error", content_type="text/plain; charset=utf-8")
    with raw_server(drops_reused_connections([first])) as upstream:
        server = through(_contract(upstream.base_url))
        status, headers, body = _chat(server.root_url, {})
        again_status, again_headers, _ = _chat(server.root_url, {})
        connections = upstream.connections
    assert status == 200, body
    assert json.loads(body)["choices"][0]["message"]["content"] == "pong"
    assert _verdict(headers) == ("2", "primary", "success")
    assert again_status == 200
    assert _verdict(again_headers) == ("1", "primary", "success")
    assert connections == 3  # each dropped keep-alive was replaced by a new connection


def test_a_500_text_plain_that_stays_is_a_clean_upstream_error(through):
    answer = response(500, b"Internal Server Error", content_type="text/plain; charset=utf-8")
    with raw_server(in_order([answer])) as upstream:
        server = through(_contract(upstream.base_url))
        status, headers, body = _chat(server.root_url, {})
        sent = upstream.requests
    assert status == 502
    error = error_of(body)
    assert error["type"] == "upstream_error"
    attempts, route, classification = _verdict(headers)
    assert (attempts, route) == ("2", "primary")
    assert classification.split("/")[1] == "upstream"
    assert sent == 2


def _sse(events: list[bytes], *, done: bool = True) -> bytes:
    body = b"".join(b"data: " + event + b"\n\n" for event in events)
    if done:
        body += b"data: [DONE]\n\n"
    head = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n"
        b"x-request-id: req-raw-1\r\n\r\n"
    )
    return head + body


def _chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
    choice: dict[str, Any] = {"index": 0, "delta": delta}
    if finish is not None:
        choice["finish_reason"] = finish
    doc = {
        "id": "chatcmpl-real-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "primary-model",
        "choices": [choice],
        **extra,
    }
    return orjson.dumps(doc)


USAGE = {"prompt_tokens": 12, "completion_tokens": 1, "total_tokens": 13}
#: llama-cpp-python: chunks carry "finish_reason": null, a final finish, no usage chunk even
#: when asked; the answer arrives within a millisecond.
LLAMA_STREAM = [
    orjson.dumps(
        {
            "id": "chatcmpl-llama-1",
            "model": "primary-model",
            "created": 1,
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}],
        }
    )
    for delta, finish in (({"role": "assistant"}, None), ({"content": "pong"}, None), ({}, "stop"))
]
#: LiteLLM 1.108.7: "finish_reason": null dropped from deltas; the usage chunk has
#: choices [{"index": 0, "delta": {}}] where OpenAI sends [].
LITELLM_STREAM = [
    _chunk({"content": "", "role": "assistant"}),
    _chunk({"content": "pong"}),
    _chunk({}, "stop"),
    _chunk({}, usage=USAGE),
]


@pytest.mark.parametrize(
    ("events", "include_usage", "expected"),
    [
        pytest.param(LLAMA_STREAM, False, 3, id="llama-no-usage-asked"),
        pytest.param(LLAMA_STREAM, True, 3, id="llama-usage-asked-none-sent"),
        pytest.param(LITELLM_STREAM, False, 3, id="litellm-usage-chunk-dropped"),
        pytest.param(LITELLM_STREAM, True, 4, id="litellm-usage-asked"),
    ],
)
def test_a_stream_reaches_the_sdk_as_the_server_would_send_it_to_that_request(
    through, events, include_usage, expected
):
    # The gateway always asks upstream for usage; the client sees the usage chunk only if it
    # asked, and never a chunk the server would not have sent it (LiteLLM's usage chunk with
    # a non-empty ``choices``, its usage removed, would be an extra empty chunk).
    with raw_server(in_order([_sse(events)], then_close=True)) as upstream:
        server = through(_contract(upstream.base_url))
        options = {"stream_options": {"include_usage": True}} if include_usage else {}
        client = openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)
        with (
            client,
            client.chat.completions.with_streaming_response.create(
                model="primary-model", messages=PROMPT, stream=True, **options
            ) as raw,
        ):
            headers = dict(raw.headers)
            chunks = list(raw.parse())
    assert len(chunks) == expected
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "pong"
    usage = [chunk.usage for chunk in chunks if chunk.usage is not None]
    sent_usage = events is LITELLM_STREAM and include_usage
    assert [u.total_tokens for u in usage] == ([13] if sent_usage else [])
    assert all(chunk.choices for chunk in chunks if chunk.usage is None)
    assert headers["x-chatcontract-route"] == "primary"


def test_a_one_millisecond_server_meets_the_shortest_deadline(through):
    # llama-cpp-python answers a short prompt in about 1 ms: the shortest deadline the
    # gateway accepts is met, nothing is reported as a timeout.
    with raw_server(in_order([response(200, COMPLETION)])) as upstream:
        server = through(_contract(upstream.base_url))
        statuses = [
            _chat(server.root_url, {}, **{"x-chatcontract-deadline-ms": "100"}) for _ in range(5)
        ]
    assert [status for status, _, _ in statuses] == [200] * 5
    assert {_verdict(headers) for _, headers, _ in statuses} == {("1", "primary", "success")}


# -- LiteLLM shapes --------------------------------------------------------------------------


def _litellm_error(status: int, message: str, type_: str) -> bytes:
    """A LiteLLM error: ``code`` is the HTTP status as a string, whatever the upstream said."""
    body = orjson.dumps(
        {"error": {"message": message, "type": type_, "param": None, "code": str(status)}}
    )
    return response(status, body, headers={"x-litellm-call-id": "c0ffee00-0000-4000-8000-1"})


QUOTA = _litellm_error(
    429,
    "litellm.RateLimitError: RateLimitError: OpenAIException - You exceeded your current quota, "
    "please check your plan and billing details.\n\nLiteLLM: model group 'local-model' failed "
    "with the error above. No fallback was attempted.",
    "throttling_error",
)
RATE_LIMIT = _litellm_error(
    429,
    "litellm.RateLimitError: RateLimitError: OpenAIException - Rate limit reached for "
    "gpt-4o-mini on requests per min (RPM): Limit 500, Used 500, Requested 1.",
    "throttling_error",
)
CONTEXT = _litellm_error(
    400,
    "litellm.ContextWindowExceededError: litellm.BadRequestError: ContextWindowExceededError: "
    "OpenAIException - This model's maximum context length is 8192 tokens.",
    "invalid_request_error",
)
NO_DB = _litellm_error(400, "No connected db.", "no_db_connection")
UNKNOWN_MODEL = _litellm_error(
    400,
    "/chat/completions: Invalid model name passed in model=primary-model. Call `/v1/models` "
    "to view available models for your key.",
    "invalid_request_error",
)


@pytest.mark.parametrize(
    ("answer", "status", "type_", "code", "attempts", "sent"),
    [
        pytest.param(QUOTA, 429, "insufficient_quota", "quota_exceeded", "1", 1, id="quota"),
        pytest.param(RATE_LIMIT, 429, "rate_limit_error", "rate_limited", "2", 2, id="rate-limit"),
        pytest.param(
            CONTEXT, 400, "invalid_request_error", "context_window_exceeded", "1", 1, id="context"
        ),
        pytest.param(UNKNOWN_MODEL, 502, "upstream_error", "unknown_model", "1", 1, id="model"),
        pytest.param(NO_DB, 400, "invalid_request_error", "invalid_request", "1", 1, id="no-db"),
    ],
)
@pytest.mark.parametrize("stream", [False, True], ids=["plain", "stream"])
def test_litellm_rewritten_codes_reach_the_client_by_what_the_message_says(
    through, answer, status, type_, code, attempts, sent, stream
):
    # LiteLLM puts the status as the code ("429", "400"): the preset's message rules keep a
    # quota a quota (not retried), a rate limit a rate limit (retried), a context overflow and
    # an unknown model what they are. A wrong key without LiteLLM's database is a 400
    # "no_db_connection": by the preset, a validation error the client sees as a 400.
    with raw_server(in_order([answer])) as upstream:
        server = through(_contract(upstream.base_url))
        got_status, headers, body = _chat(server.root_url, {"fallbacks": [], "stream": stream})
        upstream_requests = upstream.requests
    assert got_status == status
    error = error_of(body)
    assert (error["type"], error["code"]) == (type_, code)
    got_attempts, route, classification = _verdict(headers)
    assert (got_attempts, route) == (attempts, "primary")
    assert classification.endswith("/" + code)
    assert upstream_requests == sent
    assert PROVIDER_KEY not in body.decode() and PROVIDER_KEY not in json.dumps(headers)


def _rate_limited_window(window_s: float, answer_429: bytes) -> Any:
    """429 (``answer_429``) for every request within ``window_s`` of the first one, then 200:
    a provider's rate-limit window, as the simulator's ``rate_limit_retry_after`` has it."""

    async def handler(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: RawServer
    ) -> None:
        loop = asyncio.get_running_loop()
        while await read_request(reader, server) is not None:
            first = server.state.setdefault("first", loop.time())
            inside = loop.time() - first < window_s
            writer.write(answer_429 if inside else response(200, COMPLETION))
            await writer.drain()

    return handler


def test_litellm_renamed_retry_after_is_honoured(through):
    # LiteLLM passes the provider's retry-after on only as llm_provider-retry-after (measured:
    # "llm_provider-retry-after: 1", "llm_provider-retry-after-ms: 1000", no retry-after). A
    # retry after the contract's own short backoff lands inside the window and fails again;
    # waiting what the provider asked gets the answer.
    body = orjson.loads(RATE_LIMIT.split(b"\r\n\r\n", 1)[1])
    answer = response(
        429,
        orjson.dumps(body),
        headers={"llm_provider-retry-after": "1", "x-litellm-call-id": "c0ffee00-2"},
    )
    with raw_server(_rate_limited_window(1.0, answer)) as upstream:
        server = through(_contract(upstream.base_url))
        status, headers, raw = _chat(server.root_url, {"fallbacks": []})
        sent = upstream.requests
    assert status == 200, raw
    assert _verdict(headers) == ("2", "primary", "success")
    assert sent == 2


def test_litellm_no_db_wrong_key_is_an_upstream_auth_error_with_a_contract_rule(through):
    # The remedy docs/gateway.md gives: a contract rule on LiteLLM's error type. The client
    # then sees the gateway's own credential problem as a 502, not its request as invalid.
    rule = ErrorRule(name="litellm_no_db", category="auth", type="no_db_connection")
    with raw_server(in_order([NO_DB])) as upstream:
        contract = _contract(upstream.base_url)
        contract = replace(
            contract, errors=replace(contract.errors, rules=(rule, *contract.errors.rules))
        )
        server = through(contract)
        status, headers, body = _chat(server.root_url, {"fallbacks": []})
    assert status == 502
    error = error_of(body)
    assert (error["type"], error["code"]) == ("upstream_error", "litellm_no_db")
    assert _verdict(headers) == ("1", "primary", "api_error/auth/litellm_no_db")


def test_litellm_unknown_route_model_is_a_502_without_retry_or_fallback(through):
    # A route whose model LiteLLM does not know: 400 "Invalid model name" (code "400") is a
    # model failure of the gateway's own configuration. The decision table raises at once for
    # a model failure (no retry, no fallback: another route cannot fix a wrong model name),
    # and the client gets a 502, not a 400 blaming its request nor a 404 for a model the
    # gateway does serve.
    answers = [UNKNOWN_MODEL, response(200, COMPLETION)]
    with raw_server(_recording_in_order(answers)) as upstream:
        server = through(_contract(upstream.base_url, backup=True))
        status, headers, body = _chat(server.root_url, {"model": "primary-model"})
        models = [json.loads(sent)["model"] for sent in upstream.state["bodies"]]
    assert status == 502
    error = error_of(body)
    assert (error["type"], error["code"]) == ("upstream_error", "unknown_model")
    assert _verdict(headers) == ("1", "primary", "api_error/model/unknown_model")
    assert models == ["primary-model"]


def test_litellm_in_band_error_after_text_ends_the_stream_as_an_error(through):
    # LiteLLM forwards an upstream cut as data: {"error": {..., "type": null, "code": "500"}}
    # after the text, without [DONE]. The client's stream ends with the gateway's in-band
    # error event: the SDK raises, never a clean end with half an answer.
    cut = orjson.dumps(
        {
            "error": {
                "message": "litellm.APIConnectionError: APIConnectionError: OpenAIException - "
                "Connection error.",
                "type": None,
                "param": None,
                "code": "500",
            }
        }
    )
    events = [_chunk({"content": "", "role": "assistant"}), _chunk({"content": "Here is"}), cut]
    with raw_server(in_order([_sse(events, done=False)], then_close=True)) as upstream:
        server = through(_contract(upstream.base_url))
        status, headers, body = _chat(server.root_url, {"stream": True, "fallbacks": []})
        client = openai.OpenAI(base_url=server.base_url, api_key="unused", max_retries=0)
        received: list[str] = []
        with client, pytest.raises(openai.APIError) as raised:
            _read_stream(client, received)
    assert status == 200
    assert headers["x-chatcontract-classification"] == "streaming"
    text = body.decode()
    assert "Here is" in text
    assert "[DONE]" not in text
    last = [line for line in text.split("\n") if line.startswith("data: ")][-1]
    assert json.loads(last.removeprefix("data: "))["error"]["type"] == "stream_interrupted_error"
    assert "".join(received) == "Here is"
    assert "Connection error" in str(raised.value)


def _read_stream(client: openai.OpenAI, received: list[str]) -> None:
    """Read a streamed answer with the SDK, keeping the text of each chunk in ``received``."""
    stream = client.chat.completions.create(
        model="primary-model", messages=PROMPT, stream=True, extra_body={"fallbacks": []}
    )
    # list.extend appends as it iterates: what came before the error stays in ``received``.
    received.extend((c.choices[0].delta.content or "") if c.choices else "" for c in stream)
