"""Classes that decide where to go next: a ``context_length`` refusal goes to the first later
route whose context window may be larger (never retried on the same route), else a clean
error; a ``content_policy`` refusal is one attempt and a clean error unless the contract opts
in to a fallback. Against simulators over real sockets, sync and async, complete() and stream().
"""

from __future__ import annotations

from dataclasses import replace

import pytest
from client_helpers import FALLBACK_ENV, PONG, AsyncSleeps, Sleeps, contract_for, env_for, trail

from chatcontract.client import AsyncChatClient, ChatClient, NonRetryableError
from chatcontract.contract import FallbackRoute


def _route(name, server, window):
    return FallbackRoute(
        name=name, base_url=server.base_url, auth_env=(FALLBACK_ENV,), context_window=window
    )


def _contract(primary, fallbacks, **policy_changes):
    base = contract_for(primary.base_url)
    return replace(
        base,
        context_window=8_192,
        fallbacks=tuple(fallbacks),
        policy=replace(base.policy, **policy_changes),
    )


def _call_sync(contract, key, *, stream):
    env = env_for(key, key)
    with ChatClient.from_contract(contract, environ=env, sleep=Sleeps()) as client:
        if not stream:
            return client.complete(PONG, max_tokens=16)
        with client.stream(PONG, max_tokens=16) as chat_stream:
            text = "".join(delta.content for delta in chat_stream)
        assert text == chat_stream.result.content
        return chat_stream.result


async def _call_async(contract, key, *, stream):
    env = env_for(key, key)
    async with AsyncChatClient.from_contract(contract, environ=env, sleep=AsyncSleeps()) as client:
        if not stream:
            return await client.complete(PONG, max_tokens=16)
        async with client.stream(PONG, max_tokens=16) as chat_stream:
            text = "".join([delta.content async for delta in chat_stream])
        assert text == chat_stream.result.content
        return chat_stream.result


MODES = [pytest.param(False, id="complete"), pytest.param(True, id="stream")]


def _larger_window_setup(sims):
    primary = sims("context_length")
    same = _route("same-window", sims("context_length"), 8_192)
    larger = _route("larger-window", sims(), 128_000)
    return _contract(primary, [same, larger]), primary.api_key


@pytest.mark.parametrize("stream", MODES)
def test_a_context_length_refusal_skips_routes_with_no_larger_window(sims, stream):
    contract, key = _larger_window_setup(sims)
    result = _call_sync(contract, key, stream=stream)
    assert (result.content, result.route) == ("pong", "larger-window")
    assert trail(result.attempts) == [
        ("primary", 1, "context_length_exceeded"),
        ("larger-window", 2, None),
    ]
    assert result.decisions[0].skip == 1


@pytest.mark.anyio
@pytest.mark.parametrize("stream", MODES)
async def test_the_async_client_skips_the_same_routes(sims, stream):
    contract, key = _larger_window_setup(sims)
    result = await _call_async(contract, key, stream=stream)
    assert [a.route for a in result.attempts] == ["primary", "larger-window"]


@pytest.mark.parametrize("stream", MODES)
def test_no_route_with_a_larger_window_is_a_clean_error_after_one_attempt(sims, stream):
    primary = sims("context_length")
    contract = _contract(primary, [_route("small", sims(), 4_096)])
    with pytest.raises(NonRetryableError) as caught:
        _call_sync(contract, primary.api_key, stream=stream)
    assert caught.value.failure.category == "context_length"
    assert [a.route for a in caught.value.attempts] == ["primary"]
    assert "no fallback route declares a larger one" in caught.value.decisions[0].reason


@pytest.mark.parametrize("stream", MODES)
def test_a_content_policy_refusal_is_one_attempt_and_a_clean_error(sims, stream):
    primary = sims("content_policy")
    contract = _contract(primary, [_route("backup", sims(), None)])
    with pytest.raises(NonRetryableError) as caught:
        _call_sync(contract, primary.api_key, stream=stream)
    assert caught.value.failure.category == "content_policy"
    assert len(caught.value.attempts) == 1


@pytest.mark.anyio
@pytest.mark.parametrize("stream", MODES)
async def test_a_contract_opting_in_sends_a_content_policy_refusal_to_the_fallback(sims, stream):
    primary = sims("content_policy")
    contract = _contract(primary, [_route("backup", sims(), None)], content_policy_fallback=True)
    result = await _call_async(contract, primary.api_key, stream=stream)
    assert (result.content, [a.route for a in result.attempts]) == ("pong", ["primary", "backup"])
