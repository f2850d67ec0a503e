"""A streamed answer labelled as something else than ``text/event-stream`` (a relay or proxy
mislabelling it, or sending no ``Content-Type``) is read as the SSE stream it is: its deltas
reach the caller as they come, the call succeeds, and the label is recorded as a tolerated
contract violation (``http/contract/stream_content_type``). A provider that ignores
``stream`` and answers one JSON completion is still delivered as one delta, with no
violation."""

from __future__ import annotations

import anyio
import pytest
from client_helpers import PONG, contract_for, env_for

from chatcontract.client import AsyncChatClient, ChatClient
from chatcontract.contract import RetryPolicy
from raw_servers import COMPLETION, STREAM_EVENTS, STREAM_TEXT, gzip_events, labelled, raw_server

KEY = "sk-raw-server-key-0001"
NO_RETRY = RetryPolicy(
    max_attempts=1, backoff_initial_ms=1, backoff_max_ms=1, jitter=0.0, retry_after_cap_ms=1_000
)
LABELS = ["application/json", "text/plain; charset=utf-8", "application/octet-stream", None]


def _client(server, cls=ChatClient):
    contract = contract_for(server.base_url, retry=NO_RETRY, reserve_ms=0)
    return cls(contract, environ=env_for(KEY))


def _codes(result) -> tuple[list[str | None], list[str]]:
    return (
        [a.failure.code if a.failure else None for a in result.attempts],
        [v.code for v in result.violations],
    )


@pytest.mark.parametrize("label", LABELS, ids=["json", "text", "octet-stream", "none"])
def test_a_mislabelled_stream_is_streamed_and_its_label_recorded(label):
    with raw_server(labelled(label, STREAM_EVENTS)) as server, _client(server) as client:
        with client.stream(PONG, max_tokens=64) as stream:
            deltas = [delta.content for delta in stream]
        result = stream.result
    assert "".join(deltas) == STREAM_TEXT == result.content
    assert len(deltas) > 1  # delivered as it came, not as one whole answer
    assert result.finish_reason == "stop" and result.usage.total_tokens == 52
    assert _codes(result) == (["stream_content_type"], ["stream_content_type"])
    exchange = result.attempts[0]
    assert exchange.response.stream_verdict == "complete"
    assert exchange.response.content_type == label
    assert exchange.failure.kind == "http" and exchange.failure.category == "contract"


@pytest.mark.parametrize(
    "lead", [b"\n\n", b": keep-alive\n\n", b"\xef\xbb\xbf"], ids=["blank", "comment", "bom"]
)
def test_what_a_stream_may_begin_with_is_sse_too(lead):
    # The first event split across reads: ``da`` then the rest (the first bytes cannot tell).
    first = STREAM_EVENTS[0]
    pieces = [lead, first[:2], first[2:], *STREAM_EVENTS[1:]]
    with (
        raw_server(labelled("application/json", pieces)) as server,
        _client(server) as client,
        client.stream(PONG, max_tokens=64) as stream,
    ):
        text = "".join(delta.content for delta in stream)
    assert text == STREAM_TEXT
    assert _codes(stream.result) == (["stream_content_type"], ["stream_content_type"])


def test_a_compressed_mislabelled_stream_is_read_by_its_decoded_bytes():
    pieces = list(gzip_events(STREAM_EVENTS))
    handler = labelled("application/json", pieces, coding="gzip")
    with (
        raw_server(handler) as server,
        _client(server) as client,
        client.stream(PONG, max_tokens=64) as stream,
    ):
        text = "".join(delta.content for delta in stream)
    assert text == STREAM_TEXT
    assert _codes(stream.result) == (["stream_content_type"], ["stream_content_type"])


@pytest.mark.anyio
async def test_the_async_client_streams_a_mislabelled_stream_too():
    with raw_server(labelled("application/json", STREAM_EVENTS)) as server:
        async with _client(server, AsyncChatClient) as client:
            async with client.stream(PONG, max_tokens=64) as stream:
                deltas = [delta.content async for delta in stream]
            result = stream.result
    assert "".join(deltas) == STREAM_TEXT and len(deltas) > 1
    assert _codes(result) == (["stream_content_type"], ["stream_content_type"])
    await anyio.sleep(0)


@pytest.mark.parametrize("lead", [b"", b"\n  "], ids=["bare", "after-whitespace"])
def test_a_provider_ignoring_stream_is_still_one_whole_answer_without_a_violation(lead):
    with (
        raw_server(labelled("application/json", [lead, COMPLETION])) as server,
        _client(server) as client,
        client.stream(PONG, max_tokens=64) as stream,
    ):
        deltas = [delta.content for delta in stream]
    assert deltas == ["pong"]
    assert _codes(stream.result) == ([None], [])
    assert stream.result.attempts[0].response.stream_verdict is None


@pytest.mark.anyio
async def test_the_async_client_keeps_a_provider_ignoring_stream_as_it_was():
    with raw_server(labelled("application/json", [COMPLETION])) as server:
        async with (
            _client(server, AsyncChatClient) as client,
            client.stream(PONG, max_tokens=64) as stream,
        ):
            deltas = [delta.content async for delta in stream]
    assert deltas == ["pong"]
    assert _codes(stream.result) == ([None], [])
    await anyio.sleep(0)
