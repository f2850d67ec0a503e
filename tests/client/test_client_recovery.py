"""Mid-stream recovery against simulators over real sockets (sync and async): a stream that
breaks after deltas reached the caller is continued on a route that declares a
``continuation`` (the caller sees one seamless answer), restarted when the caller passed
``on_restart``, else ``StreamInterrupted``. A refused continuation never hides the failure that
broke the stream. Timings run at the simulator's time scale."""

from __future__ import annotations

import itertools
import time
from dataclasses import replace

import pytest
from client_helpers import FALLBACK_ENV, LONG, AsyncSleeps, Sleeps, contract_for, env_for, trail

from chatcontract.client import AsyncChatClient, ChatClient, StreamInterrupted
from chatcontract.contract import FallbackRoute, Streaming, Timeouts
from chatcontract.simulator.answers import answer_for

FULL = answer_for(LONG).content
SCALE = 0.01
DEADLINE_S = 10.0
TIMEOUTS = Timeouts(
    connect_ms=1_000, first_byte_ms=2_000, first_token_ms=2_000, idle_ms=300, total_ms=10_000
)


def _contract(primary, backup, *, continuation="assistant_prefix", primary_continuation="none"):
    base = contract_for(primary.base_url, timeouts=TIMEOUTS, streaming=Streaming())
    route = FallbackRoute(
        name="backup", base_url=backup.base_url, auth_env=(FALLBACK_ENV,), continuation=continuation
    )
    return replace(base, fallbacks=(route,), continuation=primary_continuation)


class Reader:
    """What a caller printing deltas holds: cleared by ``on_restart``."""

    def __init__(self) -> None:
        self.text = ""
        self.restarts = 0

    def restart(self) -> None:
        self.restarts += 1
        self.text = ""


def _stream_sync(contract, key, reader: Reader | None):
    env = env_for(key, key)
    held = reader or Reader()
    with ChatClient.from_contract(contract, environ=env, sleep=Sleeps()) as client:
        on_restart = reader.restart if reader is not None else None
        with client.stream(LONG, deadline_s=DEADLINE_S, on_restart=on_restart) as stream:
            for delta in stream:
                held.text += delta.content
        return held.text, stream.result


async def _stream_async(contract, key, reader: Reader | None):
    env = env_for(key, key)
    held = reader or Reader()
    async with AsyncChatClient.from_contract(contract, environ=env, sleep=AsyncSleeps()) as client:
        on_restart = reader.restart if reader is not None else None
        async with client.stream(LONG, deadline_s=DEADLINE_S, on_restart=on_restart) as stream:
            async for delta in stream:
                held.text += delta.content
        return held.text, stream.result


async def _run(flavor, contract, key, reader=None):
    started = time.monotonic()
    if flavor == "sync":
        text, result = _stream_sync(contract, key, reader)
    else:
        text, result = await _stream_async(contract, key, reader)
    return text, result, time.monotonic() - started


FLAVORS = [pytest.param("sync", id="sync"), pytest.param("async", id="async")]

BREAKS = [
    pytest.param("cut_stream", "stream_dropped", {}, id="cut"),
    pytest.param("stall_mid_stream", "stream_stalled", {"delay_ms": 60_000}, id="stall"),
    pytest.param("malformed_chunk", "malformed_chunk", {}, id="malformed-event"),
]


@pytest.mark.anyio
@pytest.mark.parametrize("flavor", FLAVORS)
@pytest.mark.parametrize(("scenario", "code", "settings"), BREAKS)
async def test_a_broken_stream_is_continued_on_the_fallback_as_one_seamless_answer(
    sims, flavor, scenario, code, settings
):
    primary = sims(scenario, after_tokens=5, time_scale=SCALE, **settings)
    contract = _contract(primary, sims())
    text, result, elapsed = await _run(flavor, contract, primary.api_key)
    assert text == result.content == FULL
    assert trail(result.attempts) == [("primary", 1, code), ("backup", 2, None)]
    first, second = result.attempts
    assert second.request.message_count == first.request.message_count + 1  # the prefix
    assert result.route == "backup" and result.model
    assert elapsed < DEADLINE_S


@pytest.mark.anyio
@pytest.mark.parametrize("flavor", FLAVORS)
async def test_an_in_band_error_mid_answer_is_continued_to_the_full_text(sims, flavor):
    primary = sims("inband_error_chunk", after_tokens=4)
    contract = _contract(primary, sims())
    text, result, _ = await _run(flavor, contract, primary.api_key)
    assert text == result.content == FULL
    assert result.attempts[0].failure.kind == "api_error"
    assert result.route == "backup"


@pytest.mark.anyio
@pytest.mark.parametrize("flavor", FLAVORS)
async def test_without_a_continuation_on_restart_is_called_once_and_the_answer_starts_afresh(
    sims, flavor
):
    primary = sims("cut_stream", after_tokens=5)
    contract = _contract(primary, sims(), continuation="none")
    reader = Reader()
    text, result, _ = await _run(flavor, contract, primary.api_key, reader)
    # A connection dropped after deltas is not retried on the primary as if nothing had been
    # delivered: the break is recovered once, by a restart on the next route.
    assert [a.route for a in result.attempts] == ["primary", "backup"]
    assert reader.restarts == 1
    assert text == result.content == FULL  # what the caller holds after the restart
    counts = {a.request.message_count for a in result.attempts}
    assert counts == {1}  # the restart sends the original request
    assert [d.action for d in result.decisions] == ["fallback"]


@pytest.mark.anyio
@pytest.mark.parametrize("flavor", FLAVORS)
async def test_a_dropped_stream_on_the_only_route_restarts_once_then_is_interrupted(sims, flavor):
    primary = sims("cut_stream", after_tokens=5)
    contract = replace(_contract(primary, sims()), fallbacks=())
    reader = Reader()
    with pytest.raises(StreamInterrupted) as caught:
        await _run(flavor, contract, primary.api_key, reader)
    # One recovery for the break (the restart), none for the second break of the restart.
    assert reader.restarts == 1
    assert [a.route for a in caught.value.attempts] == ["primary", "primary"]
    assert [d.action for d in caught.value.decisions] == ["retry", "raise"]
    assert caught.value.failure.code == "stream_dropped"
    assert FULL.startswith(caught.value.partial_content) and caught.value.partial_content


@pytest.mark.anyio
@pytest.mark.parametrize("flavor", FLAVORS)
async def test_a_refused_continuation_restarts_for_a_caller_that_accepts_it(sims, flavor):
    primary = sims("cut_stream", after_tokens=5)
    contract = _contract(primary, sims("refuses_assistant_prefix"))
    reader = Reader()
    text, result, _ = await _run(flavor, contract, primary.api_key, reader)
    assert (reader.restarts, text, result.content) == (1, FULL, FULL)
    assert [(a.route, a.failure.category if a.failure else None) for a in result.attempts] == [
        ("primary", "network"),
        ("backup", "validation"),  # the prefix refused
        ("backup", None),  # the restart
    ]


def test_a_refused_continuation_never_hides_the_failure_that_broke_the_stream(sims):
    primary = sims("cut_stream", after_tokens=5)
    contract = _contract(primary, sims("refuses_assistant_prefix"))
    with pytest.raises(StreamInterrupted) as caught:
        _stream_sync(contract, primary.api_key, None)
    assert caught.value.failure.code == "stream_dropped"
    assert FULL.startswith(caught.value.partial_content) and caught.value.partial_content
    assert [a.route for a in caught.value.attempts] == ["primary", "backup"]


def test_a_caller_that_only_concatenates_never_gets_a_doubled_answer(sims):
    primary = sims("cut_stream", after_tokens=5)
    contract = _contract(primary, sims(), continuation="none")
    with pytest.raises(StreamInterrupted) as caught:
        _stream_sync(contract, primary.api_key, None)
    assert caught.value.failure.code == "stream_dropped"
    assert len(caught.value.attempts) == 1
    assert [d.action for d in caught.value.decisions] == ["raise"]


_keys = itertools.count()


async def _complete(flavor, contract, key):
    env = env_for(key, key)
    # A fresh state key: each run gets its own fault counts on the shared simulator.
    headers = {"X-Chatcontract-State-Key": f"recovery-{next(_keys)}"}
    if flavor == "sync":
        with ChatClient.from_contract(contract, environ=env, sleep=Sleeps()) as client:
            return client.complete(LONG, deadline_s=DEADLINE_S, headers=headers)
    async with AsyncChatClient.from_contract(contract, environ=env, sleep=AsyncSleeps()) as client:
        return await client.complete(LONG, deadline_s=DEADLINE_S, headers=headers)


COMPLETE_FAULTS = [
    pytest.param("cut_stream", ["primary", "primary", "backup"], id="cut-body"),
    pytest.param("reset_once", ["primary", "primary"], id="reset-once"),
    pytest.param("server_error_once", ["primary", "primary"], id="500-once"),
]


@pytest.mark.anyio
@pytest.mark.parametrize("flavor", FLAVORS)
@pytest.mark.parametrize(("scenario", "routes"), COMPLETE_FAULTS)
async def test_complete_always_recovers_the_full_answer(sims, flavor, scenario, routes):
    primary = sims(scenario, time_scale=SCALE)
    contract = _contract(primary, sims())
    result = await _complete(flavor, contract, primary.api_key)
    assert result.content == FULL
    assert [a.route for a in result.attempts] == routes
