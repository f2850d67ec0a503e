"""httpx2 transports that record one ``Exchange`` per HTTP call, sync and async.

They wrap any httpx2 transport (default: a real ``HTTPTransport`` with timed DNS), pass every
byte through unchanged, and hand each finished ``Exchange`` to the sinks. Attempt number and
route name travel in the request's ``extensions["chatcontract"]``.

Example::

    exchanges = []
    transport = InstrumentedTransport(contract=contract, sinks=[exchanges.append])
    with httpx2.Client(transport=transport) as client:
        client.post(contract.endpoint.url, json=body, headers=auth)
    exchanges[0].timings.ttfb_ms, exchanges[0].failure
"""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from typing import Any

import httpx2

from chatcontract.contract import Contract

from ._timing import CURRENT_CLOCK, PhaseClock, has_timed_backend, install_backend
from .deferred import DeferredCall, flush
from .observer import CallObserver, ExchangeSink, request_facts

__all__ = ["AsyncInstrumentedTransport", "InstrumentedTransport"]


def _observer(
    request: httpx2.Request,
    *,
    contract: Contract | None,
    sinks: tuple[ExchangeSink, ...],
    secrets: tuple[str, ...],
    capture_content: bool,
    shapes: bool = True,
    clock: PhaseClock | None = None,
    started_at: float | None = None,
) -> CallObserver:
    attempt, route = 1, "primary"
    meta = request.extensions.get("chatcontract")
    if meta:  # only retried or routed calls carry it: most calls skip the copy and casts
        found: dict[str, Any] = dict(meta)
        attempt, route = int(found.get("attempt", 1)), str(found.get("route", "primary"))
    content = request.content if isinstance(request.stream, httpx2.ByteStream) else b""
    facts = request_facts(
        request.method,
        str(request.url),
        content,
        {"x-request-source": request.headers.get("x-request-source", "")},
        request.extensions.get("timeout"),
        fingerprint=shapes,
    )
    return CallObserver(
        request=facts,
        contract=contract,
        sinks=sinks,
        secrets=secrets,
        attempt=attempt,
        route=route,
        capture_content=capture_content,
        shapes=shapes,
        request_content=content if not shapes else b"",
        clock=clock,
        started_at=started_at,
    )


#: What the transports feed: an inline observer, or a deferred call with the same events.
Observer = CallObserver | DeferredCall


def _chain_trace(existing: Any, clock: PhaseClock) -> Any:
    if existing is None:
        return clock.trace

    def trace(event_name: str, info: dict[str, Any]) -> None:
        clock.trace(event_name, info)
        existing(event_name, info)

    return trace


def _chain_atrace(existing: Any, clock: PhaseClock) -> Any:
    if existing is None:
        return clock.atrace

    async def trace(event_name: str, info: dict[str, Any]) -> None:
        clock.trace(event_name, info)
        await existing(event_name, info)

    return trace


def _already_read(response: httpx2.Response, observer: Observer) -> bool:
    """A response built with its content (mock and ASGI-test transports) is observed at once
    (deferred or not: without a network there is no wait to hide the work in)."""
    # httpx2 keeps given content in ``_content``; a live network response has none yet.
    # (Checking the attribute avoids raising ResponseNotRead on every real call.)
    content = getattr(response, "_content", None)
    if content is None:
        return False
    target = observer.inline() if isinstance(observer, DeferredCall) else observer
    target.on_chunk(content)
    target.finish()
    return True


class _ObservedStream(httpx2.SyncByteStream):
    def __init__(self, inner: Iterable[bytes], observer: Observer) -> None:
        self._inner = inner
        self._observer = observer

    def __iter__(self) -> Iterator[bytes]:
        on_chunk = self._observer.on_chunk
        try:
            for chunk in self._inner:
                on_chunk(chunk)
                yield chunk
        except Exception as exc:
            self._observer.on_error(exc)
            raise
        self._observer.finish()

    def close(self) -> None:
        try:
            close = getattr(self._inner, "close", None)
            if close is not None:
                close()
        finally:
            self._observer.finish()


class _AsyncObservedStream(httpx2.AsyncByteStream):
    def __init__(self, inner: Any, observer: Observer) -> None:
        self._inner = inner
        self._observer = observer

    async def __aiter__(self) -> AsyncIterator[bytes]:
        on_chunk = self._observer.on_chunk
        try:
            async for chunk in self._inner:
                on_chunk(chunk)
                yield chunk
        except Exception as exc:
            self._observer.on_error(exc)
            raise
        self._observer.finish()

    async def aclose(self) -> None:
        try:
            aclose = getattr(self._inner, "aclose", None)
            if aclose is not None:
                await aclose()
        finally:
            self._observer.finish()


class _Observing:
    """What both transports share: their settings, their sinks, and starting an observer."""

    _trace: bool

    def _configure(
        self,
        *,
        inner: object,
        contract: Contract | None,
        sinks: Sequence[ExchangeSink],
        secrets: Sequence[str],
        capture_content: bool,
        shape_sample_rate: float,
        rng: Callable[[], float],
        defer: bool,
    ) -> None:
        if not 0.0 <= shape_sample_rate <= 1.0:
            raise ValueError("shape_sample_rate must be between 0 and 1")
        self._contract = contract
        self._sinks = tuple(sinks)
        self._secrets = tuple(s for s in secrets if s)
        self._capture = capture_content
        self._shape_rate = shape_sample_rate
        self._rng = rng
        self._defer = defer
        # A timed network backend measures DNS, connect and TLS itself: no per-event trace.
        self._trace = not has_timed_backend(inner)

    def add_sink(self, sink: ExchangeSink) -> None:
        """Also hand every later Exchange to ``sink`` (with ``defer=True``: every Exchange
        completed from now on, including calls made before that were still queued)."""
        self._sinks = (*self._sinks, sink)

    def _start(self, request: httpx2.Request, *, is_async: bool) -> Observer:
        # Deferred: everything but the record is done later, in ``_build``.
        observer: Observer = (
            DeferredCall(self._build, request) if self._defer else self._build(request)
        )
        if self._trace:  # without a timed backend, httpcore2's trace events time connect and TLS
            chain = _chain_atrace if is_async else _chain_trace
            request.extensions["trace"] = chain(request.extensions.get("trace"), observer.clock)
        return observer

    def _build(
        self,
        request: httpx2.Request,
        clock: PhaseClock | None = None,
        started_at: float | None = None,
    ) -> CallObserver:
        """The inline observer of ``request`` (a deferred call passes its clock and start)."""
        return _observer(
            request, contract=self._contract, sinks=self._sinks, secrets=self._secrets,
            capture_content=self._capture,
            shapes=self._shape_rate >= 1.0 or self._rng() < self._shape_rate,
            clock=clock, started_at=started_at,
        )  # fmt: skip


class InstrumentedTransport(_Observing, httpx2.BaseTransport):
    """A sync httpx2 transport that records an ``Exchange`` per call.

    Args:
        contract: classifies responses (default: the cometapi preset's rules).
        sinks: callables receiving each finished ``Exchange``.
        inner: the transport doing the I/O (default: ``httpx2.HTTPTransport()`` with DNS timed).
        secrets: strings redacted from every message (the API key).
        capture_content: keep completion text in Exchanges (off: only its length is kept).
        shape_sample_rate: the fraction of successful calls whose request and response shapes
            are fingerprinted (failures always are). 1.0 for validation and probes; a
            production hot path can lower it, as drift detection only needs a sample.
        rng: the sampling random source (tests inject a fixed one).
        defer: record each call cheaply and observe it off the critical path, in the next
            wait for a server (see ``chatcontract.transport.deferred``): Exchanges reach the
            sinks shortly after the call instead of before it returns. For telemetry; leave
            it off when code reads a call's Exchange right after the call.
    """

    def __init__(
        self,
        *,
        contract: Contract | None = None,
        sinks: Sequence[ExchangeSink] = (),
        inner: httpx2.BaseTransport | None = None,
        secrets: Sequence[str] = (),
        capture_content: bool = False,
        shape_sample_rate: float = 1.0,
        rng: Callable[[], float] = random.random,
        defer: bool = False,
    ) -> None:
        if inner is None:
            inner = httpx2.HTTPTransport()
            install_backend(inner, is_async=False)
        self._inner = inner
        self._configure(
            inner=inner,
            contract=contract,
            sinks=sinks,
            secrets=secrets,
            capture_content=capture_content,
            shape_sample_rate=shape_sample_rate,
            rng=rng,
            defer=defer,
        )

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        observer = self._start(request, is_async=False)
        token = CURRENT_CLOCK.set(observer.clock)
        try:
            response = self._inner.handle_request(request)
        except Exception as exc:
            observer.on_error(exc)
            raise
        finally:
            CURRENT_CLOCK.reset(token)
        observer.on_response(response.status_code, response.headers)
        if _already_read(response, observer):
            return response
        response.stream = _ObservedStream(response.stream, observer)  # type: ignore[arg-type]
        return response

    def close(self) -> None:
        if self._defer:
            flush()  # nothing recorded is lost when the client goes away
        self._inner.close()


class AsyncInstrumentedTransport(_Observing, httpx2.AsyncBaseTransport):
    """The async twin of ``InstrumentedTransport`` (same arguments, same Exchanges)."""

    def __init__(
        self,
        *,
        contract: Contract | None = None,
        sinks: Sequence[ExchangeSink] = (),
        inner: httpx2.AsyncBaseTransport | None = None,
        secrets: Sequence[str] = (),
        capture_content: bool = False,
        shape_sample_rate: float = 1.0,
        rng: Callable[[], float] = random.random,
        defer: bool = False,
    ) -> None:
        if inner is None:
            inner = httpx2.AsyncHTTPTransport()
            install_backend(inner, is_async=True)
        self._inner = inner
        self._configure(
            inner=inner,
            contract=contract,
            sinks=sinks,
            secrets=secrets,
            capture_content=capture_content,
            shape_sample_rate=shape_sample_rate,
            rng=rng,
            defer=defer,
        )

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        observer = self._start(request, is_async=True)
        token = CURRENT_CLOCK.set(observer.clock)
        try:
            response = await self._inner.handle_async_request(request)
        except Exception as exc:
            observer.on_error(exc)
            raise
        finally:
            CURRENT_CLOCK.reset(token)
        observer.on_response(response.status_code, response.headers)
        if _already_read(response, observer):
            return response
        response.stream = _AsyncObservedStream(response.stream, observer)
        return response

    async def aclose(self) -> None:
        if self._defer:
            flush()
        await self._inner.aclose()
