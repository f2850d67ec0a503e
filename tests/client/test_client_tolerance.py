"""Tolerant at run time: a complete answer (a ``finish_reason`` seen, usable content) that
breaks only its framing or accounting succeeds, the broken clause recorded as a violation on
the result and in its attempt's Exchange; an unusable answer still fails over."""

from __future__ import annotations

import json

import httpx2
import pytest
from client_helpers import PONG, RecordingSink, Sleeps, contract_for, env_for, trail

from chatcontract.client import AsyncChatClient, ChatClient, ChatResult
from chatcontract.contract import Streaming
from chatcontract.telemetry.events import FallbackActivated
from raw_servers import in_order, raw_server, response

OVER_MAX = (
    b'{"id":"chatcmpl-1","object":"chat.completion","created":1774412483,'
    b'"model":"gpt-4.1-nano","choices":[{"index":0,"message":{"role":"assistant",'
    b'"content":"pong"},"finish_reason":"stop"}],'
    b'"usage":{"prompt_tokens":12,"completion_tokens":40,"total_tokens":52}}'
)


def _contract(server, backup):
    return contract_for(
        server.base_url,
        fallback_url=backup.base_url,
        streaming=Streaming(include_usage=True),
    )


def _sync(server, backup, *, stream: bool, sink: RecordingSink) -> ChatResult:
    env = env_for(server.api_key, backup.api_key)
    with ChatClient.from_contract(
        _contract(server, backup), environ=env, sleep=Sleeps(), telemetry_sinks=[sink]
    ) as client:
        if not stream:
            return client.complete(PONG, max_tokens=16)
        with client.stream(PONG, max_tokens=16) as chat_stream:
            text = "".join(delta.content for delta in chat_stream)
        assert text == chat_stream.result.content
        return chat_stream.result


async def _async(server, backup, *, stream: bool, sink: RecordingSink) -> ChatResult:
    env = env_for(server.api_key, backup.api_key)
    async with AsyncChatClient.from_contract(
        _contract(server, backup), environ=env, telemetry_sinks=[sink]
    ) as client:
        if not stream:
            return await client.complete(PONG, max_tokens=16)
        async with client.stream(PONG, max_tokens=16) as chat_stream:
            text = "".join([delta.content async for delta in chat_stream])
        assert text == chat_stream.result.content
        return chat_stream.result


CASES = [
    pytest.param("no_done", True, "stream_no_done", id="stream-without-done"),
    pytest.param("missing_usage", True, "missing_usage", id="stream-missing-usage"),
    pytest.param("missing_usage", False, "missing_usage", id="complete-missing-usage"),
    pytest.param("usage_mismatch", True, "usage_mismatch", id="stream-usage-mismatch"),
    pytest.param("usage_mismatch", False, "usage_mismatch", id="complete-usage-mismatch"),
]


def _check_tolerated(result: ChatResult, sink: RecordingSink, code: str) -> None:
    assert (result.content, result.finish_reason, result.route) == ("pong", "stop", "primary")
    assert [v.code for v in result.violations] == [code]
    assert trail(result.attempts) == [("primary", 1, code)]
    # The existing telemetry path: the attempt's Exchange carries the violation; no failover.
    assert [e.failure.code for e in sink.exchanges if e.failure] == [code]
    assert sink.of(FallbackActivated) == []


@pytest.mark.parametrize(("scenario", "stream", "code"), CASES)
def test_a_complete_answer_breaking_only_framing_or_usage_succeeds_with_a_violation(
    sims, scenario, stream, code
):
    sink = RecordingSink()
    result = _sync(sims(scenario), sims(), stream=stream, sink=sink)
    _check_tolerated(result, sink, code)


@pytest.mark.anyio
@pytest.mark.parametrize(("scenario", "stream", "code"), CASES)
async def test_the_async_client_tolerates_the_same_complete_answers(sims, scenario, stream, code):
    sink = RecordingSink()
    result = await _async(sims(scenario), sims(), stream=stream, sink=sink)
    _check_tolerated(result, sink, code)


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
def test_an_empty_answer_is_not_complete_and_still_falls_back(sims, stream):
    sink = RecordingSink()
    result = _sync(sims("empty_content"), sims(), stream=stream, sink=sink)
    assert (result.content, result.route, result.violations) == ("pong", "backup", ())
    assert [a.route for a in result.attempts] == ["primary", "backup"]
    assert result.attempts[0].failure.category == "content"


def test_usage_over_max_tokens_is_a_violation_and_the_answer_is_returned():
    contract = contract_for("http://provider.test/v1")
    transport = httpx2.MockTransport(
        lambda _: httpx2.Response(
            200, content=OVER_MAX, headers={"content-type": "application/json"}
        )
    )
    with ChatClient.from_contract(
        contract, environ=env_for("cc-secret-key-0001"), transport=transport, sleep=Sleeps()
    ) as client:
        result = client.complete(PONG, max_tokens=16)
    assert (result.content, len(result.attempts)) == ("pong", 1)
    assert [v.code for v in result.violations] == ["usage_exceeds_max_tokens"]


def _event(body: dict) -> bytes:
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def _chunk(delta: dict, finish: str | None = None) -> bytes:
    return _event(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": 1774412483,
            "model": "gpt-4.1-nano",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }
    )


USAGE_CHUNK = _event(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1774412483,
        "model": "gpt-4.1-nano",
        "choices": [],
        "usage": {"prompt_tokens": 12, "completion_tokens": 1, "total_tokens": 13},
    }
)
#: A whole answer, ``[DONE]``, then one more chunk, all in one body (one read).
AFTER_DONE_STREAM = (
    _chunk({"role": "assistant", "content": "pong"})
    + _chunk({}, "stop")
    + USAGE_CHUNK
    + b"data: [DONE]\n\n"
    + _chunk({"content": "late"})
)


@pytest.fixture
def after_done_server():
    with raw_server(
        in_order([response(200, AFTER_DONE_STREAM, content_type="text/event-stream")])
    ) as server:
        yield server


def test_data_after_done_is_a_violation_and_the_answer_is_returned(after_done_server):
    sink = RecordingSink()
    contract = contract_for(after_done_server.base_url, streaming=Streaming(include_usage=True))
    with (
        ChatClient.from_contract(
            contract,
            environ=env_for("cc-secret-key-0001"),
            sleep=Sleeps(),
            telemetry_sinks=[sink],
        ) as client,
        client.stream(PONG, max_tokens=16) as chat_stream,
    ):
        text = "".join(delta.content for delta in chat_stream)
    result = chat_stream.result
    assert (text, result.content, result.route) == ("pong", "pong", "primary")
    assert [v.code for v in result.violations] == ["data_after_done"]
    assert [e.failure.code for e in sink.exchanges if e.failure] == ["data_after_done"]
    assert sink.of(FallbackActivated) == []


def test_instrument_records_data_after_done_on_the_exchange(after_done_server):
    import openai

    from chatcontract import instrument

    seen = []
    http = instrument(sinks=[seen.append], event_log=False)
    sdk = openai.OpenAI(
        base_url=after_done_server.base_url, api_key="sk-x", max_retries=0, http_client=http
    )
    chunks = sdk.chat.completions.create(
        model="gpt-4.1-nano",
        messages=[{"role": "user", "content": "ping"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "pong"
    (exchange,) = seen
    assert exchange.failure is not None and exchange.failure.code == "data_after_done"
    assert exchange.response.finish_reason == "stop"
