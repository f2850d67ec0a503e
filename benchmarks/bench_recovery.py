"""Benchmark: every recovery scenario of issue 12, at preset defaults, against the simulator.

Each scenario runs the ``cometapi`` preset with one fallback route (a second simulator that
answers normally and declares ``continuation: assistant_prefix``, another model), streaming with
``on_restart``, the way an application would call it. Printed per scenario: the outcome (``full``:
the caller holds the exact full answer and ``stream.result`` is it; ``clean error``: a
``CallFailedError`` for content policy; anything else is ``WRONG``), the attempts per route, the
model reported and the seconds; then the total wall time. The flapping outage makes 12 calls
through the outage and 4 after it: its primary attempts are what the circuit breaker let
through (before the breaker counted attempts and closed on probation: 20 for the 12 calls).
Target: every scenario ``full`` (or
``clean error`` for content policy), the table well under 2.5 minutes at full scale.

The simulators run in-process on 127.0.0.1 (free ports). ``--scale`` (default 1.0: real time)
scales the simulator's timings *and* the contract's timeouts, backoff, reserve and breaker
cool-down alike, for a quick smoke run (``--scale 0.02``).

Run::

    .venv/bin/python benchmarks/bench_recovery.py [--scale 1.0] [--only cut_stream,...]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass, field, replace
from typing import Any

from chatcontract.client import CallFailedError, ChatClient
from chatcontract.contract import Contract, FallbackRoute, load_preset
from chatcontract.simulator import SimulatorServer
from chatcontract.simulator.answers import answer_for
from chatcontract.simulator.scenarios import OUTAGE_MS

PROMPT = [{"role": "user", "content": "Describe the gateway in one sentence."}]
FULL = answer_for(PROMPT).content
FALLBACK_MODEL = "gpt-4o-mini"
FALLBACK_ENV = "BENCH_RECOVERY_FALLBACK_KEY"
PRIMARY_ENV = "COMETAPI_KEY"


@dataclass(frozen=True)
class Case:
    """One row: the primary's scenario, the fallback's, and what the call must end in."""

    name: str
    primary: str
    backup: str = "ok"
    settings: dict[str, Any] = field(default_factory=dict)
    expect: str = "full"  # or "clean error"
    calls: int = 1  # the flapping outage: calls spread over the outage
    after: int = 0  # then calls after it, at the same pace (traffic returns to the primary)
    windows: tuple[int | None, int | None] = (None, None)


CASES = (
    Case("429 with retry-after", "rate_limit_retry_after"),
    Case("429 without retry-after", "rate_limit_once"),
    Case("429 always", "rate_limit"),
    Case("500 once", "server_error_once"),
    Case("503 always (fallback model reported)", "upstream_unavailable"),
    Case("reset before headers", "reset_once"),
    Case("silence", "no_response"),
    Case("late first token", "late_first_token"),
    Case("cut after N tokens", "cut_stream", settings={"after_tokens": 5}),
    Case("stall after N tokens", "stall_mid_stream", settings={"after_tokens": 5}),
    Case("malformed Nth event", "malformed_chunk", settings={"after_tokens": 5}),
    Case("no [DONE]", "no_done"),
    Case("400 context length", "context_length", windows=(8_192, 128_000)),
    Case("400 content policy", "content_policy", expect="clean error"),
    Case(
        "fallback refuses an assistant prefix",
        "cut_stream",
        backup="refuses_assistant_prefix",
        settings={"after_tokens": 5},
    ),
    Case("60 s flapping outage", "flapping_outage", calls=12, after=4),
)


def _scaled(ms: int, scale: float, floor: int = 1) -> int:
    return max(floor, round(ms * scale))


def contract_for(primary: SimulatorServer, backup: SimulatorServer, case: Case, scale: float):
    base: Contract = load_preset("cometapi")
    policy = base.policy
    if scale != 1.0:
        t = policy.timeouts
        policy = replace(
            policy,
            timeouts=replace(
                t,
                connect_ms=_scaled(t.connect_ms, scale),
                first_byte_ms=_scaled(t.first_byte_ms, scale),
                first_token_ms=_scaled(t.first_token_ms, scale),
                idle_ms=_scaled(t.idle_ms, scale),
                total_ms=_scaled(t.total_ms, scale),
            ),
            retry=replace(
                policy.retry,
                backoff_initial_ms=_scaled(policy.retry.backoff_initial_ms, scale),
                backoff_max_ms=_scaled(policy.retry.backoff_max_ms, scale),
                retry_after_cap_ms=_scaled(policy.retry.retry_after_cap_ms, scale),
            ),
            fallback_reserve_ms=_scaled(policy.fallback_reserve_ms, scale, floor=0),
            breaker=replace(
                policy.breaker, cooldown_ms=_scaled(policy.breaker.cooldown_ms, scale, floor=100)
            ),
        )
    route = FallbackRoute(
        name="backup",
        model=FALLBACK_MODEL,
        base_url=backup.base_url,
        auth_env=(FALLBACK_ENV,),
        continuation="assistant_prefix",
        context_window=case.windows[1],
    )
    return replace(
        base,
        endpoint=replace(base.endpoint, base_url=primary.base_url),
        context_window=case.windows[0],
        fallbacks=(route,),
        policy=policy,
    )


def one_call(client: ChatClient) -> tuple[str, str, dict[str, int]]:
    """(outcome, model, attempts per route) of one streamed call with ``on_restart``."""
    held: list[str] = []
    try:
        with client.stream(PROMPT, on_restart=held.clear) as stream:
            for delta in stream:
                held.append(delta.content)  # noqa: PERF401 - on_restart clears it
        result = stream.result
    except CallFailedError as error:
        per_route: dict[str, int] = {}
        for attempt in error.attempts:
            per_route[attempt.route] = per_route.get(attempt.route, 0) + 1
        return f"error {error.failure.category}/{error.failure.code}", "-", per_route
    per_route = {}
    for attempt in result.attempts:
        per_route[attempt.route] = per_route.get(attempt.route, 0) + 1
    ok = "".join(held) == result.content == FULL
    return ("full" if ok else "WRONG text"), result.model or "-", per_route


def run_case(case: Case, scale: float) -> tuple[str, str, dict[str, int], float]:
    with (
        SimulatorServer(scenario=case.primary, time_scale=scale, **case.settings) as primary,
        SimulatorServer(scenario=case.backup, time_scale=scale) as backup,
    ):
        contract = contract_for(primary, backup, case, scale)
        environ = {PRIMARY_ENV: primary.api_key, FALLBACK_ENV: backup.api_key}
        started = time.monotonic()
        outcomes: list[str] = []
        totals: dict[str, int] = {}
        model = "-"
        with ChatClient.from_contract(contract, environ=environ) as client:
            gap_s = OUTAGE_MS / 1000.0 * scale / case.calls if case.calls > 1 else 0.0
            for index in range(case.calls + case.after):
                if index:
                    time.sleep(gap_s)
                outcome, model, per_route = one_call(client)
                outcomes.append(outcome)
                for route, count in per_route.items():
                    totals[route] = totals.get(route, 0) + count
        seconds = time.monotonic() - started
    if case.expect == "clean error":
        good = all(o.startswith("error content_policy/") for o in outcomes)
        outcome = "clean error" if good else "WRONG: " + ", ".join(sorted(set(outcomes)))
    else:
        wrong = sorted({o for o in outcomes if o != "full"})
        outcome = "full" if not wrong else "WRONG: " + ", ".join(wrong)
    if case.calls > 1:
        outcome += f" ({case.calls}+{case.after} calls)"
    return outcome, model, totals, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="time scale (1.0: real time)")
    parser.add_argument("--only", default="", help="comma-separated primary scenario names")
    args = parser.parse_args(argv)
    if not 0 < args.scale <= 1:
        print("--scale: write a factor in (0, 1], e.g. 0.02", file=sys.stderr)
        return 2
    chosen = {name for name in args.only.split(",") if name}
    cases = [case for case in CASES if not chosen or case.primary in chosen]
    print(f"{'scenario':42} {'outcome':22} {'attempts':26} {'model':24} {'seconds':>8}")
    started = time.monotonic()
    bad = 0
    for case in cases:
        outcome, model, per_route, seconds = run_case(case, args.scale)
        bad += outcome.startswith("WRONG")
        attempts = ", ".join(f"{route} {count}" for route, count in per_route.items())
        print(f"{case.name:42} {outcome:22} {attempts:26} {model:24} {seconds:8.2f}", flush=True)
    total = time.monotonic() - started
    print(f"total wall time: {total:.1f} s at scale {args.scale:g}; {bad} scenario(s) WRONG")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
