"""ChatClient against hand-written faulty servers: the call deadline holds against a dripped
response head or a trickled body, and a dropped keep-alive connection is replaced inside the
transport without costing a policy attempt.

Timings are behaviour, not benchmarks: each bound is the deadline plus a generous tolerance,
far below what the server would take if the deadline did not fire.
"""

from __future__ import annotations

import time

import anyio
import orjson
import pytest
from client_helpers import PONG, contract_for, env_for

from chatcontract.client import AsyncChatClient, CallFailedError, ChatClient, StreamInterrupted
from chatcontract.contract import RetryPolicy, Timeouts
from chatcontract.transport.observer import MAX_BODY_BYTES
from raw_servers import (
    SERVER_ERROR,
    content_every,
    dripping_head,
    drops_reused_connections,
    endless_body,
    gzips_when_accepted,
    raw_server,
    response,
    trickling_body,
)

KEY = "sk-raw-server-key-0001"
#: Silent gaps of up to 10 s are allowed: only the call deadline can end a drip.
SLOW_GAPS = Timeouts(connect_ms=2_000, first_byte_ms=10_000, first_token_ms=10_000, total_ms=30_000)
ONE_RETRY = RetryPolicy(
    max_attempts=2, backoff_initial_ms=1, backoff_max_ms=1, jitter=0.0, retry_after_cap_ms=1_000
)
NO_RETRY = RetryPolicy(
    max_attempts=1, backoff_initial_ms=1, backoff_max_ms=1, jitter=0.0, retry_after_cap_ms=1_000
)
DEADLINE_S = 1.5
TOLERANCE_S = 1.5

FAULTS = pytest.mark.parametrize(
    ("handler", "stream"),
    [
        (dripping_head(0.1), False),
        (dripping_head(0.1), True),
        (trickling_body(0.1), False),
        (trickling_body(0.1, content_type="text/event-stream"), True),
        (trickling_body(5.0), False),
    ],
    ids=["dripped-head", "dripped-head-stream", "trickled-body", "trickled-stream", "slow-body"],
)


def _client(server, cls=ChatClient, retry=NO_RETRY):
    contract = contract_for(server.base_url, retry=retry, timeouts=SLOW_GAPS, reserve_ms=0)
    return cls.from_contract(contract, environ=env_for(KEY))


def _call(client, stream):
    if stream:
        with client.stream(PONG, deadline_s=DEADLINE_S, max_tokens=16) as chunks:
            chunks.until_done()
    else:
        client.complete(PONG, deadline_s=DEADLINE_S, max_tokens=16)


async def _acall(client, stream):
    if stream:
        async with client.stream(PONG, deadline_s=DEADLINE_S, max_tokens=16) as chunks:
            await chunks.until_done()
    else:
        await client.complete(PONG, deadline_s=DEADLINE_S, max_tokens=16)


@FAULTS
def test_the_call_deadline_holds_against_a_dripping_server(handler, stream):
    with raw_server(handler) as server, _client(server) as client:
        started = time.monotonic()
        with pytest.raises(CallFailedError) as caught:
            _call(client, stream)
        elapsed = time.monotonic() - started
    assert elapsed < DEADLINE_S + TOLERANCE_S
    failures = [a.failure for a in caught.value.attempts]
    assert failures
    assert all(f is not None and f.kind == "transport" for f in failures)
    assert all(f is not None and f.category == "timeout" for f in failures)


@pytest.mark.anyio
@FAULTS
async def test_the_async_call_deadline_holds_against_a_dripping_server(handler, stream):
    with raw_server(handler) as server:
        async with _client(server, AsyncChatClient) as client:
            started = anyio.current_time()
            with pytest.raises(CallFailedError) as caught:
                await _acall(client, stream)
            elapsed = anyio.current_time() - started
    assert elapsed < DEADLINE_S + TOLERANCE_S
    failure = caught.value.attempts[-1].failure
    assert failure is not None
    assert (failure.kind, failure.category) == ("transport", "timeout")


@pytest.mark.parametrize("how", ["close", "reset"], ids=["closed", "reset"])
def test_a_dropped_keep_alive_is_not_a_policy_attempt(how):
    handler = drops_reused_connections([response(500, SERVER_ERROR)], how=how)
    with raw_server(handler) as server, _client(server, retry=ONE_RETRY) as client:
        result = client.complete(PONG, max_tokens=16)
        assert server.requests == 3
    assert result.content == "pong"
    # The 500, then the success: the resend on a new connection is inside the transport.
    assert [a.ok for a in result.attempts] == [False, True]
    assert [a.attempt for a in result.attempts] == [1, 2]
    assert result.attempts[1].stale_connection_replaced


@pytest.mark.anyio
async def test_the_async_client_replaces_a_dropped_keep_alive_too():
    handler = drops_reused_connections([response(500, SERVER_ERROR)])
    with raw_server(handler) as server:
        async with _client(server, AsyncChatClient, retry=ONE_RETRY) as client:
            result = await client.complete(PONG, max_tokens=16)
        assert server.requests == 3
    assert [a.ok for a in result.attempts] == [False, True]
    assert result.attempts[1].stale_connection_replaced


_UNCLOSED_APP = """
from chatcontract import ChatClient
from chatcontract.contract import load_preset
from chatcontract.simulator import SimulatorServer
import dataclasses, gc

with SimulatorServer(flavor="cometapi", scenario="{scenario}") as server:
    preset = load_preset("cometapi")
    contract = dataclasses.replace(
        preset, endpoint=dataclasses.replace(preset.endpoint, base_url=server.base_url)
    )
    client = ChatClient.from_contract(contract, environ={{"COMETAPI_KEY": server.api_key}})
    try:
        print(client.complete([{{"role": "user", "content": "hi"}}], max_tokens=8).content)
    except Exception as exc:
        print("failed", type(exc).__name__)
    del client  # never closed
    gc.collect()
"""


@pytest.mark.parametrize("scenario", ["ok", "server_error"], ids=["success", "failure"])
def test_a_client_never_closed_leaves_no_socket_and_prints_nothing(scenario):
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-W", "error::ResourceWarning", "-c",
         _UNCLOSED_APP.format(scenario=scenario)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip()
    assert done.stderr == ""


#: Data comes every 0.2 s, well inside the idle limit: only the call deadline can end it.
FLOWING = Timeouts(
    connect_ms=2_000, first_byte_ms=10_000, first_token_ms=10_000, idle_ms=1_000, total_ms=30_000
)


def _deadline_stream(contract, use_async):
    if use_async:

        async def acall():
            async with AsyncChatClient.from_contract(contract, environ=env_for(KEY)) as client:
                await _acall(client, stream=True)

        anyio.run(acall)
        return
    with ChatClient.from_contract(contract, environ=env_for(KEY)) as client:
        _call(client, stream=True)


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_a_stream_cut_by_the_deadline_while_data_flows_is_named_deadline_not_a_stall(use_async):
    # Content arrives every 0.2 s (idle_ms is 1 s): the stream never stalls, the deadline
    # ends it. The failure names the deadline, never "no stream data within idle_ms".
    with raw_server(content_every(0.2)) as server:
        contract = contract_for(server.base_url, retry=NO_RETRY, timeouts=FLOWING, reserve_ms=0)
        started = time.monotonic()
        with pytest.raises(StreamInterrupted) as caught:
            _deadline_stream(contract, use_async)
        elapsed = time.monotonic() - started
    assert elapsed < DEADLINE_S + TOLERANCE_S
    error = caught.value
    assert error.partial_content  # content had been flowing
    assert (error.failure.kind, error.failure.category, error.failure.code) == (
        "transport",
        "timeout",
        "deadline",
    )
    assert "idle" not in str(error)
    (attempt,) = error.attempts
    assert attempt.failure is not None and attempt.failure.code == "deadline"


#: A complete SSE answer: ``pong``, ``finish_reason``, usage, ``[DONE]``.
PONG_STREAM = (
    b"".join(
        b"data: " + orjson.dumps(chunk) + b"\n\n"
        for chunk in (
            {
                "id": "chatcmpl-gz",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": "gpt-4.1-nano",
                "choices": [{"index": 0, "delta": {"content": "pong"}, "finish_reason": None}],
            },
            {
                "id": "chatcmpl-gz",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": "gpt-4.1-nano",
                "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 12, "completion_tokens": 1, "total_tokens": 13},
            },
        )
    )
    + b"data: [DONE]\n\n"
)


@pytest.mark.parametrize("stream", [False, True], ids=["complete", "stream"])
def test_a_server_that_compresses_what_the_client_accepts_gets_a_readable_request(stream):
    # The answer is parsed from the bytes on the wire: the client must not invite a gzip body
    # (httpx2's default Accept-Encoding does), or a valid answer is failed as invalid JSON.
    with raw_server(gzips_when_accepted(PONG_STREAM)) as server, _client(server) as client:
        if stream:
            with client.stream(PONG, max_tokens=16) as chunks:
                result = chunks.until_done()
        else:
            result = client.complete(PONG, max_tokens=16)
    assert result.content == "pong"
    assert [a.failure for a in result.attempts] == [None]
    assert server.state["encodings"] == ["identity"]


@pytest.mark.anyio
async def test_the_async_client_asks_for_an_uncompressed_answer_too():
    with raw_server(gzips_when_accepted(PONG_STREAM)) as server:
        async with _client(server, AsyncChatClient) as client:
            result = await client.complete(PONG, max_tokens=16)
            async with client.stream(PONG, max_tokens=16) as chunks:
                streamed = await chunks.until_done()
    assert (result.content, streamed.content) == ("pong", "pong")
    assert server.state["encodings"] == ["identity", "identity"]


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_a_body_without_end_is_read_no_further_than_the_observer_keeps(use_async):
    # 256 MiB announced and sent as fast as read: the client stops just past MAX_BODY_BYTES
    # (memory stays bounded whatever the deadline allows) and names the size, not "invalid JSON".
    with raw_server(endless_body()) as server:
        if use_async:

            async def acall():
                async with _client(server, AsyncChatClient) as client:
                    await client.complete(PONG, max_tokens=16)

            with pytest.raises(CallFailedError) as caught:
                anyio.run(acall)
        else:
            with _client(server) as client, pytest.raises(CallFailedError) as caught:
                client.complete(PONG, max_tokens=16)
    failure = caught.value.failure
    assert (failure.kind, failure.category, failure.code) == (
        "parser",
        "contract",
        "body_too_large",
    )
    (attempt,) = caught.value.attempts
    assert attempt.response is not None
    assert MAX_BODY_BYTES < attempt.response.body_bytes < MAX_BODY_BYTES + 4 * 1024 * 1024
