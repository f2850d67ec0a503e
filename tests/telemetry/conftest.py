"""Exchanges for the telemetry tests: real ones through the simulator, and built ones for the
cases a live call cannot produce on demand (a DNS phase, a negative usage count)."""

from __future__ import annotations

import time

import httpx2
import pytest

from chatcontract.contract import load_preset
from chatcontract.simulator import DELAY_HEADER, SCENARIO_HEADER
from chatcontract.telemetry import CallLabels
from chatcontract.transport import (
    Exchange,
    InstrumentedTransport,
    RequestFacts,
    ResponseFacts,
    Timings,
)
from chatcontract.wire import Usage

COMET = load_preset("cometapi")
MODEL = "gpt-4.1-nano"
LABELS = CallLabels(provider="cometapi", endpoint="/chat/completions")


@pytest.fixture
def call(simulator):
    """``call(scenario, stream=False, body=None, timeout=10, delay_ms=None) -> Exchange``:
    one real request through the instrumented transport to the session simulator."""

    def run(scenario="ok", *, stream=False, body=None, timeout=10.0, delay_ms=None, url=None):
        exchanges: list[Exchange] = []
        transport = InstrumentedTransport(
            contract=COMET, sinks=[exchanges.append], secrets=[simulator.api_key]
        )
        payload = body or {
            "model": MODEL,
            "max_tokens": 16,
            "messages": [{"role": "user", "content": "Reply with exactly: pong"}],
        }
        if stream and body is None:
            payload = {**payload, "stream": True, "stream_options": {"include_usage": True}}
        headers = {"Authorization": f"Bearer {simulator.api_key}", SCENARIO_HEADER: scenario}
        if delay_ms is not None:
            headers[DELAY_HEADER] = str(delay_ms)
        target = url or simulator.base_url + "/chat/completions"
        with httpx2.Client(transport=transport, timeout=timeout) as client:
            try:
                with client.stream("POST", target, json=payload, headers=headers) as response:
                    for _ in response.iter_bytes():
                        pass
            except httpx2.HTTPError:
                pass
        [exchange] = exchanges
        return exchange

    return run


def build_exchange(
    *,
    model: str | None = MODEL,
    stream: bool = False,
    status: int | None = 200,
    usage: Usage | None = None,
    failure=None,
    timings: Timings | None = None,
    route: str = "primary",
    attempt: int = 1,
    budget_ms: float | None = 30_000.0,
    include_usage: bool = False,
    content: str | None = None,
) -> Exchange:
    """A hand-built Exchange (the transport is what builds them in real life)."""
    response = None
    if status is not None:
        response = ResponseFacts(
            status=status,
            content_type="application/json",
            model=None if model is None else model + "-2025-04-14",
            finish_reason="stop",
            usage=usage,
            content=content,
            request_ids={"x-request-id": "req-built-1"},
        )
    return Exchange(
        request=RequestFacts(
            method="POST",
            url="https://api.example.test:8443/v1/chat/completions",
            model=model,
            stream=stream,
            include_usage=include_usage,
            timeout_budget_ms=budget_ms,
            max_tokens=16,
        ),
        response=response,
        timings=timings or Timings(ttfb_ms=40.0, total_ms=120.0),
        started_at=time.time(),
        attempt=attempt,
        route=route,
        failure=failure,
    )


@pytest.fixture
def built():
    """The ``build_exchange`` factory, for tests that need facts no live call gives on demand."""
    return build_exchange
