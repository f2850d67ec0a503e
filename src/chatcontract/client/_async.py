"""``AsyncChatClient``: the asynchronous shell around ``CallPlan`` (decisions live there).

The same API as ``ChatClient`` with ``await``; the parity test checks both make the same
attempts and decisions for the same scenario.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import random
import time
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Self

import anyio
import httpx2

from chatcontract.contract import Contract, load
from chatcontract.telemetry.events import TelemetrySink
from chatcontract.transport import AsyncInstrumentedTransport, install_backend

from ._core import TRANSPORT_ERRORS, ClientCore, PreparedCall, default_wall_clock
from ._guard import AsyncGuardTransport
from ._plan import AttemptOutcome, Fail, Finish, Send, Step, Wait
from ._shell import ClientShell
from ._stream import StreamReader
from .result import ChatResult, StreamDelta

__all__ = ["AsyncChatClient", "AsyncChatStream"]


class _Holder:
    __slots__ = ("result",)

    def __init__(self) -> None:
        self.result: ChatResult | None = None


class AsyncChatStream:
    """The async twin of ``ChatStream``: ``async for delta in stream``, then ``.result``.

    Example::

        async with client.stream(messages) as stream:
            async for delta in stream:
                print(delta.content, end="")
        stream.result.usage
    """

    def __init__(self, steps: AsyncGenerator[StreamDelta, None], holder: _Holder) -> None:
        self._steps = steps
        self._holder = holder

    def __aiter__(self) -> AsyncIterator[StreamDelta]:
        return self

    async def __anext__(self) -> StreamDelta:
        return await self._steps.__anext__()

    @property
    def result(self) -> ChatResult:
        """The assembled answer; ``RuntimeError`` before the stream was read to its end."""
        if self._holder.result is None:
            raise RuntimeError("the stream has not finished: iterate it to the end first")
        return self._holder.result

    async def until_done(self) -> ChatResult:
        """Read the rest of the stream and return the result."""
        async for _ in self:
            pass
        return self.result

    async def aclose(self) -> None:
        """Stop reading and release the connection."""
        await self._steps.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


class AsyncChatClient(ClientShell[httpx2.AsyncClient]):
    """The async twin of ``ChatClient``: same arguments (``transport`` is an
    ``httpx2.AsyncBaseTransport``, ``sleep`` a coroutine function), same behaviour.

    Example::

        async with AsyncChatClient.from_contract("chatcontract.yaml") as client:
            result = await client.complete(messages, max_tokens=16)
    """

    #: The fraction of successful calls whose shapes the transport fingerprints (failures
    #: always are): every call here; a subclass serving many calls (the gateway) samples.
    _shape_sample_rate: float = 1.0

    def __init__(
        self,
        contract: Contract,
        *,
        model: str | None = None,
        environ: Mapping[str, str] | None = None,
        telemetry_sinks: Sequence[TelemetrySink] = (),
        transport: httpx2.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        wall_clock: Callable[[], float] = default_wall_clock,
        capture_content: bool = False,
    ) -> None:
        self._core = ClientCore(
            contract,
            model=model,
            environ=environ,
            telemetry_sinks=telemetry_sinks,
            clock=clock,
            rng=rng,
            wall_clock=wall_clock,
        )
        self._sleep = sleep
        self._http: dict[str, httpx2.AsyncClient] = {}
        for route in self._core.routes:
            inner = transport if transport is not None else _own_transport()
            instrumented = AsyncInstrumentedTransport(
                contract=contract,
                sinks=self._core.transport_sinks(),
                inner=AsyncGuardTransport(inner, owns_inner=transport is None),
                secrets=self._core.secrets,
                capture_content=capture_content,
                shape_sample_rate=self._shape_sample_rate,
            )
            self._http[route.name] = httpx2.AsyncClient(
                transport=instrumented, follow_redirects=False
            )

    @classmethod
    def from_contract(
        cls,
        path_or_contract: str | os.PathLike[str] | Contract,
        *,
        model: str | None = None,
        environ: Mapping[str, str] | None = None,
        telemetry_sinks: Sequence[TelemetrySink] = (),
        transport: httpx2.AsyncBaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
        wall_clock: Callable[[], float] = default_wall_clock,
        capture_content: bool = False,
    ) -> AsyncChatClient:
        """A client for a contract file (path) or a ``Contract``; see ``ChatClient``."""
        contract = (
            path_or_contract if isinstance(path_or_contract, Contract) else load(path_or_contract)
        )
        return cls(
            contract,
            model=model,
            environ=environ,
            telemetry_sinks=telemetry_sinks,
            transport=transport,
            clock=clock,
            rng=rng,
            sleep=sleep,
            wall_clock=wall_clock,
            capture_content=capture_content,
        )

    # -- calls ---------------------------------------------------------------------------

    async def complete(
        self,
        messages: Sequence[Any],
        *,
        deadline_s: float | None = None,
        headers: Mapping[str, str] | None = None,
        **params: Any,
    ) -> ChatResult:
        """Send a chat completion and return the answer; see ``ChatClient.complete``."""
        call = self._core.prepare(
            messages, params, stream=False, deadline_s=deadline_s, headers=headers
        )
        step = call.plan.start()
        while True:
            if isinstance(step, Wait):
                await self._sleep(step.seconds)
                step = call.plan.resume()
            elif isinstance(step, Send):
                step = call.plan.on_outcome(await self._complete_attempt(call, step))
            elif isinstance(step, Finish):
                return step.result
            else:
                raise step.error

    def stream(
        self,
        messages: Sequence[Any],
        *,
        deadline_s: float | None = None,
        headers: Mapping[str, str] | None = None,
        on_restart: Callable[[], object] | None = None,
        **params: Any,
    ) -> AsyncChatStream:
        """Stream a chat completion; see ``ChatClient.stream`` (checks raise here, at once).

        ``on_restart`` may be a plain or an async function."""
        call = self._core.prepare(
            messages,
            params,
            stream=True,
            deadline_s=deadline_s,
            headers=headers,
            accepts_restart=on_restart is not None,
        )
        first = call.plan.start()
        if isinstance(first, Fail):
            raise first.error
        holder = _Holder()
        return AsyncChatStream(self._stream_steps(call, first, holder, on_restart), holder)

    # -- attempts ------------------------------------------------------------------------

    async def _complete_attempt(self, call: PreparedCall, step: Send) -> AttemptOutcome:
        return (await self._body_attempt(call, step))[0]

    async def _body_attempt(self, call: PreparedCall, step: Send) -> tuple[AttemptOutcome, bytes]:
        """One non-streamed attempt: its outcome and the body it read (the gateway passes a
        successful body through as it came)."""
        client, request, _ = self._request(call, step)
        body, error = b"", None
        try:
            body = (await client.send(request)).content
        except TRANSPORT_ERRORS as exc:
            error = exc
        return self._core.body_outcome(request, step, call, body, error), body

    async def _stream_steps(
        self,
        call: PreparedCall,
        step: Step,
        holder: _Holder,
        on_restart: Callable[[], object] | None,
    ) -> AsyncGenerator[StreamDelta, None]:
        while True:
            if isinstance(step, Wait):
                await self._sleep(step.seconds)
                step = call.plan.resume()
            elif isinstance(step, Send):
                if step.restart and on_restart is not None:
                    called = on_restart()  # before the new attempt's first delta
                    if inspect.isawaitable(called):
                        await called
                outcome: list[AttemptOutcome] = []
                # aclosing: a caller leaving early closes the attempt (and its response) now,
                # not whenever the event loop finalises the generator.
                async with contextlib.aclosing(self._stream_attempt(call, step, outcome)) as it:
                    async for delta in it:
                        yield delta
                step = call.plan.on_outcome(outcome[0])
            elif isinstance(step, Finish):
                holder.result = step.result
                return
            else:
                raise step.error

    async def _stream_attempt(
        self, call: PreparedCall, step: Send, out: list[AttemptOutcome]
    ) -> AsyncGenerator[StreamDelta, None]:
        client, request, watch = self._request(call, step)
        core = self._core
        error: BaseException | None = None
        try:
            response = await client.send(request, stream=True)
        except TRANSPORT_ERRORS as exc:
            out.append(core.stream_outcome(request, step, call, None, exc))
            return
        reader = StreamReader.of(response.extensions)
        if reader is None:  # no SSE body (an error, or a provider ignoring ``stream``)
            body = b""
            try:
                body = await response.aread()
            except TRANSPORT_ERRORS as exc:
                error = exc
            finally:
                await response.aclose()
            outcome = core.body_outcome(request, step, call, body, error)
            if outcome.delivered and outcome.answer is not None and outcome.answer.content:
                yield StreamDelta(content=outcome.answer.content)
            out.append(outcome)
            return
        try:
            async for _ in response.aiter_raw():  # the transport's parser took the chunk
                delta = reader.advance(watch)
                if delta is not None:
                    yield delta
                if reader.early_verdict is not None:
                    break
        except TRANSPORT_ERRORS as exc:
            error = exc
        finally:
            await response.aclose()
        # A last event without its blank line is part of the result: deliver it as well.
        delta = reader.take()
        if delta is not None:
            reader.delivered = True
            yield delta
        out.append(core.stream_outcome(request, step, call, reader, error))

    # -- lifecycle -----------------------------------------------------------------------

    async def aclose(self) -> None:
        """Close every route's connection pool."""
        for client in self._http.values():
            await client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()


def _own_transport() -> httpx2.AsyncHTTPTransport:
    transport = httpx2.AsyncHTTPTransport(retries=0)
    install_backend(transport, is_async=True)
    return transport
