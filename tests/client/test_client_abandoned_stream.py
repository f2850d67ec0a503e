"""A stream abandoned right after its attempt timed out: the attempt still reaches telemetry.

A timed-out attempt is classified by the client (which limit ran out) and handed to the sinks
from there, not by the transport. The server below sends one whole event, then one that lost
its final blank line, then nothing: the idle limit ends the attempt, and the event the parser
completes on close is the stream's last delta. A caller who stops at that delta (closes the
stream or breaks out of the loop) still leaves exactly one record of the attempt, under the
failure the client names, in the Prometheus sink and in the JSON event log.
"""

from __future__ import annotations

import asyncio
import logging

import orjson
import pytest
from client_helpers import LONG, AsyncSleeps, Sleeps, contract_for, env_for
from prometheus_client import CollectorRegistry

from chatcontract.client import AsyncChatClient, ChatClient
from chatcontract.contract import Streaming, Timeouts
from chatcontract.telemetry import PrometheusSink
from chatcontract.telemetry.events_log import JsonEventLog
from raw_servers import raw_server, stall_after_a_torn_event, timeouts_counted

KEY = "sk-abandon-test-key-0123456789"
HEAD_TEXT = "Hello"
TAIL_TEXT = " world"
IDLE_MS = 200
TIMEOUTS = Timeouts(
    connect_ms=1_000, first_byte_ms=2_000, first_token_ms=2_000, idle_ms=IDLE_MS, total_ms=10_000
)


class Lines(logging.Handler):
    """The JSON event log's exchange lines, parsed."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.exchanges: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        line = orjson.loads(record.getMessage())
        if line["event"] == "exchange":
            self.exchanges.append(line)


def _sinks(contract) -> tuple[list, CollectorRegistry, Lines]:
    registry = CollectorRegistry()
    lines = Lines()
    logger = logging.getLogger(f"chatcontract.test.abandon.{id(lines)}")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    logger.addHandler(lines)
    return (
        [PrometheusSink(registry, contract=contract), JsonEventLog(logger, shadow_rate=1.0)],
        registry,
        lines,
    )


def _sync_call(contract, sinks, how: str) -> list[str]:
    seen: list[str] = []
    with ChatClient.from_contract(
        contract, environ=env_for(KEY), sleep=Sleeps(), telemetry_sinks=sinks
    ) as client:
        chat_stream = client.stream(LONG)
        if how == "break":
            with chat_stream:
                for delta in chat_stream:
                    seen.append(delta.content)
                    if delta.content == TAIL_TEXT:
                        break
        else:  # stop reading, close by hand
            iterator = iter(chat_stream)
            while (delta := next(iterator)).content != TAIL_TEXT:
                seen.append(delta.content)
            seen.append(delta.content)
            chat_stream.close()
        chat_stream.close()  # closing again changes nothing
    return seen


async def _async_call(contract, sinks, how: str) -> list[str]:
    seen: list[str] = []
    async with AsyncChatClient.from_contract(
        contract, environ=env_for(KEY), sleep=AsyncSleeps(), telemetry_sinks=sinks
    ) as client:
        chat_stream = client.stream(LONG)
        if how == "break":
            async with chat_stream:
                async for delta in chat_stream:
                    seen.append(delta.content)
                    if delta.content == TAIL_TEXT:
                        break
        else:
            while (delta := await anext(chat_stream)).content != TAIL_TEXT:
                seen.append(delta.content)
            seen.append(delta.content)
            await chat_stream.aclose()
        await chat_stream.aclose()
    return seen


@pytest.mark.anyio
@pytest.mark.parametrize(
    "how", [pytest.param("break", id="break"), pytest.param("close", id="close")]
)
@pytest.mark.parametrize(
    "flavor", [pytest.param("sync", id="sync"), pytest.param("async", id="async")]
)
async def test_a_stream_abandoned_at_its_last_delta_after_a_timeout_still_reports_the_attempt(
    flavor, how
):
    with raw_server(stall_after_a_torn_event(HEAD_TEXT, TAIL_TEXT, silent_s=5)) as server:
        contract = contract_for(server.base_url, timeouts=TIMEOUTS, streaming=Streaming())
        sinks, registry, lines = _sinks(contract)
        if flavor == "sync":
            seen = await asyncio.to_thread(_sync_call, contract, sinks, how)
        else:
            seen = await _async_call(contract, sinks, how)
    # The caller got both deltas: the last one only once the idle limit had ended the attempt.
    assert seen == [HEAD_TEXT, TAIL_TEXT]
    # Prometheus: the timed-out attempt is counted once, under the client's name for it.
    assert timeouts_counted(registry) == {("primary", "stream_stalled"): 1.0}
    # The event log: one line, for that attempt, with the same failure.
    assert [(line["route"], line["attempt"]) for line in lines.exchanges] == [("primary", 1)]
    failure = lines.exchanges[0]["failure"]
    assert failure["code"] == "stream_stalled"
    assert failure["message"] == (
        f"no stream data within idle_ms once content had started ({IDLE_MS} ms)"
    )
