"""``AsyncChatClient``: the asynchronous shell around ``CallPlan`` (decisions live there).

The same API as ``ChatClient`` with ``await``; everything but the I/O calls is shared
(``_shell``, ``_core``, ``_stream``), and the parity test checks both make the same attempts
and decisions for the same scenario.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Mapping,
    Sequence,
)
from typing import Any

import anyio
import httpx2

from chatcontract._loopclose import LoopCloser
from chatcontract.transport import AsyncInstrumentedTransport, install_backend

from ._core import TRANSPORT_ERRORS, PlanSteps, PreparedCall
from ._guard import AsyncGuardTransport
from ._plan import AttemptOutcome, Send, Wait
from ._request import send_async
from ._shell import (
    AsyncCloses,
    Attempt,
    ClientShell,
    ShellParts,
    StreamHandle,
    aread_capped,
    whole_answer_delta,
)
from ._stream import StreamReader
from .result import ChatResult, StreamDelta

__all__ = ["AsyncChatClient", "AsyncChatStream", "send"]

_Sleep = Callable[[float], Awaitable[None]]


def _own_transport() -> httpx2.AsyncHTTPTransport:
    transport = httpx2.AsyncHTTPTransport(retries=0)
    install_backend(transport, is_async=True)
    return transport


class AsyncChatStream(StreamHandle, AsyncCloses):
    """The async twin of ``ChatStream``: ``async for delta in stream``, then ``.result``.

    Example::

        async with client.stream(messages) as stream:
            async for delta in stream:
                print(delta.content, end="")
        stream.result.usage
    """

    __slots__ = ("_deltas",)

    def __init__(self, deltas: AsyncGenerator[StreamDelta, None], steps: PlanSteps) -> None:
        super().__init__(steps)
        self._deltas = deltas

    def __aiter__(self) -> AsyncIterator[StreamDelta]:
        return self

    async def __anext__(self) -> StreamDelta:
        return await anext(self._deltas)

    async def until_done(self) -> ChatResult:
        """Read the rest of the stream and return the result."""
        async for _ in self:
            pass
        return self.result

    async def aclose(self) -> None:
        """Stop reading and release the connection."""
        self._closed = True
        await self._deltas.aclose()


class AsyncChatClient(
    ClientShell[httpx2.AsyncClient, httpx2.AsyncBaseTransport, _Sleep, AsyncChatStream],
    AsyncCloses,
):
    """The async twin of ``ChatClient``: same arguments (``transport`` is an
    ``httpx2.AsyncBaseTransport``, ``sleep`` a coroutine function), same behaviour.

    Close it with ``aclose()`` or ``async with``. One never closed still closes its own
    connections in the event loop that opened them: when it is collected while the loop runs,
    or when the loop shuts down (``asyncio.run`` and ``anyio.run`` do that before returning; a
    loop run by hand does it in ``loop.shutdown_asyncgens()``, to await before ``loop.close()``).

    Example::

        async with AsyncChatClient.from_contract("chatcontract.yaml") as client:
            result = await client.complete(messages, max_tokens=16)
    """

    _parts = ShellParts(
        sleep=anyio.sleep,
        own_transport=_own_transport,
        transport_base=httpx2.AsyncBaseTransport,
        guard=AsyncGuardTransport,
        instrumented=AsyncInstrumentedTransport,
        http_client=httpx2.AsyncClient,
        stream=AsyncChatStream,
    )
    #: Closes our own transports in their event loop; None with a transport passed in.
    _closer: LoopCloser | None = None

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
        for step in (steps := PlanSteps(call.plan, call.plan.start())):
            if isinstance(step, Wait):
                await self._sleep(step.seconds)
            else:
                steps.report(await self._complete_attempt(call, step))
        return steps.result

    async def aclose(self) -> None:
        """Close every route's connection pool."""
        if self._closer is not None:
            await self._closer.aclose()
        for client in self._http.values():
            await client.aclose()

    # -- attempts ------------------------------------------------------------------------

    async def _complete_attempt(self, call: PreparedCall, step: Send) -> AttemptOutcome:
        return (await self._body_attempt(call, step))[0]

    async def _body_attempt(self, call: PreparedCall, step: Send) -> tuple[AttemptOutcome, bytes]:
        """One non-streamed attempt: its outcome and the body it read (the gateway passes a
        successful body through as it came)."""
        attempt = self._attempt(call, step)
        if not self._armed():
            await self._arm()
        try:
            body = await aread_capped(await send(attempt, stream=True))
        except TRANSPORT_ERRORS as exc:
            return attempt.read(b"", exc), b""
        return attempt.read(body, None), body

    async def _stream_steps(
        self, call: PreparedCall, steps: PlanSteps, on_restart: Callable[[], object] | None
    ) -> AsyncGenerator[StreamDelta, None]:
        for step in steps:
            if isinstance(step, Wait):
                await self._sleep(step.seconds)
                continue
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
            steps.report(outcome[0])

    async def _stream_attempt(
        self, call: PreparedCall, step: Send, out: list[AttemptOutcome]
    ) -> AsyncGenerator[StreamDelta, None]:
        """The async twin of ``ChatClient._stream_attempt``; its outcome goes to ``out`` (an
        async generator returns no value)."""
        attempt = self._attempt(call, step)
        if not self._armed():
            await self._arm()
        try:
            response = await send(attempt, stream=True)
        except TRANSPORT_ERRORS as exc:
            out.append(attempt.streamed(None, exc))
            return
        reader = StreamReader.of(response.extensions)
        error: BaseException | None = None
        if reader is None:  # no SSE body: read it whole
            body = b""
            try:
                body = await aread_capped(response)
            except TRANSPORT_ERRORS as exc:
                error = exc
            out.append(attempt.read(body, error))
            if (whole := whole_answer_delta(out[0])) is not None:
                yield whole
            return
        try:
            async for _ in response.aiter_raw():  # the transport's parser took the chunk
                if (delta := reader.step(attempt.watch)) is not None:
                    yield delta
                if reader.early_verdict is not None:
                    break
        except TRANSPORT_ERRORS as exc:
            error = exc
        finally:
            await response.aclose()
        # The outcome before the last delta (as in ``ChatClient._stream_attempt``): a caller
        # who stops at that delta must not keep a timed-out attempt from its telemetry.
        last = reader.last()
        out.append(attempt.streamed(reader, error))
        if last is not None:
            yield last

    def _armed(self) -> bool:
        """Whether :meth:`_arm` has nothing to do (checked first: no coroutine per attempt)."""
        closer = self._closer
        return closer is None or closer.armed()

    async def _arm(self) -> None:
        """Before an attempt: our transports will be closed by the loop it runs in."""
        if self._closer is not None:
            await self._closer.enter()

    def _close_when_abandoned(self, transports: tuple[httpx2.AsyncBaseTransport, ...]) -> None:
        # The closer holds the transports, never the client (so that it can be collected).
        self._closer = LoopCloser(functools.partial(_aclose_all, transports))


def send(
    attempt: Attempt[httpx2.AsyncClient, httpx2.AsyncBaseTransport], *, stream: bool = False
) -> Coroutine[Any, Any, httpx2.Response]:
    """Send an attempt's request: to its route's transport when it was built from the route's
    template (``send_async``), else with ``client.send``. Returns the coroutine doing it (no
    layer of its own: the wait for the response head passes through one frame less)."""
    if attempt.transport is None:
        return attempt.client.send(attempt.request, stream=stream)
    return send_async(attempt.client, attempt.transport, attempt.request, stream=stream)


async def _aclose_all(transports: tuple[httpx2.AsyncBaseTransport, ...]) -> None:
    for transport in transports:
        with contextlib.suppress(Exception):  # at loop shutdown, a failed close must not print
            await transport.aclose()
