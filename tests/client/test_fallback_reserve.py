"""The fallback reserve (``policy.fallback_reserve_ms``) is kept for a route that can still
help: before a stream's first token, any later route can (it starts afresh); once text reached
the caller, only one that continues the stream, or a restart the caller takes. When none can,
the reserve is released at the first token and a healthy stream runs to the call's deadline
instead of being cut at ``deadline - reserve`` and raised as ``StreamInterrupted``."""

from __future__ import annotations

from dataclasses import replace

import httpx2
import pytest
from client_helpers import FALLBACK_ENV, LONG, Sleeps, env_for

from chatcontract.client import AsyncChatClient, ChatClient, ChatResult
from chatcontract.client._core import ClientCore
from chatcontract.client._guard import AttemptDeadlineError, AttemptWatch
from chatcontract.client._plan import Send
from chatcontract.contract import FallbackRoute, Timeouts, load_preset

#: A 2 s call keeping 1 s for its fallback; silence limits at the deadline (only the deadline
#: and its reserve can end an attempt here).
TIMEOUTS = Timeouts(
    connect_ms=1_000, first_byte_ms=2_000, first_token_ms=2_000, idle_ms=2_000, total_ms=2_000
)
#: A healthy stream taking 1.5 s: past the primary's share with the reserve kept (1 s), within
#: the call's deadline.
SLOW_MS = 1_500


def _contract(primary_url: str, backup_url: str, continuation: str = "none"):
    base = load_preset("cometapi")
    backup = FallbackRoute(
        name="backup",
        base_url=backup_url,
        auth_env=(FALLBACK_ENV,),
        continuation=continuation,  # type: ignore[arg-type]
    )
    policy = replace(base.policy, timeouts=TIMEOUTS, fallback_reserve_ms=1_000)
    return replace(
        base,
        endpoint=replace(base.endpoint, base_url=primary_url),
        fallbacks=(backup,),
        policy=policy,
    )


def _stream_sync(contract, env, **options) -> tuple[str, ChatResult]:
    with ChatClient.from_contract(contract, environ=env, sleep=Sleeps()) as client:
        with client.stream(LONG, max_tokens=64, **options) as stream:
            text = "".join(delta.content for delta in stream)
        return text, stream.result


async def _stream_async(contract, env) -> tuple[str, ChatResult]:
    async with AsyncChatClient.from_contract(contract, environ=env) as client:
        async with client.stream(LONG, max_tokens=64) as stream:
            text = "".join([delta.content async for delta in stream])
        return text, stream.result


def _check_whole_on_primary(text: str, result: ChatResult) -> None:
    assert text == result.content and result.content
    assert result.route == "primary"
    assert [attempt.failure for attempt in result.attempts] == [None]
    # It outlived the share the reserve left it (1 s): released at the first token.
    assert result.attempts[0].timings.total_ms > 1_100


def test_a_healthy_stream_no_later_route_can_take_over_runs_to_the_call_deadline(sims):
    primary, backup = sims("slow", delay_ms=SLOW_MS), sims()
    env = env_for(primary.api_key, backup.api_key)
    _check_whole_on_primary(*_stream_sync(_contract(primary.base_url, backup.base_url), env))


@pytest.mark.anyio
async def test_the_async_client_releases_the_reserve_the_same_way(sims):
    primary, backup = sims("slow", delay_ms=SLOW_MS), sims()
    env = env_for(primary.api_key, backup.api_key)
    contract = _contract(primary.base_url, backup.base_url)
    _check_whole_on_primary(*await _stream_async(contract, env))


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("scenario", "settings", "route"),
    [
        pytest.param("slow", {"delay_ms": SLOW_MS}, "primary", id="released"),
        pytest.param("late_first_token", {"delay_ms": 30_000}, "backup", id="kept-before-text"),
    ],
)
async def test_on_the_aiohttp_wire_the_reserve_is_released_the_same_way(
    sims, scenario, settings, route
):
    from chatcontract.transport._aiohttp import AiohttpTransport

    primary, backup = sims(scenario, **settings), sims()
    env = env_for(primary.api_key, backup.api_key)
    wire = AiohttpTransport()
    try:
        async with (
            AsyncChatClient.from_contract(
                _contract(primary.base_url, backup.base_url), environ=env, transport=wire
            ) as client,
            client.stream(LONG, max_tokens=64) as stream,
        ):
            text = "".join([delta.content async for delta in stream])
    finally:
        await wire.aclose()
    result = stream.result
    assert text == result.content and result.route == route
    if route == "primary":
        _check_whole_on_primary(text, result)
    else:
        cut = result.attempts[0].failure
        assert cut is not None and cut.code == "deadline"
        assert "before its first token" in cut.message


def test_the_reserve_is_kept_for_a_fallback_that_continues_the_stream(sims):
    """A later route that continues the stream can use the reserve: the primary is cut at its
    share and the backup finishes the answer (the caller gets it whole)."""
    primary, backup = sims("slow", delay_ms=SLOW_MS), sims()
    env = env_for(primary.api_key, backup.api_key)
    contract = _contract(primary.base_url, backup.base_url, continuation="assistant_prefix")
    text, result = _stream_sync(contract, env)
    assert text == result.content
    assert result.route == "backup"
    cut = result.attempts[0].failure
    assert cut is not None and cut.code == "deadline"
    # Named for the share, not for the call's deadline, which had the reserve left.
    assert cut.message == (
        "the attempt's share of the call deadline ran out "
        "(the fallback reserve is left for the next route)"
    )


def test_a_non_streamed_attempt_cut_at_its_share_says_so(sims):
    primary, backup = sims("slow", delay_ms=SLOW_MS), sims()
    env = env_for(primary.api_key, backup.api_key)
    with ChatClient.from_contract(
        _contract(primary.base_url, backup.base_url), environ=env, sleep=Sleeps()
    ) as client:
        result = client.complete(LONG, max_tokens=64)
    assert result.route == "backup"
    cut = result.attempts[0].failure
    assert cut is not None
    assert (cut.code, cut.message) == (
        "deadline",
        "the attempt's share of the call deadline ran out "
        "(the fallback reserve is left for the next route)",
    )


def test_the_reserve_is_kept_for_a_restart_the_caller_takes(sims):
    primary, backup = sims("slow", delay_ms=SLOW_MS), sims()
    env = env_for(primary.api_key, backup.api_key)
    restarts: list[int] = []
    contract = _contract(primary.base_url, backup.base_url)
    with ChatClient.from_contract(contract, environ=env, sleep=Sleeps()) as client:
        with client.stream(LONG, max_tokens=64, on_restart=lambda: restarts.append(1)) as stream:
            for _ in stream:
                pass
        result = stream.result
    assert result.route == "backup"
    assert len(restarts) == 1


@pytest.mark.parametrize(
    ("scenario", "settings"),
    [
        pytest.param("no_response", {"delay_ms": 30_000}, id="no-head"),
        pytest.param("late_first_token", {"delay_ms": 30_000}, id="keep-alives-only"),
    ],
)
def test_before_its_first_token_an_attempt_still_keeps_the_reserve(sims, scenario, settings):
    """No token by the attempt's share (1 s): cut there, named for the share (not for a
    silence limit that never ran), and the backup answers within the reserve."""
    primary, backup = sims(scenario, **settings), sims()
    env = env_for(primary.api_key, backup.api_key)
    text, result = _stream_sync(_contract(primary.base_url, backup.base_url), env)
    assert text == result.content and result.route == "backup"
    cut = result.attempts[0].failure
    assert cut is not None
    assert (cut.kind, cut.category, cut.code) == ("transport", "timeout", "deadline")
    assert "share of the call deadline ran out before its first token" in cut.message
    assert result.attempts[0].timings.total_ms < 1_900


# -- the watch, on a hand-turned clock --------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _watch(clock: Clock, *, first_token_s: float | None = 5.0) -> AttemptWatch:
    return AttemptWatch(
        clock=clock, budget_s=10.0, first_token_s=first_token_s, idle_s=2.0, token_budget_s=3.0
    )


def test_before_the_first_token_the_watch_keeps_to_the_shorter_share():
    clock = Clock()
    watch = _watch(clock)
    assert watch.limits_reads
    assert watch.read_limit() == ("deadline", 3.0)  # the share comes before the 5 s limit
    assert watch.check() == "ok" and not watch.reserve_passed()
    clock.now += 3.0
    assert watch.check() == "deadline" and watch.reserve_passed()


def test_a_first_token_limit_before_the_share_is_the_one_named():
    clock = Clock()
    watch = AttemptWatch(
        clock=clock, budget_s=10.0, first_token_s=1.0, idle_s=2.0, token_budget_s=3.0
    )
    assert watch.read_limit() == ("first_token", 1.0)
    clock.now += 4.0  # both passed: the first-token limit came first
    assert watch.check() == "first_token"


def test_without_a_first_token_limit_the_share_still_bounds_the_reads():
    clock = Clock()
    watch = _watch(clock, first_token_s=None)
    assert watch.read_limit() == ("deadline", 3.0)


def test_once_text_flows_the_whole_budget_applies():
    clock = Clock()
    watch = _watch(clock)
    clock.now += 1.0
    watch.token_seen = True
    watch.data_seen()
    clock.now += 1.5
    watch.data_seen()
    clock.now += 1.0  # 3.5 s in: past the share, within the budget and the idle limit
    assert watch.check() == "ok" and not watch.reserve_passed()
    assert watch.read_limit() == ("idle", 1.0)
    clock.now += 6.5
    assert watch.check() == "deadline"


def test_a_read_cut_at_the_share_raises_the_attempt_deadline():
    watch = _watch(Clock())
    error = watch.timed_out("deadline", httpx2.Request("POST", "http://127.0.0.1/"))
    assert isinstance(error, AttemptDeadlineError)
    assert watch.fired == "deadline"


# -- which attempts release the reserve at their first token (the plan, no I/O) ----------------


def _core(contract) -> ClientCore:
    return ClientCore(
        contract,
        model=None,
        environ=env_for("cc-secret-key-0001", "cc-secret-key-0002"),
        telemetry_sinks=(),
        clock=Clock(),
        rng=lambda: 0.5,
        wall_clock=lambda: 0.0,
    )


def _first_send(contract, *, accepts_restart: bool = False) -> Send:
    call = _core(contract).prepare(
        LONG, {}, stream=True, deadline_s=None, headers=None, accepts_restart=accepts_restart
    )
    step = call.plan.start()
    assert isinstance(step, Send)
    return step


URL = "http://provider.test/v1"


def test_the_plan_releases_the_reserve_only_where_no_route_can_take_over():
    released = _first_send(_contract(URL, URL))
    assert (released.budget_s, released.delivered_budget_s) == (1.0, 2.0)
    continued = _first_send(_contract(URL, URL, continuation="assistant_prefix"))
    assert (continued.budget_s, continued.delivered_budget_s) == (1.0, None)
    restarted = _first_send(_contract(URL, URL), accepts_restart=True)
    assert (restarted.budget_s, restarted.delivered_budget_s) == (1.0, None)
    alone = _first_send(replace(_contract(URL, URL), fallbacks=()))
    assert (alone.budget_s, alone.delivered_budget_s) == (2.0, None)
    contract = _contract(URL, URL)
    no_reserve = replace(contract, policy=replace(contract.policy, fallback_reserve_ms=0))
    assert _first_send(no_reserve).delivered_budget_s is None


def test_the_watch_and_the_transport_get_the_released_budget():
    contract = _contract(URL, URL)
    core = _core(contract)
    step = _first_send(contract)
    streamed = core.watch(step, stream=True)
    assert (streamed.ends_at, streamed.token_ends_at) == (102.0, 101.0)
    assert core.extensions(step, streamed)["chatcontract"]["deadline_s"] == 2.0
    assert core.timeouts(step, stream=True)["read"] == 1.0  # the head waits within the share
    whole = core.watch(step, stream=False)  # a non-streamed answer: the share throughout
    assert (whole.ends_at, whole.token_ends_at) == (101.0, None)
    assert core.extensions(step, whole)["chatcontract"]["deadline_s"] == 1.0
