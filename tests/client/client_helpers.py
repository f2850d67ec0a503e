"""Shared builders for the client tests: contracts pointing at simulators, sinks, recorders."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from chatcontract.contract import (
    Contract,
    CostCaps,
    FallbackRoute,
    RetryPolicy,
    Timeouts,
    load_preset,
)

PONG = [{"role": "user", "content": "Reply with exactly: pong"}]
LONG = [{"role": "user", "content": "Tell me how streams end"}]

FAST_RETRY = RetryPolicy(
    max_attempts=2, backoff_initial_ms=5, backoff_max_ms=10, jitter=0.0, retry_after_cap_ms=10_000
)
FAST_TIMEOUTS = Timeouts(
    connect_ms=2_000, first_byte_ms=5_000, first_token_ms=5_000, total_ms=10_000
)
FALLBACK_ENV = "CHATCONTRACT_TEST_FALLBACK_KEY"
SCENARIO = "X-Chatcontract-Scenario"


def contract_for(
    primary_url: str,
    *,
    preset: str = "cometapi",
    fallback_url: str | None = None,
    model_fallback: bool = False,
    retry: RetryPolicy = FAST_RETRY,
    timeouts: Timeouts = FAST_TIMEOUTS,
    reserve_ms: int = 500,
    caps: CostCaps | None = None,
    kill_switch_env: str | None = "CHATCONTRACT_KILL_SWITCH",
    **changes: Any,
) -> Contract:
    """The preset aimed at ``primary_url``; fallbacks: another server and/or another model."""
    base = load_preset(preset)
    fallbacks = []
    if model_fallback:
        fallbacks.append(FallbackRoute(name="smaller-model", model="gpt-4o-mini"))
    if fallback_url is not None:
        fallbacks.append(
            FallbackRoute(name="backup", base_url=fallback_url, auth_env=(FALLBACK_ENV,))
        )
    policy = replace(
        base.policy,
        retry=retry,
        timeouts=timeouts,
        fallback_reserve_ms=reserve_ms,
        caps=caps if caps is not None else base.policy.caps,
        kill_switch_env=kill_switch_env,
    )
    return replace(
        base,
        endpoint=replace(base.endpoint, base_url=primary_url),
        fallbacks=tuple(fallbacks),
        policy=policy,
        **changes,
    )


def env_for(primary_key: str, fallback_key: str | None = None, **extra: str) -> dict[str, str]:
    """Keys for both presets' variables, and the fallback route's variable."""
    env = {"COMETAPI_KEY": primary_key, "OPENAI_API_KEY": primary_key, **extra}
    if fallback_key is not None:
        env[FALLBACK_ENV] = fallback_key
    return env


class RecordingSink:
    """A telemetry sink keeping everything it receives."""

    def __init__(self) -> None:
        self.exchanges: list[Any] = []
        self.events: list[Any] = []

    def handle_exchange(self, exchange: Any, labels: Any) -> None:
        self.exchanges.append(exchange)

    def handle_event(self, event: Any, labels: Any) -> None:
        self.events.append(event)

    def of(self, kind: type) -> list[Any]:
        return [event for event in self.events if isinstance(event, kind)]


class Sleeps:
    """An injected ``sleep`` that records instead of waiting."""

    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


class AsyncSleeps(Sleeps):
    async def __call__(self, seconds: float) -> None:  # type: ignore[override]
        self.calls.append(seconds)


def trail(attempts: Any) -> list[tuple[str, int, str | None]]:
    """(route, attempt, failure code) per attempt: what a reader compares."""
    return [(a.route, a.attempt, a.failure.code if a.failure else None) for a in attempts]


#: A whole pong completion, as a provider sends it (``httpx2.Response(200, json=COMPLETION)``).
COMPLETION = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-4.1-nano",
    "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "pong"}, "finish_reason": "stop"}
    ],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}


def call_refused_before_sending(mode: str, **options: Any) -> None:
    """One pong call with ``options`` (``complete``, ``stream`` or ``async``) on a client with
    a fallback route, through a transport that records every request: it must raise, and
    nothing may have been sent."""
    import asyncio

    import httpx2

    from chatcontract.client import AsyncChatClient, ChatClient

    sent: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        sent.append(request)
        return httpx2.Response(500)

    contract = contract_for("http://provider.test/v1", model_fallback=True)
    env = env_for("cc-secret-key-0001")
    try:
        if mode == "async":

            async def run() -> None:
                async with AsyncChatClient.from_contract(
                    contract, environ=env, transport=httpx2.MockTransport(handler)
                ) as client:
                    await client.complete(PONG, **options)

            asyncio.run(run())
        else:
            with ChatClient.from_contract(
                contract, environ=env, transport=httpx2.MockTransport(handler), sleep=Sleeps()
            ) as client:
                if mode == "stream":
                    with client.stream(PONG, **options) as stream:
                        list(stream)
                else:
                    client.complete(PONG, **options)
    finally:
        assert sent == []  # refused before anything was sent
