"""``ChatClient``: the synchronous shell around ``CallPlan`` (decisions live there)."""

from __future__ import annotations

import contextlib
import os
import random
import time
import weakref
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Self

import httpx2

from chatcontract.contract import Contract, load
from chatcontract.telemetry.events import TelemetrySink
from chatcontract.transport import InstrumentedTransport, install_backend

from ._core import TRANSPORT_ERRORS, ClientCore, PreparedCall, default_wall_clock
from ._guard import GuardTransport
from ._plan import AttemptOutcome, Fail, Finish, Send, Step, Wait
from ._shell import ClientShell
from ._stream import StreamReader
from .result import ChatResult, StreamDelta

__all__ = ["ChatClient", "ChatStream"]


class ChatStream:
    """A streamed call: iterate for ``StreamDelta`` values; ``result`` once it ended.

    The request is sent when iteration starts; the deadline runs from the ``stream()`` call.
    A failure before any delta reached you is retried or falls back like ``complete()``;
    after that the stream is continued (a route declaring a ``continuation``: only new text
    follows) or restarted (``on_restart`` given), else ``StreamInterrupted`` is raised with
    the partial content. Close it (or use ``with``) if you stop early.

    Example::

        with client.stream(messages) as stream:
            for delta in stream:
                print(delta.content, end="")
        stream.result.finish_reason, stream.result.usage
    """

    def __init__(self, steps: Generator[StreamDelta, None, ChatResult]) -> None:
        self._steps = steps
        self._result: ChatResult | None = None

    def __iter__(self) -> Iterator[StreamDelta]:
        return self

    def __next__(self) -> StreamDelta:
        try:
            return next(self._steps)
        except StopIteration as stop:
            if stop.value is not None:  # only the first StopIteration carries the result
                self._result = stop.value
            raise

    @property
    def result(self) -> ChatResult:
        """The assembled answer; ``RuntimeError`` before the stream was read to its end."""
        if self._result is None:
            raise RuntimeError("the stream has not finished: iterate it to the end first")
        return self._result

    def until_done(self) -> ChatResult:
        """Read the rest of the stream and return the result."""
        for _ in self:
            pass
        return self.result

    def close(self) -> None:
        """Stop reading and release the connection."""
        self._steps.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class ChatClient(ClientShell[httpx2.Client]):
    """A chat completions client whose retries, fallbacks, deadline and budget follow the
    contract, decided per failure class, with an Exchange recorded for every attempt.

    Build it with ``from_contract``. One ``httpx2.Client`` per route, each behind an
    ``InstrumentedTransport``; nothing below retries (httpx2 transport retries are 0).

    Example::

        with ChatClient.from_contract("chatcontract.yaml") as client:
            result = client.complete([{"role": "user", "content": "Reply with exactly: pong"}],
                                      max_tokens=16)
            result.content, result.route, len(result.attempts)

    Raises ``CallFailedError`` subclasses (``chatcontract.client.errors``) when a call fails.
    """

    def __init__(
        self,
        contract: Contract,
        *,
        model: str | None = None,
        environ: Mapping[str, str] | None = None,
        telemetry_sinks: Sequence[TelemetrySink] = (),
        transport: httpx2.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
        sleep: Callable[[float], None] = time.sleep,
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
        self._http: dict[str, httpx2.Client] = {}
        for route in self._core.routes:
            inner = transport if transport is not None else _own_transport()
            instrumented = InstrumentedTransport(
                contract=contract,
                sinks=self._core.transport_sinks(),
                inner=GuardTransport(inner, owns_inner=transport is None),
                secrets=self._core.secrets,
                capture_content=capture_content,
            )
            self._http[route.name] = httpx2.Client(transport=instrumented, follow_redirects=False)
        # A client the application never closes still closes its sockets (when collected,
        # or at exit) instead of leaving them to the garbage collector.
        weakref.finalize(self, _close_all, tuple(self._http.values()))

    @classmethod
    def from_contract(
        cls,
        path_or_contract: str | os.PathLike[str] | Contract,
        *,
        model: str | None = None,
        environ: Mapping[str, str] | None = None,
        telemetry_sinks: Sequence[TelemetrySink] = (),
        transport: httpx2.BaseTransport | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
        sleep: Callable[[float], None] = time.sleep,
        wall_clock: Callable[[], float] = default_wall_clock,
        capture_content: bool = False,
    ) -> ChatClient:
        """A client for a contract file (path) or a ``Contract``.

        Args:
            model: overrides ``$CHATCONTRACT_MODEL`` and the contract's model.
            environ: where keys and the kill switch are read (default: ``os.environ``, live).
            telemetry_sinks: receive every Exchange and every client decision.
            transport: the httpx2 transport doing the I/O (tests: ``httpx2.MockTransport``);
                shared by every route and never closed by the client.
            clock, rng, sleep, wall_clock: injected time and randomness.
            capture_content: keep completion text in Exchanges (off by default).

        Raises ``ConfigError`` for a missing key or a fallback that would leak the primary key.
        """
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

    def complete(
        self,
        messages: Sequence[Any],
        *,
        deadline_s: float | None = None,
        headers: Mapping[str, str] | None = None,
        **params: Any,
    ) -> ChatResult:
        """Send a chat completion and return the answer.

        Args:
            messages: the chat messages.
            deadline_s: this call's single deadline (default ``policy.timeouts.total_ms``).
            headers: extra request headers.
            **params: other body fields (``max_tokens``, ``temperature``, ``tools``, ...).

        Raises ``CallFailedError`` subclasses; ``TypeError`` for ``model``/``stream`` params.
        """
        call = self._core.prepare(
            messages, params, stream=False, deadline_s=deadline_s, headers=headers
        )
        step = call.plan.start()
        while True:
            if isinstance(step, Wait):
                self._sleep(step.seconds)
                step = call.plan.resume()
            elif isinstance(step, Send):
                step = call.plan.on_outcome(self._complete_attempt(call, step))
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
    ) -> ChatStream:
        """Stream a chat completion: a ``ChatStream`` of deltas, then ``.result``.

        The request check, kill switch and budget guard run now (their errors raise here);
        the request is sent when iteration starts. ``stream_options.include_usage`` is added
        when the contract expects a usage chunk.

        A stream that breaks after deltas reached you is continued where the route (or the
        fallback) declares a ``continuation``: only the new text is delivered, so the
        deltas still concatenate to one answer. Otherwise, when you pass ``on_restart``, it
        is called before a new attempt answers from the start (drop what you printed); else
        ``StreamInterrupted`` is raised with the partial content. ``stream.result`` is always
        the whole final answer.
        """
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
        return ChatStream(self._stream_steps(call, first, on_restart))

    # -- attempts ------------------------------------------------------------------------

    def _complete_attempt(self, call: PreparedCall, step: Send) -> AttemptOutcome:
        client, request, _ = self._request(call, step)
        body, error = b"", None
        try:
            body = client.send(request).content
        except TRANSPORT_ERRORS as exc:
            error = exc
        return self._core.body_outcome(request, step, call, body, error)

    def _stream_steps(
        self, call: PreparedCall, step: Step, on_restart: Callable[[], object] | None
    ) -> Generator[StreamDelta, None, ChatResult]:
        while True:
            if isinstance(step, Wait):
                self._sleep(step.seconds)
                step = call.plan.resume()
            elif isinstance(step, Send):
                if step.restart and on_restart is not None:
                    on_restart()  # before the new attempt's first delta
                outcome = yield from self._stream_attempt(call, step)
                step = call.plan.on_outcome(outcome)
            elif isinstance(step, Finish):
                return step.result
            else:
                raise step.error

    def _stream_attempt(
        self, call: PreparedCall, step: Send
    ) -> Generator[StreamDelta, None, AttemptOutcome]:
        client, request, watch = self._request(call, step)
        core = self._core
        error: BaseException | None = None
        try:
            response = client.send(request, stream=True)
        except TRANSPORT_ERRORS as exc:
            return core.stream_outcome(request, step, call, None, exc)
        reader = StreamReader.of(response.extensions)
        if reader is None:  # no SSE body (an error, or a provider ignoring ``stream``)
            body = b""
            try:
                body = response.read()
            except TRANSPORT_ERRORS as exc:
                error = exc
            finally:
                response.close()
            outcome = core.body_outcome(request, step, call, body, error)
            if outcome.delivered and outcome.answer is not None and outcome.answer.content:
                yield StreamDelta(content=outcome.answer.content)
            return outcome
        try:
            for _ in response.iter_raw():  # the transport's parser took the chunk as it passed
                delta = reader.advance(watch)
                if delta is not None:
                    yield delta
                if reader.early_verdict is not None:
                    break
        except TRANSPORT_ERRORS as exc:
            error = exc
        finally:
            response.close()
        # A last event without its blank line is part of the result: deliver it as well.
        delta = reader.take()
        if delta is not None:
            reader.delivered = True
            yield delta
        return core.stream_outcome(request, step, call, reader, error)

    # -- lifecycle -----------------------------------------------------------------------

    def close(self) -> None:
        """Close every route's connection pool."""
        for client in self._http.values():
            client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def _close_all(clients: tuple[httpx2.Client, ...]) -> None:
    for client in clients:
        with contextlib.suppress(Exception):  # at exit, a failed close must not print
            client.close()


def _own_transport() -> httpx2.HTTPTransport:
    # No transport-level retries: the policy is the only layer that retries. DNS is timed as
    # InstrumentedTransport does for the transport it builds (ours sits under the guard).
    transport = httpx2.HTTPTransport(retries=0)
    install_backend(transport, is_async=False)
    return transport
