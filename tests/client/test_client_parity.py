"""Sync and async clients drive the same ``CallPlan``: same scenario → same attempts,
decisions and outcome."""

import httpx2
import pytest
from client_helpers import (
    LONG,
    PONG,
    AsyncSleeps,
    RecordingSink,
    Sleeps,
    contract_for,
    env_for,
    trail,
)

from chatcontract.client import (
    AsyncChatClient,
    BudgetExceededError,
    CallFailedError,
    ChatClient,
    DeadlineExhaustedError,
    KillSwitchError,
    NonRetryableError,
    StreamInterrupted,
)
from chatcontract.contract import CostCaps, RetryPolicy, Streaming

JSON = {"content-type": "application/json"}
COMPLETION = (
    b'{"id":"chatcmpl-1","object":"chat.completion","created":1774412483,'
    b'"model":"gpt-4o-mini","choices":[{"index":0,"message":{"role":"assistant",'
    b'"content":"pong"},"finish_reason":"stop"}],'
    b'"usage":{"prompt_tokens":12,"completion_tokens":1,"total_tokens":13}}'
)
UPSTREAM = b'{"error":{"message":"upstream busy","type":"server_error","code":"busy"}}'
INVALID = b'{"error":{"message":"bad field","type":"x","code":"invalid_request"}}'

# (route, attempt) -> response: deterministic whatever the order of calls.
SCRIPTS = {
    "upstream-then-rate-limit-then-ok": {
        ("primary", 1): (500, {}, UPSTREAM),
        ("primary", 2): (502, {}, UPSTREAM),
        ("smaller-model", 3): (429, {"retry-after-ms": "20"}, b""),
        ("smaller-model", 4): (200, {}, COMPLETION),
    },
    "validation": {("primary", 1): (500, {}, INVALID)},
    "broken-200-everywhere": {
        ("primary", 1): (200, {}, b'{"id":"x","choices":[]}'),
        ("smaller-model", 2): (200, {}, b"{not json"),
    },
}


def scripted(script):
    def handler(request):
        meta = request.extensions["chatcontract"]
        status, headers, body = script[(meta["route"], meta["attempt"])]
        return httpx2.Response(status, headers={**JSON, **headers}, content=body)

    return httpx2.MockTransport(handler)


def summary(outcome):
    """What both shells must agree on."""
    if isinstance(outcome, CallFailedError):
        attempts, decisions, final = outcome.attempts, outcome.decisions, type(outcome).__name__
    else:
        attempts, decisions, final = outcome.attempts, outcome.decisions, outcome.content
    return (trail(attempts), [(d.action, round(d.delay_s, 3), d.stop) for d in decisions], final)


def run_sync(contract, environ, **kwargs):
    sink, sleeps = RecordingSink(), Sleeps()
    with ChatClient.from_contract(
        contract, environ=environ, sleep=sleeps, telemetry_sinks=[sink], rng=lambda: 0.5, **kwargs
    ) as client:
        try:
            outcome = client.complete(PONG, max_tokens=16)
        except CallFailedError as error:
            outcome = error
    return summary(outcome), sleeps.calls, [type(e).__name__ for e in sink.events]


async def run_async(contract, environ, **kwargs):
    sink, sleeps = RecordingSink(), AsyncSleeps()
    async with AsyncChatClient.from_contract(
        contract, environ=environ, sleep=sleeps, telemetry_sinks=[sink], rng=lambda: 0.5, **kwargs
    ) as client:
        try:
            outcome = await client.complete(PONG, max_tokens=16)
        except CallFailedError as error:
            outcome = error
    return summary(outcome), sleeps.calls, [type(e).__name__ for e in sink.events]


@pytest.mark.anyio
@pytest.mark.parametrize("name", list(SCRIPTS))
async def test_scripted_scenarios_give_the_same_attempts_and_decisions(name):
    contract = contract_for(
        "http://provider.test/v1",
        model_fallback=True,
        retry=RetryPolicy(max_attempts=2, backoff_initial_ms=10, jitter=0.5),
    )
    environ = env_for("cc-key-parity-1")
    sync = run_sync(contract, environ, transport=scripted(SCRIPTS[name]))
    async_ = await run_async(contract, environ, transport=scripted(SCRIPTS[name]))
    assert sync == async_
    assert sync[0][0]  # at least one attempt happened


@pytest.mark.anyio
async def test_the_upstream_script_decides_retry_fallback_retry_then_succeeds():
    contract = contract_for(
        "http://provider.test/v1",
        model_fallback=True,
        retry=RetryPolicy(max_attempts=2, backoff_initial_ms=10, jitter=0.0),
    )
    (attempts, decisions, content), sleeps, events = await run_async(
        contract,
        env_for("k-parity"),
        transport=scripted(SCRIPTS["upstream-then-rate-limit-then-ok"]),
    )
    assert [a[2] for a in attempts] == ["busy", "busy", "rate_limited", None]
    assert [d[0] for d in decisions] == ["retry", "fallback", "retry"]
    assert sleeps == [0.01, 0.02] and content == "pong"
    assert events.count("FallbackActivated") == 1 and events[-1] == "RetrySucceeded"


@pytest.mark.anyio
@pytest.mark.parametrize("scenario", ["quota_exhausted", "server_error", "empty_choices"])
async def test_simulator_scenarios_with_a_fallback_server_match(sims, scenario):
    primary, backup = sims(scenario), sims()
    contract = contract_for(primary.base_url, fallback_url=backup.base_url)
    environ = env_for(primary.api_key, backup.api_key)
    sync = run_sync(contract, environ)
    async_ = await run_async(contract, environ)
    assert sync == async_
    assert sync[0][0][-1] == ("backup", len(sync[0][0]), None)


async def stream_async(client, messages):
    async with client.stream(messages, max_tokens=64) as stream:
        deltas = [delta.content async for delta in stream]
    return deltas, stream.result


def stream_sync(client, messages):
    with client.stream(messages, max_tokens=64) as stream:
        deltas = [delta.content for delta in stream]
    return deltas, stream.result


@pytest.mark.anyio
async def test_streams_fall_back_before_the_first_delta_in_both_shells(sims):
    primary, backup = sims("cut_stream"), sims()
    contract = contract_for(
        primary.base_url, fallback_url=backup.base_url, streaming=Streaming(include_usage=False)
    )
    environ = env_for(primary.api_key, backup.api_key)
    with ChatClient.from_contract(contract, environ=environ) as client:
        sync_deltas, sync_result = stream_sync(client, PONG)
    async with AsyncChatClient.from_contract(contract, environ=environ) as client:
        async_deltas, async_result = await stream_async(client, PONG)
    assert sync_deltas == async_deltas == ["pong"]
    assert (
        trail(sync_result.attempts)
        == trail(async_result.attempts)
        == [("primary", 1, "stream_dropped"), ("primary", 2, "stream_dropped"), ("backup", 3, None)]
    )


@pytest.mark.anyio
async def test_async_stream_interruption_carries_the_partial_content(sims):
    server = sims("cut_stream")
    contract = contract_for(server.base_url)
    async with AsyncChatClient.from_contract(contract, environ=env_for(server.api_key)) as c:
        with pytest.raises(StreamInterrupted) as caught:
            await stream_async(c, LONG)
    with (
        ChatClient.from_contract(contract, environ=env_for(server.api_key)) as client,
        pytest.raises(StreamInterrupted) as sync_caught,
    ):
        stream_sync(client, LONG)
    assert caught.value.partial_content == sync_caught.value.partial_content != ""
    assert caught.value.failure == sync_caught.value.failure


@pytest.mark.anyio
async def test_async_deadline_matches_the_sync_one(sims):
    import time

    server = sims("no_response")
    contract = contract_for(server.base_url, model_fallback=True, reserve_ms=400)
    started = time.monotonic()
    async with AsyncChatClient.from_contract(contract, environ=env_for(server.api_key)) as c:
        with pytest.raises(DeadlineExhaustedError) as caught:
            await c.complete(PONG, max_tokens=16, deadline_s=1.0)
    # Not before the deadline (1.0 s, less the scheduler's slack), and not far past it: the
    # upper bound leaves a loaded machine 1.5 s, as the other deadline tests do.
    assert 0.75 < time.monotonic() - started < 1.0 + 1.5
    assert [a.route for a in caught.value.attempts] == ["primary", "smaller-model"]


@pytest.mark.anyio
async def test_async_guards_refuse_before_sending():
    requests = []

    def handler(request):
        requests.append(request)
        return httpx2.Response(200, headers=JSON, content=COMPLETION)

    contract = contract_for("http://provider.test/v1", caps=CostCaps(max_tokens_per_call=8))
    async with AsyncChatClient.from_contract(
        contract, environ=env_for("k-1"), transport=httpx2.MockTransport(handler)
    ) as client:
        with pytest.raises(BudgetExceededError):
            await client.complete(PONG, max_tokens=9)
        with pytest.raises(NonRetryableError):
            client.stream([{"role": "nobody", "content": "x"}])
    kill = env_for("k-1", CHATCONTRACT_KILL_SWITCH="1")
    async with AsyncChatClient.from_contract(
        contract, environ=kill, transport=httpx2.MockTransport(handler)
    ) as client:
        with pytest.raises(KillSwitchError):
            await client.complete(PONG, max_tokens=4)
    assert requests == []


@pytest.mark.anyio
async def test_leaving_a_stream_early_releases_it_in_both_shells(sims):
    server = sims()
    contract = contract_for(server.base_url)
    environ = env_for(server.api_key)
    async with AsyncChatClient.from_contract(contract, environ=environ) as client:
        async with client.stream(LONG, max_tokens=64) as stream:
            async for _ in stream:
                break
        again = await client.complete(PONG, max_tokens=16)
        with pytest.raises(RuntimeError, match=CLOSED_EARLY):
            _ = stream.result
    with ChatClient.from_contract(contract, environ=environ) as client:
        with client.stream(LONG, max_tokens=64) as sync_stream:
            next(sync_stream)
            with pytest.raises(RuntimeError, match="has not finished: iterate it to the end"):
                _ = sync_stream.result  # still open: reading on gives it
        sync_again = client.complete(PONG, max_tokens=16)
        with pytest.raises(RuntimeError, match=CLOSED_EARLY):
            _ = sync_stream.result  # closed: reading on is no longer possible
    assert again.content == sync_again.content == "pong"


#: A stream closed before its end has no result, and its error does not ask to read on.
CLOSED_EARLY = r"closed before its end, so it has no result"
