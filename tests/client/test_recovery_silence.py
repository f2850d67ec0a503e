"""Silent routes over real sockets: one classification per attempt, and the idle limit.

- The failure a result reports for a silent attempt (``first_byte_timeout``,
  ``first_token_timeout``, ``stream_stalled`` named for ``idle_ms``) is the one the Prometheus
  sink counts and the JSON event log writes for that attempt, never the transport's
  ``read_timeout`` beside it.
- A head or a non-streamed body that stalls after its first byte is no silent route: it stays
  the transport's ``read_timeout`` (its message says which stalled), in all three alike.
- A socket that sends nothing at all once content started is cut by ``policy.timeouts.idle_ms``
  at the read itself, not by the (longer) read timeout, and the failure says idle.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import replace

import orjson
import pytest
from client_helpers import FALLBACK_ENV, LONG, AsyncSleeps, Sleeps, contract_for, env_for
from prometheus_client import CollectorRegistry

from chatcontract.client import AsyncChatClient, ChatClient, ChatResult, StreamInterrupted
from chatcontract.contract import FallbackRoute, Streaming, Timeouts
from chatcontract.simulator.answers import answer_for
from chatcontract.telemetry import PrometheusSink
from chatcontract.telemetry.events_log import JsonEventLog
from raw_servers import RawServer, raw_server, read_request

FULL = answer_for(LONG).content
#: The read timeout of a stream is min(first_byte_ms, first_token_ms): far above idle_ms.
READ_TIMEOUT_MS = 2_000
IDLE_MS = 300
TIMEOUTS = Timeouts(
    connect_ms=1_000,
    first_byte_ms=READ_TIMEOUT_MS,
    first_token_ms=READ_TIMEOUT_MS,
    idle_ms=IDLE_MS,
    total_ms=20_000,
)
#: For the metrics tests: silent attempts end sooner.
QUICK = Timeouts(
    connect_ms=1_000, first_byte_ms=600, first_token_ms=600, idle_ms=200, total_ms=20_000
)
#: Long enough that the attempt can only end at one of the client's limits (the simulator
#: ends the held response after it, so no server outlives the test for long).
SILENT_MS = 6_000

FLAVORS = [pytest.param("sync", id="sync"), pytest.param("async", id="async")]


class Lines(logging.Handler):
    """The JSON event log's lines, parsed."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(orjson.loads(record.getMessage()))

    def exchanges(self) -> list[dict]:
        return [line for line in self.lines if line["event"] == "exchange"]


def _observed(primary, backup, *, fallback: bool = True, timeouts: Timeouts = TIMEOUTS):
    base = contract_for(primary.base_url, timeouts=timeouts, streaming=Streaming())
    route = FallbackRoute(
        name="backup",
        base_url=backup.base_url,
        auth_env=(FALLBACK_ENV,),
        continuation="assistant_prefix",
    )
    contract = replace(base, fallbacks=(route,) if fallback else ())
    registry = CollectorRegistry()
    lines = Lines()
    logger = logging.getLogger(f"chatcontract.test.silence.{id(lines)}")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(lines)
    sinks = [PrometheusSink(registry, contract=contract), JsonEventLog(logger, shadow_rate=1.0)]
    return contract, sinks, registry, lines


async def _call(flavor, contract, sinks, key, *, stream: bool) -> ChatResult:
    env = env_for(key, key)
    if flavor == "sync":
        with ChatClient.from_contract(
            contract, environ=env, sleep=Sleeps(), telemetry_sinks=sinks
        ) as client:
            if not stream:
                return client.complete(LONG)
            with client.stream(LONG) as chat_stream:
                text = "".join(delta.content for delta in chat_stream)
            assert text == chat_stream.result.content
            return chat_stream.result
    async with AsyncChatClient.from_contract(
        contract, environ=env, sleep=AsyncSleeps(), telemetry_sinks=sinks
    ) as client:
        if not stream:
            return await client.complete(LONG)
        async with client.stream(LONG) as chat_stream:
            text = "".join([delta.content async for delta in chat_stream])
        assert text == chat_stream.result.content
        return chat_stream.result


def _timeouts_counted(registry: CollectorRegistry, route: str, stream: bool) -> dict[str, float]:
    counted = {}
    for code in ("read_timeout", "first_byte_timeout", "first_token_timeout", "stream_stalled"):
        labels = {
            "provider": "cometapi",
            "endpoint": "/chat/completions",
            "model": "gpt-4.1-nano",
            "stream": "true" if stream else "false",
            "route": route,
            "code": code,
        }
        value = registry.get_sample_value("llm_client_timeout_total", labels)
        if value:
            counted[code] = value
    return counted


SILENCES = [
    pytest.param("no_response", {}, False, "first_byte_timeout", id="complete-no-byte"),
    pytest.param("no_response", {}, True, "first_byte_timeout", id="stream-no-byte"),
    # Head and half the body arrived, then silence: a body stall, not a silent route.
    pytest.param("stall_mid_stream", {}, False, "read_timeout", id="complete-body-stall"),
    pytest.param("late_first_token", {}, True, "first_token_timeout", id="stream-late-token"),
    pytest.param(
        "stall_mid_stream", {"after_tokens": 4}, True, "stream_stalled", id="stream-silent-socket"
    ),
]


@pytest.mark.anyio
@pytest.mark.parametrize("flavor", FLAVORS)
@pytest.mark.parametrize(("scenario", "settings", "stream", "code"), SILENCES)
async def test_metrics_and_events_report_the_failure_the_result_reports(
    sims, flavor, scenario, settings, stream, code
):
    primary = sims(scenario, delay_ms=SILENT_MS, **settings)
    contract, sinks, registry, lines = _observed(primary, sims(), timeouts=QUICK)
    result = await _call(flavor, contract, sinks, primary.api_key, stream=stream)
    assert result.content == FULL and result.route == "backup"
    failure = result.attempts[0].failure
    assert failure.code == code
    # Prometheus: the silent attempt is counted once, under the result's code only.
    assert _timeouts_counted(registry, "primary", stream) == {code: 1.0}
    # The event log: one line per attempt, the silent one with the result's failure.
    logged = lines.exchanges()
    assert [(line["route"], line["attempt"]) for line in logged] == [
        ("primary", 1),
        ("backup", 2),
    ]
    assert logged[0]["failure"]["code"] == code
    assert logged[0]["failure"]["message"] == failure.message
    assert logged[1]["failure"] is None
    if scenario == "stall_mid_stream" and not stream:  # the head and half the body came
        assert failure.message == (
            "the response body stalled after its head: no bytes within the read timeout"
            f" ({QUICK.first_byte_ms} ms)"
        )


@pytest.mark.anyio
@pytest.mark.parametrize("flavor", FLAVORS)
async def test_a_fully_silent_socket_after_content_is_cut_at_the_idle_limit(sims, flavor):
    # The stall sends nothing at all (no keep-alive): only a limit at the read can end it.
    primary = sims("stall_mid_stream", delay_ms=SILENT_MS, after_tokens=4)
    contract, sinks, _, _ = _observed(primary, sims(), fallback=False)
    with pytest.raises(StreamInterrupted) as caught:
        await _call(flavor, contract, sinks, primary.api_key, stream=True)
    failure = caught.value.failure
    assert (failure.category, failure.code) == ("timeout", "stream_stalled")
    assert (
        failure.message == f"no stream data within idle_ms once content had started ({IDLE_MS} ms)"
    )
    assert caught.value.partial_content and FULL.startswith(caught.value.partial_content)
    (attempt,) = caught.value.attempts
    # Ended by the idle limit: not before it, and well before the read timeout would have.
    assert IDLE_MS - 2 <= attempt.timings.total_ms < READ_TIMEOUT_MS


@pytest.mark.anyio
@pytest.mark.parametrize("flavor", FLAVORS)
async def test_a_silent_socket_after_content_is_continued_on_the_fallback(sims, flavor):
    primary = sims("stall_mid_stream", delay_ms=SILENT_MS, after_tokens=4)
    contract, sinks, _, _ = _observed(primary, sims())
    result = await _call(flavor, contract, sinks, primary.api_key, stream=True)
    assert result.content == FULL
    first = result.attempts[0]
    assert (
        first.failure.message
        == f"no stream data within idle_ms once content had started ({IDLE_MS} ms)"
    )
    assert IDLE_MS - 2 <= first.timings.total_ms < READ_TIMEOUT_MS


async def _head_then_silent(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: RawServer
) -> None:
    """Part of a response head, then nothing until the client goes away (bounded)."""
    if await read_request(reader, server) is None:
        return
    writer.write(b"HTTP/1.1 200 OK\r\ncontent-")
    await writer.drain()
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(reader.read(1), timeout=5)


@pytest.mark.anyio
@pytest.mark.parametrize("flavor", FLAVORS)
@pytest.mark.parametrize(
    "stream", [pytest.param(False, id="complete"), pytest.param(True, id="stream")]
)
async def test_a_head_that_stalls_after_its_first_byte_is_a_read_timeout(sims, flavor, stream):
    backup = sims()
    with raw_server(_head_then_silent) as primary:  # any key does: it reads none
        contract, sinks, registry, lines = _observed(primary, backup, timeouts=QUICK)
        result = await _call(flavor, contract, sinks, backup.api_key, stream=stream)
    assert result.content == FULL and result.route == "backup"
    failure = result.attempts[0].failure
    assert (failure.category, failure.code) == ("timeout", "read_timeout")
    assert failure.message == (
        "the response head stalled after its first byte: no bytes within the read timeout"
        f" ({QUICK.first_byte_ms} ms)"
    )
    assert _timeouts_counted(registry, "primary", stream) == {"read_timeout": 1.0}
    logged = lines.exchanges()
    assert [(line["route"], line["failure"] and line["failure"]["code"]) for line in logged] == [
        ("primary", "read_timeout"),
        ("backup", None),
    ]
