"""The circuit breaker per client: a route whose last K attempts failed is tried last for its
cool-down (no wasted attempt, and the attempt that opened it is not retried while another route
remains), one trial call after it decides, and every change is an event and a gauge value. The
breaker never refuses a call."""

from __future__ import annotations

from dataclasses import replace

import httpx2
import pytest
from client_helpers import PONG, AsyncSleeps, RecordingSink, Sleeps, contract_for, env_for
from prometheus_client import CollectorRegistry

from chatcontract.client import AsyncChatClient, ChatClient, RetriesExhaustedError
from chatcontract.contract import BreakerPolicy
from chatcontract.telemetry import PrometheusSink
from chatcontract.telemetry.events import BreakerChanged

COMPLETION = (
    b'{"id":"chatcmpl-1","object":"chat.completion","created":1774412483,'
    b'"model":"gpt-4.1-nano","choices":[{"index":0,"message":{"role":"assistant",'
    b'"content":"pong"},"finish_reason":"stop"}],'
    b'"usage":{"prompt_tokens":12,"completion_tokens":1,"total_tokens":13}}'
)
UNAVAILABLE = b'{"error":{"message":"upstream unavailable","type":"server_error","code":"busy"}}'
JSON = {"content-type": "application/json"}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


class TwoHosts:
    """primary.test answers 503 while ``down``; backup.test always answers."""

    def __init__(self) -> None:
        self.down = True
        self.hosts: list[str] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.hosts.append(request.url.host)
        if request.url.host == "primary.test" and self.down:
            return httpx2.Response(503, content=UNAVAILABLE, headers=JSON)
        return httpx2.Response(200, content=COMPLETION, headers=JSON)

    def take(self) -> list[str]:
        hosts, self.hosts = self.hosts, []
        return hosts


def _setup(breaker: BreakerPolicy):
    base = contract_for("http://primary.test/v1", fallback_url="http://backup.test/v1")
    contract = replace(base, policy=replace(base.policy, breaker=breaker))
    registry = CollectorRegistry()
    sink = RecordingSink()
    options = {
        "environ": env_for("cc-key-primary-1", "cc-key-backup-2"),
        "telemetry_sinks": [sink, PrometheusSink(registry, contract=contract)],
        "clock": Clock(),
    }
    return contract, options, sink, registry


def _gauge(registry: CollectorRegistry, route: str) -> float | None:
    labels = {"provider": "cometapi", "endpoint": "/chat/completions", "route": route}
    return registry.get_sample_value("llm_circuit_breaker_state", labels)


EXPECTED_HOSTS = [
    ["primary.test", "primary.test", "backup.test"],  # 503, one retry (2nd failure: opens)
    ["backup.test"],  # open: the primary is tried last, the backup answers at once
    ["backup.test"],  # still open
    ["primary.test"],  # after the cool-down the trial call closes it
]


def test_an_open_breaker_sends_calls_to_the_next_route_then_a_trial_closes_it():
    contract, options, sink, registry = _setup(BreakerPolicy(failures=2, cooldown_ms=5_000))
    hosts = TwoHosts()
    clock = options["clock"]
    seen = []
    with ChatClient.from_contract(
        contract, transport=httpx2.MockTransport(hosts), sleep=Sleeps(), **options
    ) as client:
        for call in range(4):
            if call == 3:
                clock.now += 6.0
                hosts.down = False
            result = client.complete(PONG, max_tokens=16)
            seen.append(hosts.take())
            assert result.content == "pong"
            if call in (0, 2):
                assert _gauge(registry, "primary") == 1  # open
    assert seen == EXPECTED_HOSTS
    changes = [(e.route, e.before, e.after) for e in sink.of(BreakerChanged)]
    assert changes == [("primary", "closed", "open"), ("primary", "half_open", "closed")]
    assert _gauge(registry, "primary") == 0


@pytest.mark.anyio
async def test_the_async_client_orders_routes_by_the_same_breaker():
    contract, options, sink, _ = _setup(BreakerPolicy(failures=2, cooldown_ms=5_000))
    hosts = TwoHosts()
    clock = options["clock"]
    seen = []
    async with AsyncChatClient.from_contract(
        contract, transport=httpx2.MockTransport(hosts), sleep=AsyncSleeps(), **options
    ) as client:
        for call in range(4):
            if call == 3:
                clock.now += 6.0
                hosts.down = False
            result = await client.complete(PONG, max_tokens=16)
            seen.append(hosts.take())
            assert result.content == "pong"
    assert seen == EXPECTED_HOSTS
    assert [e.after for e in sink.of(BreakerChanged)] == ["open", "closed"]


def test_a_failed_trial_opens_the_breaker_again_and_the_call_is_still_served():
    contract, options, sink, _ = _setup(BreakerPolicy(failures=1, cooldown_ms=5_000))
    hosts = TwoHosts()
    with ChatClient.from_contract(
        contract, transport=httpx2.MockTransport(hosts), sleep=Sleeps(), **options
    ) as client:
        client.complete(PONG, max_tokens=16)  # opens
        assert hosts.take() == ["primary.test", "backup.test"]  # the opening 503 not retried
        options["clock"].now += 6.0
        result = client.complete(PONG, max_tokens=16)  # the trial fails, the backup answers
    assert hosts.take() == ["primary.test", "backup.test"]  # one attempt per trial
    assert result.route == "backup"
    assert "circuit breaker opened" in result.decisions[0].reason
    assert [(e.before, e.after) for e in sink.of(BreakerChanged)] == [
        ("closed", "open"),
        ("half_open", "open"),
    ]


def test_every_route_open_still_sends_the_call_instead_of_refusing_it():
    contract, options, _, _ = _setup(BreakerPolicy(failures=1, cooldown_ms=60_000))
    contract = replace(contract, fallbacks=())
    hosts = TwoHosts()
    with ChatClient.from_contract(
        contract, transport=httpx2.MockTransport(hosts), sleep=Sleeps(), **options
    ) as client:
        for _ in range(2):
            with pytest.raises(RetriesExhaustedError):
                client.complete(PONG, max_tokens=16)
    assert hosts.hosts == ["primary.test"] * 4  # the open primary is still tried, with its retry


def test_a_disabled_breaker_keeps_the_configured_order():
    contract, options, sink, _ = _setup(BreakerPolicy(enabled=False, failures=1))
    hosts = TwoHosts()
    with ChatClient.from_contract(
        contract, transport=httpx2.MockTransport(hosts), sleep=Sleeps(), **options
    ) as client:
        for _ in range(3):
            client.complete(PONG, max_tokens=16)
    assert hosts.hosts == ["primary.test", "primary.test", "backup.test"] * 3
    assert sink.of(BreakerChanged) == []
