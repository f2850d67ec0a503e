"""The gateway's upstream side: ``AsyncChatClient`` driving the same ``CallPlan``, handing
back what a pass-through proxy needs instead of text deltas.

Everything that decides (classification, retries and fallbacks by failure class, the one
deadline, budgets, breakers, redaction, mid-stream continuation) is the client's: the plan,
the core and the instrumented transport are the ones ``ChatClient`` uses. Only what is handed
back differs:

- ``complete``: the successful attempt's body as the provider sent it (every field kept).
- ``stream``: the data payloads of the upstream's good chunks as they arrive, read from the
  transport's one stream parser (``StreamParser.tap``), marked by attempt and by whether text
  reached the reader, so the caller can drop an attempt that failed before its first token
  and keep the client's stream one answer.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, AsyncIterable, Generator, Mapping, Sequence
from typing import Any, NamedTuple

import anyio
import httpx2
import orjson
from msgspec import Struct

from chatcontract.client import AsyncChatClient
from chatcontract.client._async import send
from chatcontract.client._core import TRANSPORT_ERRORS, PreparedCall
from chatcontract.client._plan import AttemptOutcome, Fail, Finish, Send, Step, Wait
from chatcontract.client._routes import Route
from chatcontract.client._shell import Attempt as _ShellAttempt
from chatcontract.client._stream import StreamReader
from chatcontract.client.result import ChatResult
from chatcontract.contract import Contract
from chatcontract.wire import Completion

from ._disconnect import holding_disconnect

__all__ = ["Attempt", "GatewayUpstream", "Payloads", "StreamItem"]


class Attempt(Struct, frozen=True):
    """A new attempt starts (what the previous one sent that was not delivered is void)."""

    step: Send


class Payloads(NamedTuple):
    """Chunk payloads (JSON text as UTF-8 bytes) of the current attempt, in order;
    ``delivered``: text of this attempt has reached the reader (from these payloads on, they
    are the answer);
    ``pings``: keep-alive comments that arrived with them;
    ``last``: the call's last payloads, a ``Finish`` follows at once (they may go out with
    it). (A named tuple: one is made per upstream read, and a frozen dataclass costs several
    times as much to build.)"""

    items: list[bytes]
    delivered: bool
    pings: int = 0
    last: bool = False


StreamItem = Attempt | Payloads | Finish | Fail
#: ``Payloads(items, delivered, pings, last)`` without the named tuple's Python ``__new__``
#: (every field given: it fills in no default).
_new = tuple.__new__


class GatewayUpstream(AsyncChatClient):
    """``AsyncChatClient`` for the gateway: same arguments (and ``shape_sample_rate``, the
    share of successful calls whose shapes are fingerprinted), same decisions (see module)."""

    def __init__(
        self, contract: Contract, *, shape_sample_rate: float = 1.0, **options: Any
    ) -> None:
        if not 0.0 <= shape_sample_rate <= 1.0:
            raise ValueError("shape_sample_rate must be between 0 and 1")
        self._shape_sample_rate = shape_sample_rate
        super().__init__(contract, **options)

    def prepare(
        self,
        messages: Sequence[Any],
        params: Mapping[str, Any],
        *,
        stream: bool,
        deadline_s: float | None,
        routes: Sequence[Route],
        kill_switch: bool,
        body: tuple[str, bytes] | None = None,
    ) -> PreparedCall:
        """Check and plan one call (``NonRetryableError``: the contract rejects it, nothing
        is sent). ``body``: a model and the JSON bytes that are already the call's body for
        a route of that model (sent as they are instead of encoded again)."""
        call = self._core.prepare(
            messages,
            params,
            stream=stream,
            deadline_s=deadline_s,
            headers=None,
            routes=routes,
            kill_switch=kill_switch,
        )
        if body is not None:
            model, content = body
            call.encoded[model] = content
        return call

    async def complete_body(self, call: PreparedCall) -> tuple[ChatResult, bytes]:
        """Run a non-streamed call: its result and the answering attempt's body.

        Raises:
            CallFailedError: the plan gave up (the same errors ``complete`` raises).
        """
        step = call.plan.start()
        body = b""
        while True:
            if isinstance(step, Wait):
                await self._sleep(step.seconds)
                step = call.plan.resume()
            elif isinstance(step, Send):
                outcome, body = await self._body_attempt(call, step)
                step = call.plan.on_outcome(outcome)
            elif isinstance(step, Finish):
                return step.result, body
            else:
                raise step.error

    async def stream_items(self, call: PreparedCall) -> AsyncGenerator[StreamItem, None]:
        """Run a streamed call: ``Attempt``, ``Payloads``..., then one ``Finish`` or ``Fail``.

        Close the generator to cancel the call: the upstream response is closed at once.

        Each attempt is read here, as ``AsyncChatClient._stream_attempt`` reads it, yielding
        the payloads of its good chunks instead of text deltas (in this one generator: a
        layer per attempt would cost a resumption per read).
        """
        step: Step = call.plan.start()
        while True:
            if isinstance(step, Wait):
                await self._sleep(step.seconds)
                step = call.plan.resume()
                continue
            if not isinstance(step, Send):
                yield step
                return
            yield Attempt(step)
            attempt = self._attempt(call, step)
            if not self._armed():
                await self._arm()
            try:
                response = await send(attempt, stream=True)
            except TRANSPORT_ERRORS as exc:
                step = call.plan.on_outcome(attempt.streamed(None, exc))
                continue
            reader = StreamReader.of(response.extensions)
            if reader is None:  # no SSE body (an error, or a provider ignoring ``stream``)
                outcome = await _read_whole(attempt, response)
                if outcome.delivered and outcome.answer is not None:
                    yield Payloads(_as_chunks(outcome.answer), True)
                step = call.plan.on_outcome(outcome)
                continue
            taken = reader.tap()
            watch = attempt.watch
            forward = reader.forward
            pings = 0
            error: BaseException | None = None
            try:
                async for _ in _body(response):  # the transport's parser took the chunk
                    stop = forward(watch)
                    seen = reader.pings
                    # From the read that brought ``[DONE]`` on, what was taken waits for the
                    # attempt's end (the body's, at once as a rule): with a ``Finish`` next,
                    # the client gets it and the end of the stream in one piece.
                    if (taken or seen != pings) and not reader.done_seen:
                        yield _new(Payloads, (taken[:], reader.delivered, seen - pings, False))
                        taken.clear()
                        pings = seen
                    if stop:
                        break
            except TRANSPORT_ERRORS as exc:
                error = exc
            finally:
                # Shielded: a client that went away cancels the call, and the connection
                # must still be closed (not returned to the pool half read, nor leaked).
                await _aclose_shielded(response)
            # A last event without its blank line is part of the result: deliver it as well.
            reader.forwarded_last()
            # The outcome first (a timed-out attempt reaches telemetry there), and the plan's
            # next step: a client that goes away at the last payload must not keep the
            # attempt from being reported.
            outcome = attempt.streamed(reader, error)
            step = call.plan.on_outcome(outcome)
            seen = reader.pings
            if taken or seen != pings:
                last = isinstance(step, Finish)
                yield _new(Payloads, (taken[:], reader.delivered, seen - pings, last))
                taken.clear()


def _body(response: httpx2.Response) -> AsyncIterable[bytes]:
    """The response's body as the transport hands it over: ``response.aiter_raw()`` without
    its layer (a resumption per read), which adds nothing here: no ``chunk_size`` to cut to,
    errors that already carry their request, and a close that ``stream_items`` makes itself
    (shielded) in every case."""
    stream = response.stream
    if not isinstance(stream, httpx2.AsyncByteStream):
        return response.aiter_raw()  # raises as httpx2 does for a sync stream
    if response.is_stream_consumed:
        raise httpx2.StreamConsumed()
    response.is_stream_consumed = True
    return stream


async def _read_whole(
    attempt: _ShellAttempt[httpx2.AsyncClient, httpx2.AsyncBaseTransport],
    response: httpx2.Response,
) -> AttemptOutcome:
    """The outcome of an attempt whose answer is no SSE stream: its body read whole."""
    body = b""
    error: BaseException | None = None
    try:
        body = await response.aread()
    except TRANSPORT_ERRORS as exc:
        error = exc
    finally:
        await _aclose_shielded(response)
    return attempt.read(body, error)


async def _aclose_shielded(response: httpx2.Response) -> None:
    """``response.aclose()``, never cut short by a cancellation.

    A cancellation reaches a task only where it waits: a close that does not wait (the
    aiohttp wire's never does) runs to its end as it is, with no cancel scope to enter; one
    that waits finishes under a shielded scope, a client's disconnect held until it ends."""
    if (
        isinstance(response, httpx2.Response)
        and not response.is_closed
        and isinstance(response.stream, httpx2.AsyncByteStream)
    ):
        closing = _close_body(response, response.stream).__await__()
    else:  # closed already, a sync stream (httpx2's error), or not httpx2's response
        closing = response.aclose().__await__()
    try:
        first = closing.send(None)
    except StopIteration:
        return
    with holding_disconnect(), anyio.CancelScope(shield=True):
        await _Rest(closing, first)


async def _close_body(response: httpx2.Response, stream: httpx2.AsyncByteStream) -> None:
    """``response.aclose()`` of an open response's async stream, as httpx2 runs it (closed
    first, open again if the close fails or is cancelled, a ``RequestError`` given the
    request) without its request-context manager: a generator-based context manager per
    close, whose exit raises and catches a ``StopIteration``."""
    response.is_closed = True
    try:
        await stream.aclose()
    except httpx2.RequestError as exc:
        response.is_closed = False
        with contextlib.suppress(RuntimeError):  # a response without its request: none
            exc.request = response.request
        raise
    except BaseException:
        response.is_closed = False  # cancelled or failed: a later ``aclose()`` retries
        raise


class _Rest:
    """The rest of an awaitable already stepped once (it yielded ``first``), as an
    awaitable: what the task sends or throws in is passed on to it."""

    __slots__ = ("_first", "_it")

    def __init__(self, it: Generator[Any, Any, None], first: Any) -> None:
        self._it = it
        self._first = first

    def __await__(self) -> Generator[Any, Any, None]:
        it, value = self._it, self._first
        while True:
            try:
                sent = yield value
            except GeneratorExit:
                it.close()
                raise
            except BaseException as exc:  # a cancellation: passed on
                try:
                    value = it.throw(exc)
                except StopIteration:
                    return
            else:
                try:
                    value = it.send(sent)
                except StopIteration:
                    return


def _as_chunks(answer: Completion) -> list[bytes]:
    """A whole answer to a stream request that came back as one JSON body, as stream chunks
    (content, then the finish and usage)."""
    base: dict[str, Any] = {
        "id": answer.id or "chatcmpl-gateway",
        "object": "chat.completion.chunk",
        "created": answer.created or 0,
        "model": answer.model or "",
    }
    delta = {"role": "assistant", "content": answer.content or ""}
    chunks = [
        {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": None}]},
        {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": answer.finish_reason}]},
    ]
    usage = answer.usage
    if usage is not None:
        chunks.append(
            {
                **base,
                "choices": [],
                "usage": {
                    "prompt_tokens": usage.prompt_tokens,
                    "completion_tokens": usage.completion_tokens,
                    "total_tokens": usage.total_tokens,
                },
            }
        )
    return [orjson.dumps(chunk) for chunk in chunks]
