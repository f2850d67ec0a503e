"""``ChatClient``: the synchronous shell around ``CallPlan`` (decisions live there).

Everything but the I/O calls is shared with ``AsyncChatClient`` (``_shell``, ``_core``,
``_stream``); the parity test checks both make the same attempts and decisions.
"""

from __future__ import annotations

import contextlib
import time
import weakref
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from typing import Any

import httpx2

from chatcontract.transport import InstrumentedTransport, install_backend

from ._core import TRANSPORT_ERRORS, PlanSteps, PreparedCall
from ._guard import GuardTransport
from ._plan import AttemptOutcome, Send, Wait
from ._request import send_sync
from ._shell import (
    Attempt,
    ClientShell,
    Closes,
    ShellParts,
    StreamHandle,
    read_capped,
    whole_answer_delta,
)
from ._stream import StreamReader
from .result import ChatResult, StreamDelta

__all__ = ["ChatClient", "ChatStream"]

_Sleep = Callable[[float], None]


def _own_transport() -> httpx2.HTTPTransport:
    # No transport-level retries: the policy is the only layer that retries. DNS is timed as
    # InstrumentedTransport does for the transport it builds (ours sits under the guard).
    transport = httpx2.HTTPTransport(retries=0)
    install_backend(transport, is_async=False)
    return transport


class ChatStream(StreamHandle, Closes):
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

    __slots__ = ("_deltas",)

    def __init__(self, deltas: Generator[StreamDelta, None, None], steps: PlanSteps) -> None:
        super().__init__(steps)
        self._deltas = deltas

    def __iter__(self) -> Iterator[StreamDelta]:
        return self

    def __next__(self) -> StreamDelta:
        return next(self._deltas)

    def until_done(self) -> ChatResult:
        """Read the rest of the stream and return the result."""
        for _ in self:
            pass
        return self.result

    def close(self) -> None:
        """Stop reading and release the connection."""
        self._closed = True
        self._deltas.close()


class ChatClient(ClientShell[httpx2.Client, httpx2.BaseTransport, _Sleep, ChatStream], Closes):
    """A chat completions client whose retries, fallbacks, deadline and budget follow the
    contract, decided per failure class, with an Exchange recorded for every attempt.

    Build it with ``from_contract``. One ``httpx2.Client`` per route, each behind an
    ``InstrumentedTransport``; nothing below retries (httpx2 transport retries are 0).
    Close it (or use ``with``); one never closed closes its connections when it is
    collected, or at exit.

    Example::

        with ChatClient.from_contract("chatcontract.yaml") as client:
            result = client.complete([{"role": "user", "content": "Reply with exactly: pong"}],
                                      max_tokens=16)
            result.content, result.route, len(result.attempts)

    Raises ``CallFailedError`` subclasses (``chatcontract.client.errors``) when a call fails.
    """

    _parts = ShellParts(
        sleep=time.sleep,
        own_transport=_own_transport,
        transport_base=httpx2.BaseTransport,
        guard=GuardTransport,
        instrumented=InstrumentedTransport,
        http_client=httpx2.Client,
        stream=ChatStream,
    )

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
        for step in (steps := PlanSteps(call.plan, call.plan.start())):
            if isinstance(step, Wait):
                self._sleep(step.seconds)
            else:
                steps.report(self._complete_attempt(call, step))
        return steps.result

    def close(self) -> None:
        """Close every route's connection pool."""
        for client in self._http.values():
            client.close()

    # -- attempts ------------------------------------------------------------------------

    def _complete_attempt(self, call: PreparedCall, step: Send) -> AttemptOutcome:
        attempt = self._attempt(call, step)
        try:
            body = read_capped(_send(attempt, stream=True))
        except TRANSPORT_ERRORS as exc:
            return attempt.read(b"", exc)
        return attempt.read(body, None)

    def _stream_steps(
        self, call: PreparedCall, steps: PlanSteps, on_restart: Callable[[], object] | None
    ) -> Generator[StreamDelta, None, None]:
        for step in steps:
            if isinstance(step, Wait):
                self._sleep(step.seconds)
                continue
            if step.restart and on_restart is not None:
                on_restart()  # before the new attempt's first delta
            steps.report((yield from self._stream_attempt(call, step)))

    def _stream_attempt(
        self, call: PreparedCall, step: Send
    ) -> Generator[StreamDelta, None, AttemptOutcome]:
        attempt = self._attempt(call, step)
        try:
            response = _send(attempt, stream=True)
        except TRANSPORT_ERRORS as exc:
            return attempt.streamed(None, exc)
        reader = StreamReader.of(response.extensions)
        error: BaseException | None = None
        if reader is None:  # no SSE body: read it whole
            body = b""
            try:
                body = read_capped(response)
            except TRANSPORT_ERRORS as exc:
                error = exc
            outcome = attempt.read(body, error)
            if (whole := whole_answer_delta(outcome)) is not None:
                yield whole
            return outcome
        try:
            for _ in response.iter_raw():  # the transport's parser took the chunk as it passed
                if (delta := reader.step(attempt.watch)) is not None:
                    yield delta
                if reader.early_verdict is not None:
                    break
        except TRANSPORT_ERRORS as exc:
            error = exc
        finally:
            response.close()
        # The outcome before the last delta: a caller who stops at that delta (closes the
        # stream, breaks out) must not keep a timed-out attempt from its telemetry, which
        # only the outcome hands on (``ClientCore.exchange_of``).
        last = reader.last()
        outcome = attempt.streamed(reader, error)
        if last is not None:
            yield last
        return outcome

    def _close_when_abandoned(self, transports: tuple[httpx2.BaseTransport, ...]) -> None:
        # Closed when the client is collected, or at exit, not left to the garbage collector.
        weakref.finalize(self, _close_all, transports)


def _send(
    attempt: Attempt[httpx2.Client, httpx2.BaseTransport], *, stream: bool = False
) -> httpx2.Response:
    """Send an attempt's request: to its route's transport when it was built from the route's
    template (``send_sync``), else with ``client.send``."""
    if attempt.transport is None:
        return attempt.client.send(attempt.request, stream=stream)
    return send_sync(attempt.client, attempt.transport, attempt.request, stream=stream)


def _close_all(transports: tuple[httpx2.BaseTransport, ...]) -> None:
    for transport in transports:
        with contextlib.suppress(Exception):  # at exit, a failed close must not print
            transport.close()
