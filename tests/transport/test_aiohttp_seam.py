"""The one private seam into aiohttp (``transport/_aiohttp_seam.py``): these tests fail loudly
when an aiohttp upgrade moves a step it overrides, and a transport whose seam does not fit
falls back to aiohttp's ``TraceConfig`` with the same timings, rather than wrong ones.

The events, timings and failures the seam gives are checked against ``TraceConfig``'s in
``test_aiohttp_transport.py`` (its ``hooks`` fixture runs both); here: the seam itself, the
fallback, ``hooks="none"``, and the request each step reports to."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any

import aiohttp
import httpx2
import pytest
from aiohttp.abc import AbstractResolver

from chatcontract.contract import load_preset
from chatcontract.exchange import Exchange
from chatcontract.transport import AsyncInstrumentedTransport
from chatcontract.transport import _aiohttp as wire
from chatcontract.transport import _aiohttp_seam as seam
from chatcontract.transport._aiohttp import AiohttpTransport
from raw_servers import COMPLETION, in_order, raw_server, response

CONTRACT = load_preset("cometapi")
BODY = {"model": "gpt-4.1-nano", "messages": [{"role": "user", "content": "hi"}]}


# -- the seam is where the installed aiohttp has it ---------------------------------------------


@pytest.mark.parametrize(
    ("owner", "name", "parameters"), seam.SEAM, ids=[f"{o.__name__}.{n}" for o, n, _ in seam.SEAM]
)
def test_each_overridden_step_is_where_the_installed_aiohttp_has_it(owner, name, parameters):
    step = getattr(owner, name, None)
    assert step is not None, f"aiohttp {aiohttp.__version__} has no {owner.__name__}.{name}"
    assert asyncio.iscoroutinefunction(step), f"{owner.__name__}.{name} is no coroutine function"
    found = tuple(inspect.signature(step).parameters)
    assert found == parameters, f"{owner.__name__}.{name}{found}: the seam expects {parameters}"


def test_the_seam_fits_and_the_transport_uses_it_by_default():
    assert seam.fits()
    transport = AiohttpTransport()
    assert transport._seam and transport._trace_config is None


class _Moved:
    async def renamed(self, request: Any, traces: Any, timeout: Any) -> None: ...

    async def connect(self, req: Any, traces: Any) -> None: ...  # a parameter less

    def send(self, conn: Any) -> None: ...  # no longer a coroutine function


@pytest.mark.parametrize(
    "entry",
    [
        (_Moved, "_create_connection", ("self", "req", "traces", "timeout")),  # gone
        (_Moved, "connect", ("self", "req", "traces", "timeout")),
        (_Moved, "renamed", ("self", "req", "traces", "timeout")),  # parameters renamed
        (_Moved, "send", ("self", "conn")),
    ],
    ids=["step-gone", "parameter-dropped", "parameter-renamed", "not-a-coroutine"],
)
def test_a_moved_step_makes_the_seam_not_fit(monkeypatch, entry):
    monkeypatch.setattr(seam, "SEAM", (*seam.SEAM, entry))
    assert not seam.fits()


# -- the fallback, and no hooks at all ----------------------------------------------------------


async def _exchanges(transport: AiohttpTransport, url: str, calls: int = 2) -> list[Exchange]:
    exchanges: list[Exchange] = []
    observed = AsyncInstrumentedTransport(
        contract=CONTRACT, sinks=[exchanges.append], inner=transport
    )
    async with httpx2.AsyncClient(transport=observed, timeout=5.0) as client:
        for _ in range(calls):
            assert (await client.post(url, json=BODY)).status_code == 200
    return exchanges


def test_a_transport_whose_seam_does_not_fit_times_calls_with_trace_config(monkeypatch):
    monkeypatch.setattr(wire, "_SEAM_FITS", [False])
    transport = AiohttpTransport()
    assert not transport._seam and transport._trace_config is not None
    with raw_server(in_order([response(200, COMPLETION)])) as server:
        first, second = asyncio.run(
            _exchanges(transport, server.url.replace("127.0.0.1", "localhost"))
        )
    assert first.timings.dns_ms is not None and first.timings.connect_ms is not None
    assert first.timings.ttfb_ms is not None and second.timings.ttfb_ms is not None
    assert second.timings.connect_ms is None


def test_hooks_none_sends_with_aiohttps_plain_session_and_no_phase_timings():
    transport = AiohttpTransport(hooks="none")

    async def call(url: str) -> tuple[list[Exchange], list[Any], type]:
        session = transport._session_here()
        connector = type(session.connector)
        return await _exchanges(transport, url), session.trace_configs, connector

    with raw_server(in_order([response(200, COMPLETION)])) as server:
        (first, second), traces, connector = asyncio.run(
            call(server.url.replace("127.0.0.1", "localhost"))
        )
    assert traces == []
    assert connector is aiohttp.TCPConnector
    assert first.failure is None and second.failure is None
    assert (first.timings.dns_ms, first.timings.connect_ms) == (None, None)


def test_trace_config_given_is_the_one_used():
    config = aiohttp.TraceConfig()
    transport = AiohttpTransport(trace_config=config)
    assert not transport._seam and transport._trace_config is config
    assert AiohttpTransport(hooks="trace")._trace_config is not None


def test_an_unknown_hooks_value_says_what_to_write():
    with pytest.raises(ValueError, match="hooks must be one of auto, trace, none, got 'fast'"):
        AiohttpTransport(hooks="fast")  # type: ignore[arg-type]


# -- each step reports to the request the running task sends -----------------------------------


def test_concurrent_requests_each_get_their_own_events():
    """A pool of one: the second request waits for the first's connection, and each request's
    trace hears only its own steps (the context variable is per task)."""
    heard: dict[str, list[str]] = {"a": [], "b": []}

    def trace_of(name: str) -> Any:
        async def trace(event: str, info: dict[str, Any]) -> None:
            heard[name].append(event)

        return trace

    async def call(url: str) -> list[int]:
        transport = AiohttpTransport(limits=httpx2.Limits(max_connections=1))
        async with httpx2.AsyncClient(transport=transport, timeout=5.0) as client:
            answers = await asyncio.gather(
                *(
                    client.post(url, json=BODY, extensions={"trace": trace_of(name)})
                    for name in heard
                )
            )
        return [answer.status_code for answer in answers]

    with raw_server(in_order([response(200, COMPLETION)])) as server:
        assert asyncio.run(call(server.url)) == [200, 200]
    head = [
        "http11.send_request_headers.started",
        "http11.receive_response_headers.started",
        "http11.receive_response_headers.complete",
    ]
    assert heard["a"] == [
        "connection.connect_tcp.started",
        "connection.connect_tcp.complete",
        *head,
    ]
    assert heard["b"] == head  # the first one's connection, once it was free


def test_the_steps_pass_through_for_a_request_that_is_not_ours():
    """A session built on the seam's classes, no call of ours in the task: plain aiohttp."""

    async def call(url: str) -> int:
        resolver = seam.TimedResolver(aiohttp.ThreadedResolver())
        connector = seam.TimedConnector(resolver=resolver, limit=1)
        async with aiohttp.ClientSession(
            connector=connector, request_class=seam.TimedRequest
        ) as session:
            for _ in range(2):
                async with session.post(url, json=BODY) as answer:
                    assert await answer.read() == COMPLETION
            return answer.status

    with raw_server(in_order([response(200, COMPLETION)])) as server:
        assert asyncio.run(call(server.url.replace("127.0.0.1", "localhost"))) == 200


class _Lookups(AbstractResolver):
    def __init__(self, steps: list[str], *, fail: bool = False) -> None:
        self.steps = steps
        self.fail = fail

    async def resolve(self, host: str, port: int = 0, family: Any = 0) -> list[Any]:
        self.steps.append(f"lookup {host}")
        if self.fail:
            raise OSError("no such host")
        return []

    async def close(self) -> None:
        self.steps.append("closed")


class _Steps:
    def __init__(self, steps: list[str]) -> None:
        self.steps = steps

    def dns_started(self) -> None:
        self.steps.append("dns started")

    def dns_ended(self) -> None:
        self.steps.append("dns ended")


def test_the_resolver_times_each_lookup_of_the_request_that_asked():
    steps: list[str] = []
    resolver = seam.TimedResolver(_Lookups(steps))

    async def run() -> None:
        await resolver.resolve("a.example", 80)  # no request of ours: not timed
        token = seam.CALL.set(_Steps(steps))  # type: ignore[arg-type]
        try:
            await resolver.resolve("b.example", 80, family=0)
        finally:
            seam.CALL.reset(token)
        await resolver.close()

    asyncio.run(run())
    assert steps == ["lookup a.example", "dns started", "lookup b.example", "dns ended", "closed"]


def test_a_failed_lookup_is_started_and_never_ended():
    """As ``TraceConfig``: no resolve-end signal after a lookup that raised."""
    steps: list[str] = []
    resolver = seam.TimedResolver(_Lookups(steps, fail=True))

    async def run() -> None:
        token = seam.CALL.set(_Steps(steps))  # type: ignore[arg-type]
        try:
            with pytest.raises(OSError, match="no such host"):
                await resolver.resolve("c.example", 80)
        finally:
            seam.CALL.reset(token)

    asyncio.run(run())
    assert steps == ["dns started", "lookup c.example"]


def test_the_transport_closes_the_resolver_it_made(monkeypatch):
    steps: list[str] = []
    monkeypatch.setattr(wire, "DefaultResolver", lambda: _Lookups(steps))

    async def run() -> None:
        transport = AiohttpTransport()
        session = transport._session_here()
        assert isinstance(session.connector, seam.TimedConnector)
        await transport.aclose()
        assert session.closed

    asyncio.run(run())
    assert steps == ["closed"]
