"""``ChatClient`` asks for ``Accept-Encoding: identity``, but a server (or a CDN before it) may
compress its answer anyway: the observer decodes it before judging, so a valid answer is a
success, not ``invalid_json`` or ``malformed_chunk`` (and no fallback)."""

from __future__ import annotations

import gzip

import anyio
import pytest
from client_helpers import PONG, contract_for, env_for

from chatcontract.client import AsyncChatClient, CallFailedError, ChatClient
from chatcontract.contract import RetryPolicy
from raw_servers import COMPLETION, STREAM_TEXT, coded_answer, gzips_anyway, raw_server

KEY = "sk-raw-server-key-0001"
NO_RETRY = RetryPolicy(
    max_attempts=1, backoff_initial_ms=1, backoff_max_ms=1, jitter=0.0, retry_after_cap_ms=1_000
)


def _client(server, cls=ChatClient):
    contract = contract_for(server.base_url, retry=NO_RETRY, reserve_ms=0)
    return cls(contract, environ=env_for(KEY))


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
def test_an_answer_compressed_although_identity_was_asked_for_is_a_success(stream):
    with raw_server(gzips_anyway()) as server, _client(server) as client:
        if stream:
            with client.stream(PONG, max_tokens=64) as chunks:
                result = chunks.until_done()
        else:
            result = client.complete(PONG, max_tokens=64)
    assert result.content == (STREAM_TEXT if stream else "pong")
    assert [a.failure for a in result.attempts] == [None]
    assert server.state["encodings"] == ["identity"]


@pytest.mark.anyio
async def test_the_async_client_judges_a_compressed_answer_too():
    with raw_server(gzips_anyway()) as server:
        async with _client(server, AsyncChatClient) as client:
            result = await client.complete(PONG, max_tokens=64)
            async with client.stream(PONG, max_tokens=64) as chunks:
                streamed = await chunks.until_done()
    assert (result.content, streamed.content) == ("pong", STREAM_TEXT)
    assert [a.failure for a in (*result.attempts, *streamed.attempts)] == [None, None]
    await anyio.sleep(0)


def test_an_x_gzip_answer_httpx2_cannot_read_is_unsupported_not_an_unreadable_success():
    # httpx2 leaves x-gzip as it came: the client could not read the answer, so the attempt
    # names the coding (not a success that then turns out unreadable).
    handler = coded_answer(lambda: iter([gzip.compress(COMPLETION)]), encoding="x-gzip")
    with (
        raw_server(handler) as server,
        _client(server) as client,
        pytest.raises(CallFailedError) as caught,
    ):
        client.complete(PONG, max_tokens=64)
    failure = caught.value.attempts[0].failure
    assert (failure.kind, failure.category, failure.code) == (
        "http",
        "contract",
        "unsupported_encoding",
    )
