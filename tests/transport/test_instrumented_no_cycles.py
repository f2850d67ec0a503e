"""A call through the instrumented transports leaves no reference cycle behind: everything it
made (the request's extensions, the call's sinks, the observer, the stream parser, the
Exchange) is freed when the last reference goes, not left for the garbage collector (whose
collections cost every later call, and whose full ones walk the whole heap)."""

from __future__ import annotations

import asyncio
import gc
from collections.abc import Iterator

import httpx2
import pytest

from chatcontract.contract import load_preset
from chatcontract.exchange import Exchange
from chatcontract.transport import AsyncInstrumentedTransport, InstrumentedTransport

CONTRACT = load_preset("cometapi")
URL = "http://upstream.test/v1/chat/completions"
BODY = {"model": "gpt-4.1-nano", "messages": [{"role": "user", "content": "hi"}]}
COMPLETION = (
    b'{"id":"c1","object":"chat.completion","model":"gpt-4.1-nano","choices":[{"index":0,'
    b'"message":{"role":"assistant","content":"pong"},"finish_reason":"stop"}],'
    b'"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}'
)
STREAM = (
    b'data: {"id":"c1","model":"gpt-4.1-nano","choices":[{"index":0,"delta":{"content":"po"},'
    b'"finish_reason":null}]}\n\n'
    b'data: {"id":"c1","model":"gpt-4.1-nano","choices":[{"index":0,"delta":{"content":"ng"},'
    b'"finish_reason":"stop"}]}\n\n'
    b"data: [DONE]\n\n"
)


class _Pieces(httpx2.SyncByteStream, httpx2.AsyncByteStream):
    """A live-like body (no ``_content``): observed as it is read."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def __iter__(self) -> Iterator[bytes]:
        yield self._body

    async def __aiter__(self):  # type: ignore[no-untyped-def]
        yield self._body


def _answer(request: httpx2.Request) -> httpx2.Response:
    if b'"stream":true' in request.content:
        return httpx2.Response(
            200, headers={"content-type": "text/event-stream"}, stream=_Pieces(STREAM)
        )
    return httpx2.Response(
        200, headers={"content-type": "application/json"}, stream=_Pieces(COMPLETION)
    )


def _sync_call(stream: bool, exchanges: list[Exchange]) -> None:
    transport = InstrumentedTransport(
        contract=CONTRACT, sinks=[exchanges.append], inner=httpx2.MockTransport(_answer)
    )
    with httpx2.Client(transport=transport) as client:
        client.post(URL, json={**BODY, "stream": stream}).read()


def _async_call(stream: bool, exchanges: list[Exchange]) -> None:
    async def call() -> None:
        transport = AsyncInstrumentedTransport(
            contract=CONTRACT, sinks=[exchanges.append], inner=httpx2.MockTransport(_answer)
        )
        async with httpx2.AsyncClient(transport=transport) as client:
            await (await client.post(URL, json={**BODY, "stream": stream})).aread()

    asyncio.run(call())


@pytest.mark.parametrize("stream", [False, True], ids=["completion", "stream"])
@pytest.mark.parametrize("call", [_sync_call, _async_call], ids=["sync", "async"])
def test_a_call_leaves_no_reference_cycle_behind(call, stream):
    exchanges: list[Exchange] = []
    call(stream, exchanges)  # warm: imports, caches
    gc.collect()
    enabled = gc.isenabled()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for _ in range(3):
            call(stream, exchanges)
        gc.collect()
        left = {type(found).__name__ for found in gc.garbage}
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        if enabled:
            gc.enable()
    assert len(exchanges) == 4
    assert exchanges[-1].failure is None
    assert not left & {"_CallSinks", "CallObserver", "StreamParser", "Exchange", "PhaseClock"}
