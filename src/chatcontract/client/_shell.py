"""What the sync and async client shells share besides ``ClientCore``: the constructor,
``from_contract`` and ``stream()``, building an attempt's request and turning its I/O into an
outcome, the stream handle's result, ``with`` / ``async with``, the read-only properties and
the repr. The shells add only the I/O calls (send, read, iterate, sleep, close) around
``PlanSteps``; what else differs between them is their ``ShellParts`` table.
"""

from __future__ import annotations

import contextlib
import os
import random
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Self, TypeVar

import httpx2

from chatcontract.contract import Contract, load
from chatcontract.telemetry.events import TelemetrySink
from chatcontract.transport.observer import MAX_BODY_BYTES

from ._core import ClientCore, PlanSteps, PreparedCall, default_wall_clock
from ._guard import AttemptWatch
from ._plan import AttemptOutcome, Fail, Send
from ._request import RequestTemplate, encode_json
from ._routes import Route
from ._stream import StreamReader
from .result import ChatResult, StreamDelta

__all__ = [
    "AsyncCloses",
    "Attempt",
    "ClientShell",
    "Closes",
    "ShellParts",
    "StreamHandle",
    "whole_answer_delta",
]

#: The shell's httpx2 client, the transport it takes, its ``sleep`` function, and its stream.
H = TypeVar("H", httpx2.Client, httpx2.AsyncClient)
T = TypeVar("T", httpx2.BaseTransport, httpx2.AsyncBaseTransport)
S = TypeVar("S")
R = TypeVar("R", bound="StreamHandle")


class Attempt(Generic[H, T]):
    """One attempt, ready to send: its route's client, the request, and the watch of its
    limits; turns what the I/O brought back into the attempt's outcome.

    ``transport``: the route's transport stack, when the request was built from the route's
    template and goes to it directly (``send_async`` / ``send_sync``); None: send it with
    ``client.send``."""

    __slots__ = ("_call", "_core", "_step", "client", "request", "transport", "watch")

    client: H
    request: httpx2.Request
    transport: T | None
    watch: AttemptWatch

    def __init__(
        self,
        core: ClientCore,
        call: PreparedCall,
        step: Send,
        client: H,
        *,
        template: RequestTemplate | None = None,
        transport: T | None = None,
    ) -> None:
        route: Route = step.route
        self._core, self._call, self._step = core, call, step
        self.client = client
        self.watch = watch = core.watch(step, stream=call.stream)
        extensions = core.extensions(step, watch)
        if template is not None and not call.headers and not client.cookies:
            # The route's head as ``build_request`` lays it out, the body encoded once.
            extensions["timeout"] = core.timeouts(step, stream=call.stream)
            body = step.body
            content = call.content(route) if body is None else encode_json(dict(body))
            self.request = template.build(content, extensions)
            self.transport = transport
            return
        self.transport = None
        self.request = client.build_request(
            "POST",
            route.url,
            json=call.body(route) if step.body is None else dict(step.body),
            headers=call.request_headers(route),
            timeout=core.timeout(step, stream=call.stream),
            extensions=extensions,
        )

    def read(self, body: bytes, error: BaseException | None) -> AttemptOutcome:
        """The outcome of an answer read whole (``error``: what reading it raised)."""
        return self._core.body_outcome(self.request, self._step, self._call, body, error)

    def streamed(self, reader: StreamReader | None, error: BaseException | None) -> AttemptOutcome:
        """The outcome of a stream once closed (``reader`` None: sending it failed)."""
        return self._core.stream_outcome(self.request, self._step, self._call, reader, error)


class StreamHandle:
    """What ``ChatStream`` and ``AsyncChatStream`` share: the result once the stream ended."""

    __slots__ = ("_closed", "_steps")

    def __init__(self, steps: PlanSteps) -> None:
        self._steps = steps
        self._closed = False  # closed by its reader (before or after its end)

    @property
    def result(self) -> ChatResult:
        """The assembled answer; ``RuntimeError`` before the stream was read to its end."""
        try:
            return self._steps.result
        except RuntimeError:
            if self._closed:
                raise RuntimeError(
                    "the stream was closed before its end, so it has no result: the deltas "
                    "read before the close are all of it (read it to the end, e.g. with "
                    "until_done(), before closing it for a result)"
                ) from None
            raise RuntimeError("the stream has not finished: iterate it to the end first") from None


def whole_answer_delta(outcome: AttemptOutcome) -> StreamDelta | None:
    """What a stream request answered without an SSE body delivers: its content, as one
    delta (an error, or a provider ignoring ``stream``)."""
    answer = outcome.answer
    if outcome.delivered and answer is not None and answer.content:
        return StreamDelta(content=answer.content)
    return None


def read_capped(response: httpx2.Response) -> bytes:
    """A non-streamed body, read until it ends or passes ``MAX_BODY_BYTES`` (the observer
    fails a 2xx body above that, ``body_too_large``, and keeps no more of it): a server that
    sends without end costs that much memory at most, not all it sends before the deadline.
    The response is closed."""
    pieces: list[bytes] = []
    size = 0
    try:
        for piece in response.iter_bytes():
            pieces.append(piece)
            size += len(piece)
            if size > MAX_BODY_BYTES:
                break
    finally:
        response.close()
    return b"".join(pieces)


async def aread_capped(response: httpx2.Response) -> bytes:
    """The async twin of :func:`read_capped`."""
    pieces: list[bytes] = []
    size = 0
    try:
        async for piece in response.aiter_bytes():
            pieces.append(piece)
            size += len(piece)
            if size > MAX_BODY_BYTES:
                break
    finally:
        await response.aclose()
    return b"".join(pieces)


#: Every route's default headers: ask for the body as it is. The observer parses the bytes
#: as they come off the wire (the stream as it passes, the body it keeps), so a gzip or deflate
#: answer, which httpx2's default ``Accept-Encoding: gzip, deflate`` invites, would be judged
#: on compressed bytes: a valid answer failed as invalid JSON or a malformed chunk.
_IDENTITY = {"accept-encoding": "identity"}


@dataclass(frozen=True, slots=True, kw_only=True)
class ShellParts(Generic[H, T, S, R]):
    """What tells a sync shell from an async one, besides its I/O calls: the classes of each
    route's transport stack, its httpx2 client, its stream handle and its default ``sleep``."""

    sleep: S
    own_transport: Callable[[], T]  # the pool a route gets when no transport is passed in
    #: What a transport passed in must be (httpx2's sync or async base transport).
    transport_base: type
    guard: Callable[..., T]  # GuardTransport(inner, *, owns_inner)
    instrumented: Callable[..., T]  # InstrumentedTransport(*, inner, **Observing)
    http_client: Callable[..., H]  # httpx2.Client(*, transport, follow_redirects, headers)
    stream: Callable[[Any, PlanSteps], R]  # ChatStream(deltas, steps)


class Closes:
    """``with`` for an object that has ``close()``."""

    __slots__ = ()

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class AsyncCloses:
    """``async with`` for an object that has ``aclose()``."""

    __slots__ = ()

    async def aclose(self) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


class ClientShell(Generic[H, T, S, R]):
    """The non-I/O half of ``ChatClient`` / ``AsyncChatClient`` (``H``: their httpx2 client,
    ``T``: the transport they take, ``S``: their ``sleep``, ``R``: their stream)."""

    _parts: ShellParts[H, T, S, R]
    #: The fraction of successful calls whose shapes the transport fingerprints (failures
    #: always are): every call here; a subclass serving many calls (the gateway) samples.
    _shape_sample_rate: float = 1.0
    _core: ClientCore
    _http: dict[str, H]
    _templates: dict[str, RequestTemplate]
    _template_routes: dict[str, Route]
    _stacks: dict[str, T]
    _sleep: S

    def __init__(
        self,
        contract: Contract,
        *,
        model: str | None = None,
        environ: Mapping[str, str] | None = None,
        telemetry_sinks: Sequence[TelemetrySink] = (),
        transport: T | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
        sleep: S | None = None,
        wall_clock: Callable[[], float] = default_wall_clock,
        capture_content: bool = False,
    ) -> None:
        """A client following ``contract``; ``from_contract`` documents the arguments."""
        base = self._parts.transport_base
        if transport is not None and not isinstance(transport, base):
            raise TypeError(
                f"{type(self).__name__}: transport must be an httpx2.{base.__name__} "
                f"(e.g. httpx2.{'Async' if 'Async' in base.__name__ else ''}HTTPTransport()), "
                f"got {type(transport).__module__}.{type(transport).__qualname__}"
            )
        self._core = ClientCore(
            contract,
            model=model,
            environ=environ,
            telemetry_sinks=telemetry_sinks,
            clock=clock,
            rng=rng,
            wall_clock=wall_clock,
        )
        parts = self._parts
        self._sleep = parts.sleep if sleep is None else sleep
        observing = self._core.observing(capture_content, self._shape_sample_rate)
        http: dict[str, H] = {}
        templates: dict[str, RequestTemplate] = {}
        stacks: list[T] = []
        for route in self._core.routes:  # one pool per route, ours unless one is passed in
            inner = parts.own_transport() if transport is None else transport
            guarded = parts.guard(inner, owns_inner=transport is None)
            stacks.append(parts.instrumented(inner=guarded, **observing))
            client = http[route.name] = parts.http_client(
                transport=stacks[-1], follow_redirects=False, headers=_IDENTITY
            )
            with contextlib.suppress(ValueError):  # a URL with credentials: build_request
                templates[route.name] = RequestTemplate(
                    client, route.url, {route.auth_header: route.auth_value}
                )
        self._http = http
        self._templates = templates
        self._stacks = dict(zip(http, stacks, strict=True))
        self._template_routes = {route.name: route for route in self._core.routes}
        if transport is None:  # ours to close, even if the application never does
            self._close_when_abandoned(tuple(stacks))

    @classmethod
    def from_contract(
        cls,
        path_or_contract: str | os.PathLike[str] | Contract,
        *,
        model: str | None = None,
        environ: Mapping[str, str] | None = None,
        telemetry_sinks: Sequence[TelemetrySink] = (),
        transport: T | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
        sleep: S | None = None,
        wall_clock: Callable[[], float] = default_wall_clock,
        capture_content: bool = False,
    ) -> Self:
        """A client for a contract file (path) or a ``Contract``.

        Args:
            model: overrides ``$CHATCONTRACT_MODEL`` and the contract's model.
            environ: where keys and the kill switch are read (default: ``os.environ``, live).
            telemetry_sinks: receive every Exchange and every client decision.
            transport: the httpx2 transport doing the I/O (tests: ``httpx2.MockTransport``;
                an ``httpx2.AsyncBaseTransport`` for ``AsyncChatClient``); shared by every
                route and never closed by the client.
            clock, rng, wall_clock: injected time and randomness.
            sleep: how to wait between attempts (default ``time.sleep``; for
                ``AsyncChatClient`` a coroutine function, default ``anyio.sleep``).
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

    def stream(
        self,
        messages: Sequence[Any],
        *,
        deadline_s: float | None = None,
        headers: Mapping[str, str] | None = None,
        on_restart: Callable[[], object] | None = None,
        **params: Any,
    ) -> R:
        """Stream a chat completion: a ``ChatStream`` (``AsyncChatStream``) of deltas, then
        ``.result``.

        The request check, kill switch and budget guard run now (their errors raise here);
        the request is sent when iteration starts. ``stream_options.include_usage`` is added
        when the contract expects a usage chunk.

        A stream that breaks after deltas reached you is continued where the route (or the
        fallback) declares a ``continuation``: only the new text is delivered, so the
        deltas still concatenate to one answer. Otherwise, when you pass ``on_restart``, it
        is called before a new attempt answers from the start (drop what you printed; for
        ``AsyncChatClient`` it may be an async function); else ``StreamInterrupted`` is raised
        with the partial content. ``stream.result`` is always the whole final answer.
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
        steps = PlanSteps(call.plan, first)
        return self._parts.stream(self._stream_steps(call, steps, on_restart), steps)

    # -- what each shell provides (its I/O) ----------------------------------------------

    def _stream_steps(
        self, call: PreparedCall, steps: PlanSteps, on_restart: Callable[[], object] | None
    ) -> Any:
        """The deltas of the call's attempts, as the shell's (async) generator."""
        raise NotImplementedError

    def _close_when_abandoned(self, transports: tuple[T, ...]) -> None:
        """Make sure our own ``transports`` are closed if the application never closes the
        client (when it is collected, or at exit)."""
        raise NotImplementedError

    # -- shared --------------------------------------------------------------------------

    def _attempt(self, call: PreparedCall, step: Send) -> Attempt[H, T]:
        route = step.route
        name = route.name
        # The template holds the route's URL and key: only for the very route it was made for.
        known = self._template_routes.get(name)
        template = self._templates.get(name) if known is route or known == route else None
        return Attempt(
            self._core,
            call,
            step,
            self._http[name],
            template=template,
            transport=self._stacks[name],
        )

    @property
    def contract(self) -> Contract:
        """The contract this client follows."""
        return self._core.contract

    @property
    def routes(self) -> tuple[Route, ...]:
        """Primary first, then the fallbacks (secrets hidden from their repr)."""
        return self._core.routes

    def __repr__(self) -> str:
        routes = ", ".join(f"{r.name}={r.model}@{r.base_url}" for r in self._core.routes)
        provider = self._core.contract.provider
        return f"{type(self).__name__}(provider={provider!r}, routes=[{routes}])"
