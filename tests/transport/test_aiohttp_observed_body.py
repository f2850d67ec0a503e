"""The aiohttp wire's body feeds the instrumented transport's observer itself (no
``_AsyncObservedStream`` layer per read): the Exchange, the error raised and the bytes handed
over are the ones the wrapping layer gives, for every way a body ends.

The general path is the same transport with its body's ``observe_reads`` hidden (a stream
without it is wrapped, as every other transport's is). Servers bind 127.0.0.1 on a free port.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx2
import pytest

from chatcontract.contract import load_preset
from chatcontract.exchange import Exchange
from chatcontract.transport import AsyncInstrumentedTransport
from chatcontract.transport._aiohttp import AiohttpTransport
from chatcontract.transport.instrumented import _AsyncObservedStream
from raw_servers import COMPLETION, RawServer, raw_server, read_request, reset, trickling_body

CONTRACT = load_preset("cometapi")
BODY = {"model": "gpt-4.1-nano", "messages": [{"role": "user", "content": "hi"}]}
SSE_HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
)


def _chunk(data: bytes) -> bytes:
    return f"{len(data):x}\r\n".encode() + data + b"\r\n"


def _event(text: str, finish: str | None = None) -> bytes:
    reason = "null" if finish is None else f'"{finish}"'
    return (
        b'data: {"id":"c1","model":"gpt-4.1-nano","choices":[{"index":0,"delta":{"content":"'
        + text.encode()
        + b'"},"finish_reason":'
        + reason.encode()
        + b"}]}\n\n"
    )


def _answer(parts: list[bytes], *, end: str) -> Any:
    async def handler(reader: Any, writer: Any, server: RawServer) -> None:
        while await read_request(reader, server) is not None:
            writer.write(SSE_HEAD)
            for part in parts:
                writer.write(_chunk(part))
                await writer.drain()
                await asyncio.sleep(0.01)
            if end == "reset":
                reset(writer)
                return
            if end == "close":
                writer.close()
                return
            writer.write(b"0\r\n\r\n")
            await writer.drain()

    return handler


def _completion(reader_writer_end: str = "whole") -> Any:
    async def handler(reader: Any, writer: Any, server: RawServer) -> None:
        while await read_request(reader, server) is not None:
            head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
            if reader_writer_end == "whole":
                writer.write(head + b"content-length: %d\r\n\r\n" % len(COMPLETION) + COMPLETION)
                await writer.drain()
                continue
            writer.write(head + b"content-length: 500\r\n\r\n" + COMPLETION[:20])
            await writer.drain()
            await asyncio.sleep(0.05)
            reset(writer)
            return

    return handler


class _Hidden(httpx2.AsyncByteStream):
    """A body with its ``observe_reads`` out of sight: the instrumented transport wraps it."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    async def __aiter__(self) -> Any:
        async for piece in self._inner:
            yield piece

    async def aclose(self) -> None:
        await self._inner.aclose()


class _Wrapped(httpx2.AsyncBaseTransport):
    """``AiohttpTransport`` whose bodies go through the general (wrapping) path."""

    def __init__(self) -> None:
        self.inner = AiohttpTransport()

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await self.inner.handle_async_request(request)
        response.stream = _Hidden(response.stream)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


async def _run(
    inner: httpx2.AsyncBaseTransport,
    url: str,
    *,
    stream: bool,
    deadline_s: float | None = None,
    stop_after: int | None = None,
) -> tuple[list[Exchange], bytes, str | None, list[str]]:
    exchanges: list[Exchange] = []
    transport = AsyncInstrumentedTransport(
        contract=CONTRACT, sinks=[exchanges.append], inner=inner, total_timeout=deadline_s
    )
    pieces: list[bytes] = []
    error: str | None = None
    kinds: list[str] = []
    async with httpx2.AsyncClient(transport=_Kinds(transport, kinds), timeout=5.0) as client:
        try:
            async with client.stream("POST", url, json={**BODY, "stream": stream}) as answer:
                async for piece in answer.aiter_raw():
                    pieces.append(piece)
                    if stop_after is not None and len(pieces) >= stop_after:
                        break
        except httpx2.TransportError as exc:
            error = type(exc).__name__
    return exchanges, b"".join(pieces), error, kinds


class _Kinds(httpx2.AsyncBaseTransport):
    """Records the type of each body the instrumented transport hands over."""

    def __init__(self, inner: httpx2.AsyncBaseTransport, kinds: list[str]) -> None:
        self.inner = inner
        self.kinds = kinds

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = await self.inner.handle_async_request(request)
        self.kinds.append(type(response.stream).__name__)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


def _both(handler: Any, **options: Any) -> list[tuple[Any, ...]]:
    async def both(url: str) -> list[tuple[Any, ...]]:
        found = []
        for inner in (AiohttpTransport(), _Wrapped()):
            exchanges, body, error, kinds = await _run(inner, url, **options)
            await inner.aclose()
            assert len(exchanges) == 1  # exactly once, however the body ended
            exchange = exchanges[0]
            found.append(
                (
                    exchange.response,
                    exchange.failure and (exchange.failure.kind, exchange.failure.code),
                    body,
                    error,
                    kinds,
                )
            )
        return found

    with raw_server(handler) as server:
        return asyncio.run(both(server.url))


WAYS = [
    pytest.param(
        _answer([_event("Hel"), _event("lo", "stop"), b"data: [DONE]\n\n"], end="chunked"),
        {"stream": True},
        None,
        id="stream-to-its-end",
    ),
    pytest.param(
        _answer([_event("Hel"), _event("lo")], end="close"),
        {"stream": True},
        "RemoteProtocolError",
        id="stream-cut-mid-body",
    ),
    pytest.param(
        _answer([_event("Hel"), _event("lo")], end="reset"),
        {"stream": True},
        "ReadError",
        id="stream-reset-mid-body",
    ),
    pytest.param(
        _answer([_event("Hel"), _event("lo", "stop"), b"data: [DONE]\n\n"], end="chunked"),
        {"stream": True, "stop_after": 1},
        None,
        id="stream-closed-by-its-reader",
    ),
    pytest.param(_completion(), {"stream": False}, None, id="completion"),
    pytest.param(_completion("reset"), {"stream": False}, "ReadError", id="completion-reset"),
    pytest.param(
        trickling_body(0.1),
        {"stream": False, "deadline_s": 0.5},
        "CallDeadlineError",
        id="deadline-passed-in-the-body",
    ),
]


@pytest.mark.parametrize(("handler", "options", "error"), WAYS)
def test_an_observed_body_gives_what_the_wrapping_layer_gives(handler, options, error):
    fast, general = _both(handler, **options)
    assert fast[4] == ["_Body"]  # the body itself: no layer
    assert general[4] == [_AsyncObservedStream.__name__]
    assert fast[:4] == general[:4]
    assert fast[3] == error


def test_a_body_without_observe_reads_is_wrapped():
    async def run(url: str) -> list[str]:
        _, _, _, kinds = await _run(httpx2.AsyncHTTPTransport(), url, stream=False)
        return kinds

    with raw_server(_completion()) as server:
        assert asyncio.run(run(server.url)) == [_AsyncObservedStream.__name__]
