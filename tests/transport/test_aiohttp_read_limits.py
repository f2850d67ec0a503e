"""The aiohttp wire's body bounds each wait by the attempt's read limit with one timer, armed
only when no timer is armed for the limit that applies: data that keeps coming within the
idle limit is never cut, a silence is cut at the limit and named for it, and a timer that
fired between two reads (a slow reader) is armed again by the next read.

Servers bind 127.0.0.1 on a free port; every wait is bounded (the read timeout is far above
the limits, so a limit that failed to fire shows as a wait near it and a plain read timeout).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx2
import pytest

from chatcontract.client._guard import (
    WATCH_EXTENSION,
    AsyncGuardTransport,
    AttemptWatch,
    FirstTokenTimeoutError,
    IdleTimeoutError,
)
from chatcontract.transport._aiohttp import AiohttpTransport
from raw_servers import RawServer, raw_server, read_request

SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
)
LIMIT_S = 0.3
READ_TIMEOUT_S = 4.0
TOLERANCE_S = 1.5


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def _events(count: int, gap_s: float, *, then_silent: bool) -> Any:
    async def handler(reader: Any, writer: Any, server: RawServer) -> None:
        if await read_request(reader, server) is None:
            return
        writer.write(SSE_HEAD)
        for index in range(count):
            writer.write(_chunk(b'data: {"n":%d}\n\n' % index))
            await writer.drain()
            await asyncio.sleep(gap_s)
        if then_silent:
            await asyncio.sleep(READ_TIMEOUT_S + 2)
            return
        writer.write(b"0\r\n\r\n")
        await writer.drain()

    return handler


async def _read(
    url: str, watch: AttemptWatch, *, pause_s: float = 0.0, tokens: bool = True
) -> tuple[int, BaseException | None, float]:
    """Read the body as the stream reader does (a token, then data, per piece); ``pause_s``:
    the reader's own time per piece. Returns the pieces, the error, the seconds taken."""
    transport = AsyncGuardTransport(AiohttpTransport(), owns_inner=True)
    pieces = 0
    error: BaseException | None = None
    started = time.monotonic()
    async with httpx2.AsyncClient(transport=transport, timeout=READ_TIMEOUT_S) as client:
        request = client.build_request("POST", url, extensions={WATCH_EXTENSION: watch})
        response = await client.send(request, stream=True)
        try:
            async for _ in response.aiter_raw():
                pieces += 1
                if tokens:
                    watch.token_seen = True
                    watch.data_seen()
                if pause_s:
                    await asyncio.sleep(pause_s)
        except httpx2.ReadTimeout as exc:
            error = exc
        finally:
            await response.aclose()
    return pieces, error, time.monotonic() - started


def _watch(*, first_token_s: float | None = LIMIT_S, idle_s: float | None = LIMIT_S) -> Any:
    return AttemptWatch(
        clock=time.monotonic, budget_s=30.0, first_token_s=first_token_s, idle_s=idle_s
    )


def test_data_that_keeps_coming_within_the_idle_limit_is_never_cut():
    # 8 events 0.1 s apart: the stream outlasts the limit several times over, so the timer
    # armed at the first read fires mid-stream and must be moved to the limit as data moved it.
    with raw_server(_events(8, 0.1, then_silent=False)) as server:
        pieces, error, _ = asyncio.run(_read(server.url, _watch()))
    assert error is None
    assert pieces == 8


def test_a_silence_after_data_is_cut_at_the_idle_limit_and_named_for_it():
    watch = _watch(first_token_s=5.0)
    with raw_server(_events(5, 0.1, then_silent=True)) as server:
        pieces, error, took = asyncio.run(_read(server.url, watch))
    assert pieces == 5
    assert isinstance(error, IdleTimeoutError)
    assert error.__cause__ is None  # the limit's timer, not the socket's read timeout
    assert watch.fired == "idle"
    assert took < 0.5 + LIMIT_S + TOLERANCE_S


def test_a_limit_timer_that_fired_between_two_reads_is_armed_again_by_the_next():
    # No token ever (keep-alive-like data): the first-token limit. The reader holds each piece
    # past the limit, so the timer fires while no read waits; the next read, on a socket gone
    # silent, must still be cut at the limit.
    watch = _watch()
    with raw_server(_events(1, 0.0, then_silent=True)) as server:
        pieces, error, took = asyncio.run(
            _read(server.url, watch, pause_s=LIMIT_S * 2, tokens=False)
        )
    assert pieces == 1
    assert isinstance(error, FirstTokenTimeoutError)
    assert error.__cause__ is None
    assert watch.fired == "first_token"
    assert took < LIMIT_S * 3 + TOLERANCE_S


@pytest.mark.parametrize(
    ("first_token_s", "idle_s", "tokens"),
    [(None, LIMIT_S, False), (LIMIT_S, None, True)],
    ids=["no-first-token-limit", "no-idle-limit-after-the-first-token"],
)
def test_a_read_with_no_limit_waits_for_the_read_timeout(first_token_s, idle_s, tokens):
    watch = _watch(first_token_s=first_token_s, idle_s=idle_s)
    with raw_server(_events(1, 0.0, then_silent=True)) as server:
        pieces, error, _ = asyncio.run(_read(server.url, watch, tokens=tokens))
    assert pieces == 1
    assert type(error) is httpx2.ReadTimeout  # the socket's, not a limit's
    assert watch.fired is None
