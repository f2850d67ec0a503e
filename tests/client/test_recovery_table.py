"""Every recovery scenario of issue 12, as a user runs it: the ``cometapi`` preset with one
fallback route (another model on a second simulator, declaring ``assistant_prefix``), over real
sockets, for ``complete()`` and ``stream(on_restart=...)``, sync and async.

The simulators and the contract's timings (timeouts, backoff, retry-after cap, reserve, breaker
cool-down) are scaled by one factor, so the table runs in seconds; the benchmark
(``benchmarks/bench_recovery.py``) runs it at full scale. Each run checks the exact full answer,
the attempts per route, the spacing of attempts, the elapsed time against the deadline and the
model reported.

Spacing is read from what every call records: each attempt's ``Exchange`` (``started_at``,
``timings.total_ms``) and the ``Decision`` after each failed attempt. Only bounds the policy
implies are asserted: lower bounds (a retry never starts before its wait, never inside the
server's retry-after window, a silent route is left at its limit, an open breaker sends one
trial per cool-down) and upper bounds against the deadline; never a measured duration.
"""

from __future__ import annotations

import itertools
import math
import time
from dataclasses import dataclass, field, replace
from typing import Any

import anyio
import pytest
from client_helpers import RecordingSink

from chatcontract.client import AsyncChatClient, CallFailedError, ChatClient
from chatcontract.contract import Contract, FallbackRoute, load_preset
from chatcontract.policy import parse_retry_after
from chatcontract.simulator.answers import answer_for
from chatcontract.simulator.scenarios import FLAP_EVERY, OUTAGE_MS
from chatcontract.telemetry.events import BreakerChanged

SCALE = 0.05
PROMPT = [{"role": "user", "content": "Describe the gateway in one sentence."}]
FULL = answer_for(PROMPT).content
PRIMARY_MODEL = "gpt-4.1-nano"
BACKUP_MODEL = "gpt-4o-mini"
BACKUP_ENV = "CHATCONTRACT_TEST_BACKUP_KEY"
#: Slack between the clocks an attempt's start (wall clock) and its duration (perf counter)
#: are read from, and the sleep (monotonic): far below any wait asserted.
EPS_S = 0.002
#: An attempt's first-token and idle limits run from its start (its watch), a little before
#: the transport starts timing it (``total_ms``): the request is built and sent in between,
#: which under a loaded machine has taken 7 ms. Far below the limits asserted (hundreds).
SETUP_SLACK_S = 0.025
_keys = itertools.count()


def scaled_preset(scale: float) -> Contract:
    """The ``cometapi`` preset with every duration of its policy times ``scale``."""
    base = load_preset("cometapi")
    policy = base.policy
    t, retry = policy.timeouts, policy.retry

    def ms(value: int, floor: int = 1) -> int:
        return max(floor, round(value * scale))

    return replace(
        base,
        policy=replace(
            policy,
            timeouts=replace(
                t,
                connect_ms=ms(t.connect_ms),
                first_byte_ms=ms(t.first_byte_ms),
                first_token_ms=ms(t.first_token_ms),
                idle_ms=ms(t.idle_ms),
                total_ms=ms(t.total_ms),
            ),
            retry=replace(
                retry,
                backoff_initial_ms=ms(retry.backoff_initial_ms),
                backoff_max_ms=ms(retry.backoff_max_ms),
                retry_after_cap_ms=ms(retry.retry_after_cap_ms),
            ),
            fallback_reserve_ms=ms(policy.fallback_reserve_ms, floor=0),
            breaker=replace(policy.breaker, cooldown_ms=ms(policy.breaker.cooldown_ms, 100)),
        ),
    )


@dataclass(frozen=True)
class Case:
    """One scenario: what the primary plays, what the call must end in, per mode.

    ``routes``: attempts per route for ``complete`` and ``stream``; ``spacing``: the policy's
    rule for the wait after the first failed attempt (``retry_after``, ``backoff``,
    ``immediate``, or the limit a silent route is left at: ``first_byte``, ``first_token``,
    ``idle``), per mode; ``None``: no wait (a fallback at once, or no failure).
    """

    primary: str
    routes: tuple[dict[str, int], dict[str, int]]
    spacing: tuple[str | None, str | None] = (None, None)
    backup: str = "ok"
    settings: dict[str, Any] = field(default_factory=dict)
    windows: tuple[int | None, int | None] = (None, None)
    clean_error: str | None = None  # the failure category of a clean error
    restarts: int = 0  # on_restart calls in stream mode

    def answered_by(self, mode: str) -> str:
        return "backup" if "backup" in self.routes[MODES.index(mode)] else "primary"


P1, P2 = {"primary": 1}, {"primary": 2}
P1B1, P2B1 = {"primary": 1, "backup": 1}, {"primary": 2, "backup": 1}
MODES = ("complete", "stream")

CASES = {
    "429-retry-after": Case("rate_limit_retry_after", (P2, P2), ("retry_after",) * 2),
    "429-retry-after-ms": Case("rate_limit_retry_after_ms", (P2, P2), ("retry_after",) * 2),
    "429-no-retry-after": Case("rate_limit_once", (P2, P2), ("backoff",) * 2),
    "429-always": Case("rate_limit", (P2B1, P2B1), ("backoff",) * 2),
    "500-once": Case("server_error_once", (P2, P2), ("backoff",) * 2),
    "503-always-fallback-model": Case("upstream_unavailable", (P2B1, P2B1), ("backoff",) * 2),
    "reset-before-headers": Case("reset_once", (P2, P2), ("immediate",) * 2),
    "silence": Case("no_response", (P1B1, P1B1), ("first_byte",) * 2),
    "late-first-token": Case("late_first_token", (P1B1, P1B1), ("first_byte", "first_token")),
    "cut-after-n-tokens": Case(
        "cut_stream", (P2B1, P1B1), ("immediate", None), settings={"after_tokens": 5}
    ),
    "stall-after-n-tokens": Case(
        "stall_mid_stream", (P1B1, P1B1), ("first_byte", "idle"), settings={"after_tokens": 5}
    ),
    "malformed-nth-event": Case("malformed_chunk", (P1B1, P1B1), settings={"after_tokens": 5}),
    "no-done": Case("no_done", (P1, P1)),
    "400-context-length": Case("context_length", (P1B1, P1B1), windows=(8_192, 128_000)),
    "400-content-policy": Case("content_policy", (P1, P1), clean_error="content_policy"),
    "fallback-refuses-assistant-prefix": Case(
        "cut_stream",
        (P2B1, {"primary": 1, "backup": 2}),
        ("immediate", None),
        backup="refuses_assistant_prefix",
        settings={"after_tokens": 5},
        restarts=1,
    ),
}


def _contract(primary, backup, case: Case) -> Contract:
    base = scaled_preset(SCALE)
    route = FallbackRoute(
        name="backup",
        model=BACKUP_MODEL,
        base_url=backup.base_url,
        auth_env=(BACKUP_ENV,),
        continuation="assistant_prefix",
        context_window=case.windows[1],
    )
    return replace(
        base,
        endpoint=replace(base.endpoint, base_url=primary.base_url),
        context_window=case.windows[0],
        fallbacks=(route,),
    )


@dataclass
class Run:
    """What one call left: the text the caller holds, the result or error, restarts, time."""

    text: str = ""
    restarts: int = 0
    result: Any = None
    error: CallFailedError | None = None
    elapsed_s: float = 0.0

    def restart(self) -> None:
        self.restarts += 1
        self.text = ""

    @property
    def attempts(self) -> tuple[Any, ...]:
        return (self.error or self.result).attempts

    @property
    def decisions(self) -> tuple[Any, ...]:
        return (self.error or self.result).decisions


async def _call(client, flavor: str, mode: str, headers: dict[str, str]) -> Run:
    run = Run()
    started = time.monotonic()
    try:
        if mode == "complete":
            if flavor == "sync":
                run.result = client.complete(PROMPT, headers=headers)
            else:
                run.result = await client.complete(PROMPT, headers=headers)
            run.text = run.result.content
        elif flavor == "sync":
            with client.stream(PROMPT, headers=headers, on_restart=run.restart) as stream:
                for delta in stream:
                    run.text += delta.content
            run.result = stream.result
        else:
            async with client.stream(PROMPT, headers=headers, on_restart=run.restart) as stream:
                async for delta in stream:
                    run.text += delta.content
            run.result = stream.result
    except CallFailedError as error:
        run.error = error
    run.elapsed_s = time.monotonic() - started
    return run


def _client(flavor: str, contract: Contract, primary, backup, sinks=()):
    environ = {"COMETAPI_KEY": primary.api_key, BACKUP_ENV: backup.api_key}
    if flavor == "sync":
        return ChatClient.from_contract(contract, environ=environ, telemetry_sinks=sinks)
    return AsyncChatClient.from_contract(contract, environ=environ, telemetry_sinks=sinks)


async def _run_case(sims, flavor: str, mode: str, case: Case) -> tuple[Run, Contract]:
    primary = sims(case.primary, time_scale=SCALE, **case.settings)
    backup = sims(case.backup, time_scale=SCALE)
    contract = _contract(primary, backup, case)
    # A fresh state key: this run's fault counts and windows are its own.
    headers = {"X-Chatcontract-State-Key": f"scenarios-{next(_keys)}"}
    client = _client(flavor, contract, primary, backup)
    if flavor == "sync":
        with client:
            return await _call(client, flavor, mode, headers), contract
    async with client:
        return await _call(client, flavor, mode, headers), contract


def _end(attempt) -> float:
    return attempt.started_at + attempt.timings.total_ms / 1000.0


def _per_route(attempts) -> dict[str, int]:
    counts: dict[str, int] = {}
    for attempt in attempts:
        counts[attempt.route] = counts.get(attempt.route, 0) + 1
    return counts


def check_spacing(attempts, decisions, contract: Contract, *, failed_call: bool) -> None:
    """The spacing every call keeps, whatever the scenario: one decision after each failed
    attempt (every attempt but the one that answered); each attempt starts after the previous
    one ended plus the decided wait; a retry is on the same route and never inside the
    retry-after window the server asked for."""
    assert len(decisions) == len(attempts) - (0 if failed_call else 1)
    for index, (before, after) in enumerate(itertools.pairwise(attempts)):
        decision = decisions[index]
        assert decision.action in ("retry", "fallback")
        gap = after.started_at - _end(before)
        assert gap >= decision.delay_s - EPS_S, (index, gap, decision)
        if decision.action == "retry":
            assert after.route == before.route
        else:
            assert after.route != before.route
            assert decision.delay_s == 0  # a fallback starts at once
        headers = before.response.rate_limit_headers if before.response is not None else {}
        asked = parse_retry_after(headers, now=before.started_at)
        if decision.action == "retry" and asked is not None:
            cap_s = contract.policy.retry.retry_after_cap_ms / 1000.0
            assert asked <= cap_s  # a longer window is never retried inside (decide)
            assert decision.delay_s >= asked
            assert after.started_at >= _end(before) + asked - EPS_S


def check_rule(spacing: str | None, attempts, decisions, contract: Contract) -> None:
    """The wait after the first failed attempt, as the case's policy rule says."""
    policy = contract.policy
    if spacing is None:
        assert all(decision.delay_s == 0 for decision in decisions)
        return
    first, decision = attempts[0], decisions[0]
    if spacing in ("first_byte", "first_token", "idle"):
        limit_ms = getattr(policy.timeouts, f"{spacing}_ms")
        assert first.failure.category == "timeout"
        assert f"({limit_ms} ms)" in first.failure.message
        # waited its limit (counted from the attempt's start, a little before total_ms's)
        assert first.timings.total_ms >= limit_ms - SETUP_SLACK_S * 1000
        assert decision.action == "fallback"
        assert attempts[1].route == "backup"
        return
    assert decision.action == "retry"
    if spacing == "immediate":
        assert decision.delay_s == 0
    elif spacing == "backoff":
        retry = policy.retry
        low = retry.backoff_initial_ms * (1 - retry.jitter) / 1000.0
        high = retry.backoff_initial_ms * (1 + retry.jitter) / 1000.0
        assert low <= decision.delay_s <= high
    else:  # retry_after: the window the server asked, from its headers
        asked = parse_retry_after(first.response.rate_limit_headers, now=first.started_at)
        assert asked is not None and asked > 0
        assert decision.delay_s >= asked
        # At most one attempt per window: the retry is the next attempt, after the window.
        assert attempts[1].started_at - first.started_at >= asked


FLAVORS = [pytest.param("sync", id="sync"), pytest.param("async", id="async")]


@pytest.mark.anyio
@pytest.mark.parametrize("flavor", FLAVORS)
@pytest.mark.parametrize("mode", [pytest.param(m, id=m) for m in MODES])
@pytest.mark.parametrize("case", [pytest.param(c, id=name) for name, c in CASES.items()])
async def test_every_scenario_ends_in_the_full_answer_within_the_deadline(sims, flavor, mode, case):
    run, contract = await _run_case(sims, flavor, mode, case)
    deadline_s = contract.policy.timeouts.total_ms / 1000.0
    attempts, decisions = run.attempts, run.decisions
    # The answer, or a clean error after exactly one attempt.
    if case.clean_error is not None:
        assert run.error is not None and run.text == ""
        assert run.error.failure.category == case.clean_error
        assert [d.action for d in decisions] == ["raise"]
    else:
        assert run.error is None, run.error
        assert run.text == run.result.content == FULL
        route = case.answered_by(mode)
        model = BACKUP_MODEL if route == "backup" else PRIMARY_MODEL
        assert (run.result.route, run.result.requested_model) == (route, model)
        assert run.result.model.startswith(model)  # the model that answered is reported
    # Attempts per route, and the restarts a caller with on_restart was told of.
    assert _per_route(attempts) == case.routes[MODES.index(mode)]
    assert [a.attempt for a in attempts] == list(range(1, len(attempts) + 1))
    assert run.restarts == (case.restarts if mode == "stream" else 0)
    # Spacing: what every call keeps, then the case's own rule.
    check_spacing(attempts, decisions, contract, failed_call=run.error is not None)
    check_rule(case.spacing[MODES.index(mode)], attempts, decisions, contract)
    # Elapsed time against the deadline.
    assert _end(attempts[-1]) - attempts[0].started_at <= deadline_s
    assert run.elapsed_s <= deadline_s


def test_the_table_covers_every_recovery_scenario_of_the_simulator():
    recovery = {
        "rate_limit_retry_after",
        "rate_limit_retry_after_ms",
        "rate_limit_once",
        "rate_limit",
        "server_error_once",
        "upstream_unavailable",
        "reset_once",
        "no_response",
        "late_first_token",
        "cut_stream",
        "stall_mid_stream",
        "malformed_chunk",
        "no_done",
        "context_length",
        "content_policy",
    }
    assert recovery <= {case.primary for case in CASES.values()}
    assert "refuses_assistant_prefix" in {case.backup for case in CASES.values()}


# -- the flapping outage: the breaker stops hammering, traffic returns ----------------------

FLAP_SCALE = 0.02
FLAP_CALLS = 18  # one every 5 s (scaled) through the 60 s outage and 30 s after it


@pytest.mark.anyio
@pytest.mark.parametrize("flavor", FLAVORS)
@pytest.mark.parametrize("mode", [pytest.param(m, id=m) for m in MODES])
async def test_a_flapping_outage_costs_k_attempts_then_one_trial_per_cooldown(sims, flavor, mode):
    primary = sims("flapping_outage", time_scale=FLAP_SCALE)
    backup = sims("ok", time_scale=FLAP_SCALE)
    base = scaled_preset(FLAP_SCALE)
    route = FallbackRoute(
        name="backup", model=BACKUP_MODEL, base_url=backup.base_url, auth_env=(BACKUP_ENV,)
    )
    contract = replace(
        base, endpoint=replace(base.endpoint, base_url=primary.base_url), fallbacks=(route,)
    )
    breaker = contract.policy.breaker
    cooldown_s = breaker.cooldown_ms / 1000.0
    outage_s = OUTAGE_MS / 1000.0 * FLAP_SCALE
    gap_s = outage_s / 12
    headers = {"X-Chatcontract-State-Key": f"flap-{next(_keys)}"}
    sink = RecordingSink()
    runs: list[Run] = []
    client = _client(flavor, contract, primary, backup, sinks=[sink])
    if flavor == "sync":
        with client:
            for index in range(FLAP_CALLS):
                if index:
                    time.sleep(gap_s)
                runs.append(await _call(client, flavor, mode, headers))
    else:
        async with client:
            for index in range(FLAP_CALLS):
                if index:
                    await anyio.sleep(gap_s)
                runs.append(await _call(client, flavor, mode, headers))
    # Every call ends in the full answer, within its deadline.
    deadline_s = contract.policy.timeouts.total_ms / 1000.0
    for run in runs:
        assert run.error is None and run.text == run.result.content == FULL
        assert run.elapsed_s <= deadline_s
    on_primary = [a for run in runs for a in run.attempts if a.route == "primary"]
    failed = [a for a in on_primary if a.failure is not None]
    assert {a.failure.code for a in failed} == {"bad_response_status_code"}  # the 503s
    k = breaker.failures
    # K attempts in a row fail, then the breaker opens (the K-th is not retried).
    assert [a.failure is not None for a in on_primary[:k]] == [True] * k
    opened = sink.of(BreakerChanged)[0]
    assert (opened.route, opened.before, opened.after, opened.failures) == (
        "primary",
        "closed",
        "open",
        k,
    )
    # Then one trial per cool-down: a primary attempt after a failed one waits the cool-down,
    # unless a trial just got through (a flap): the next call is let through once.
    for before, after in itertools.pairwise(on_primary[k - 1 :]):
        if before.failure is not None and after.failure is not None:
            assert after.started_at >= _end(before) + cooldown_s - EPS_S
    flaps = sum(
        1
        for before, after in itertools.pairwise(on_primary)
        if before.failure is None and after.failure is not None
    )
    assert flaps <= len(on_primary) // FLAP_EVERY + 1
    span_s = failed[-1].started_at - _end(failed[k - 1])
    assert len(failed) <= k + math.floor(span_s / cooldown_s) + flaps
    # So, over the whole outage: K, then a trial per cool-down (a call without a breaker
    # would cost two attempts each: 24 for the 12 calls of the outage).
    assert len(failed) <= k + math.ceil(outage_s / cooldown_s) + flaps
    # Traffic returns: once the primary answers after the outage, it serves every call, and
    # at most a cool-down's worth of calls went to the backup before it did.
    last_failure = failed[-1].started_at
    after_outage = [run.result.route for run in runs if run.attempts[0].started_at > last_failure]
    assert "primary" in after_outage
    back = after_outage.index("primary")
    assert set(after_outage[back:]) == {"primary"}
    assert back <= math.ceil(cooldown_s / gap_s) + 1
