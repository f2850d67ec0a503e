"""Silent and slow routes: a route silent past its first-byte, first-token or idle limit goes
straight to the next route (never retried), the failure named for the limit that ran out;
keep-alives never reset a limit, data events reset the idle one."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx2
import pytest
from client_helpers import LONG, PONG, AsyncSleeps, Sleeps, contract_for, env_for, trail

from chatcontract.client import (
    AsyncChatClient,
    CallFailedError,
    ChatClient,
    ChatResult,
    StreamInterrupted,
)
from chatcontract.contract import Streaming, Timeouts

PING = b": PING\n\n"


def _event(content: str | None = None, finish: str | None = None) -> bytes:
    delta = {} if content is None else {"content": content}
    chunk = {
        "id": "c1",
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return f"data: {json.dumps(chunk)}\n\n".encode()


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _paced(clock: FakeClock, steps: list[tuple[float, bytes]]) -> Iterator[bytes]:
    """The body: each piece after ``seconds`` on the fake clock."""
    for seconds, data in steps:
        clock.now += seconds
        yield data


def _paced_client(steps: list[tuple[float, bytes]], clock: FakeClock, idle_ms: int) -> ChatClient:
    timeouts = Timeouts(
        connect_ms=1_000,
        first_byte_ms=5_000,
        first_token_ms=5_000,
        idle_ms=idle_ms,
        total_ms=60_000,
    )
    contract = contract_for(
        "http://provider.test/v1",
        timeouts=timeouts,
        streaming=Streaming(include_usage=False, require_done=False),
    )

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(
            200,
            headers={"content-type": "text/event-stream"},
            content=_paced(clock, steps),
        )

    return ChatClient.from_contract(
        contract,
        environ=env_for("cc-secret-key-0001"),
        transport=httpx2.MockTransport(handler),
        sleep=Sleeps(),
        clock=clock,
    )


def test_keep_alives_after_content_do_not_reset_the_idle_limit():
    clock = FakeClock()
    steps = [(0.0, _event("Hel"))] + [(0.2, PING)] * 10 + [(0.0, _event("lo", "stop"))]
    with (
        _paced_client(steps, clock, idle_ms=500) as client,
        pytest.raises(StreamInterrupted) as caught,
        client.stream(PONG) as stream,
    ):
        list(stream)
    failure = caught.value.failure
    assert (failure.category, failure.code) == ("timeout", "stream_stalled")
    assert failure.message.startswith("no stream data within idle_ms")
    assert failure.message.endswith("(500 ms)")
    assert caught.value.partial_content == "Hel"


def test_data_events_within_the_idle_limit_keep_a_slow_stream_alive():
    clock = FakeClock()
    words = ["a", "b", "c", "d", "e", "f"]
    steps = [(0.4, _event(word)) for word in words] + [(0.4, _event(None, "stop"))]
    with _paced_client(steps, clock, idle_ms=500) as client, client.stream(PONG) as stream:
        delivered = "".join(delta.content for delta in stream)
    assert delivered == stream.result.content == "abcdef"
    assert clock.now - 100.0 > 0.5 * 3  # the whole answer took far longer than one idle limit


# -- against the simulator: sync and async, complete() and stream() -------------------------

SILENT = Timeouts(
    connect_ms=1_000, first_byte_ms=300, first_token_ms=300, idle_ms=300, total_ms=10_000
)


def _contract(primary, backup):
    return contract_for(
        primary.base_url,
        fallback_url=backup.base_url,
        timeouts=SILENT,
        streaming=Streaming(include_usage=True),
    )


def _read_sync(primary, backup, *, stream: bool) -> ChatResult:
    env = env_for(primary.api_key, backup.api_key)
    with ChatClient.from_contract(
        _contract(primary, backup), environ=env, sleep=Sleeps()
    ) as client:
        if not stream:
            return client.complete(PONG, max_tokens=16)
        with client.stream(PONG, max_tokens=16) as chat_stream:
            text = "".join(delta.content for delta in chat_stream)
        assert text == chat_stream.result.content
        return chat_stream.result


async def _read_async(primary, backup, *, stream: bool) -> ChatResult:
    env = env_for(primary.api_key, backup.api_key)
    async with AsyncChatClient.from_contract(_contract(primary, backup), environ=env) as client:
        if not stream:
            return await client.complete(PONG, max_tokens=16)
        async with client.stream(PONG, max_tokens=16) as chat_stream:
            text = "".join([delta.content async for delta in chat_stream])
        assert text == chat_stream.result.content
        return chat_stream.result


SILENCES = [
    pytest.param("no_response", False, "first_byte_timeout", id="complete-no-byte"),
    pytest.param("no_response", True, "first_byte_timeout", id="stream-no-byte"),
    pytest.param("late_first_token", True, "first_token_timeout", id="stream-late-token"),
]


def _check_straight_to_backup(result: ChatResult, code: str) -> None:
    assert (result.content, result.route) == ("pong", "backup")
    assert trail(result.attempts) == [("primary", 1, code), ("backup", 2, None)]
    # Not waited for in full: the silent attempt ended at its limit, far before the delay.
    assert result.attempts[0].timings.total_ms < 3_000


@pytest.mark.parametrize(("scenario", "stream", "code"), SILENCES)
def test_a_silent_route_goes_straight_to_the_next_route(sims, scenario, stream, code):
    result = _read_sync(sims(scenario, delay_ms=5_000), sims(), stream=stream)
    _check_straight_to_backup(result, code)


@pytest.mark.anyio
@pytest.mark.parametrize(("scenario", "stream", "code"), SILENCES)
async def test_the_async_client_leaves_a_silent_route_the_same_way(sims, scenario, stream, code):
    result = await _read_async(sims(scenario, delay_ms=5_000), sims(), stream=stream)
    _check_straight_to_backup(result, code)


#: A first-token limit below the first-byte one: a stream's head waits no longer than it.
TOKEN_FIRST = Timeouts(
    connect_ms=1_000, first_byte_ms=2_000, first_token_ms=300, idle_ms=300, total_ms=20_000
)


def _read_sync_or_stream(client: ChatClient, *, stream: bool) -> None:
    if not stream:
        client.complete(PONG, max_tokens=16)
        return
    with client.stream(PONG) as chat:
        list(chat)


@pytest.mark.parametrize("stream", [True, False], ids=["stream", "complete"])
def test_a_silent_head_is_named_for_the_limit_that_ran_out(sims, stream):
    """A stream's head is read with ``stream_read_ms`` (here the first-token limit, 300 ms):
    the silence is ``first_token_timeout`` with that limit, not the first-byte limit (2 s)
    that never ran; a non-streamed call is still cut at its first-byte limit."""
    silent = sims("no_response", delay_ms=30_000)
    contract = contract_for(silent.base_url, timeouts=TOKEN_FIRST)
    env = env_for(silent.api_key)
    with (
        ChatClient.from_contract(contract, environ=env, sleep=Sleeps()) as client,
        pytest.raises(CallFailedError) as caught,  # nothing was delivered
    ):
        _read_sync_or_stream(client, stream=stream)
    failure = caught.value.failure
    if stream:
        assert (failure.code, failure.message) == (
            "first_token_timeout",
            "no content token within first_token_ms (300 ms)",
        )
    else:
        assert (failure.code, failure.message) == (
            "first_byte_timeout",
            "no response byte within first_byte_ms (2000 ms)",
        )


def test_a_stall_after_content_is_named_for_the_idle_limit(sims):
    stalled = sims("stall_mid_stream", delay_ms=3_000)
    contract = contract_for(stalled.base_url, timeouts=SILENT)
    with (
        ChatClient.from_contract(
            contract, environ=env_for(stalled.api_key), sleep=Sleeps()
        ) as client,
        pytest.raises(StreamInterrupted) as caught,
        client.stream(LONG, max_tokens=64) as stream,
    ):
        list(stream)
    assert caught.value.failure.code == "stream_stalled"
    assert caught.value.partial_content


#: A read timeout far past the idle limit: only the idle limit can end the stall in time.
IDLE_ONLY = Timeouts(
    connect_ms=1_000, first_byte_ms=8_000, first_token_ms=8_000, idle_ms=300, total_ms=20_000
)


async def _read_stream(client: AsyncChatClient) -> None:
    async with client.stream(LONG, max_tokens=64) as stream:
        async for _ in stream:
            pass


@pytest.mark.anyio
async def test_on_the_aiohttp_wire_a_silent_socket_after_content_is_cut_at_the_idle_limit(sims):
    from chatcontract.transport._aiohttp import AiohttpTransport

    stalled = sims("stall_mid_stream", delay_ms=6_000)
    contract = contract_for(stalled.base_url, timeouts=IDLE_ONLY)
    wire = AiohttpTransport()
    try:
        async with AsyncChatClient.from_contract(
            contract, environ=env_for(stalled.api_key), transport=wire, sleep=AsyncSleeps()
        ) as client:
            with pytest.raises(StreamInterrupted) as caught:
                await _read_stream(client)
    finally:
        await wire.aclose()
    assert caught.value.failure.code == "stream_stalled"
    assert caught.value.partial_content
    # Cut at the idle limit (0.3 s), not at the read timeout (8 s) nor the stall's end (6 s).
    assert caught.value.attempts[-1].timings.total_ms < 4_000
