"""An ``httpx2.AsyncBaseTransport`` that sends through aiohttp: httpx2's API, aiohttp's wire.

Why: httpx2's own transport speaks HTTP/1.1 through httpcore2 (pure-Python h11 and anyio),
0.36 CPU-ms per request and more for every SSE event read; aiohttp parses in C. The gateway's
pass-through floor drops from 0.63 to 0.42 CPU-ms per request (1.06 to 0.48 per stream) with
everything above the wire unchanged (``docs/gateway-performance.md``): requests, responses, the
instrumented transport and its Exchange, classification. Only the gateway uses it by default
(``default_gateway_transport``); ``ChatClient`` and ``instrument()`` keep httpx2's transport.

What it keeps of httpx2's behaviour:

- **Errors.** Every aiohttp / asyncio failure becomes the httpx2 exception httpx2's transport
  raises for the same fault, with a message ``classify_exception`` reads the same way: refused
  → ``ConnectError`` (connect_refused), closed before the head → ``RemoteProtocolError``
  ("Server disconnected without sending a response.": reset), reset → ``ReadError``, body cut
  short → ``RemoteProtocolError`` ("peer closed connection without sending complete message
  body": incomplete_body), an invalid head → ``RemoteProtocolError`` (protocol), silence past
  the read timeout → ``ReadTimeout``, connect → ``ConnectTimeout``, pool → ``PoolTimeout``.
- **Timeouts.** httpx2's per-request ``timeout`` extension: ``connect`` is aiohttp's
  ``sock_connect``, ``read`` its ``sock_read`` (one silent gap, as httpx2), ``pool`` the wait
  for a free connection (timed from aiohttp's queue hooks). ``write`` has no aiohttp
  counterpart: a request body that cannot be sent is bounded by the read timeout (aiohttp's
  read timer runs from the moment the request goes out) and by the call deadline.
- **The call deadline** (``PhaseClock.deadline`` of the instrumented transport, see
  ``_timing.py``): one timer per request cuts the wait for the head and every read of the body
  to the time left, so a head or a body dripped one byte at a time cannot outlive it.
- **Phase timings**, fed to the request's ``trace`` extension with httpcore2's event names
  (what the instrumented transport already listens to): request head sent, response head
  received (time to first byte), and for plain ``http://`` the TCP connect; DNS (when a
  lookup happened, not a cache hit) goes to the call's ``PhaseClock``. They come from the
  steps a request passes through anyway (``_aiohttp_seam``: the connector, the request class,
  the resolver), which cost about a tenth of what aiohttp's ``TraceConfig`` signals cost
  per request; ``TraceConfig`` is the fallback when an aiohttp upgrade moves a step. aiohttp
  connects and handshakes TLS in one step with no hook between, so an ``https://``
  connection reports neither connect nor TLS time, rather than a wrong one.
- **Streaming.** ``aiter_raw`` yields each piece as aiohttp receives it, nothing buffered.
- **Defaults.** httpx2's pool limits (100 connections, idle ones kept 5 s) and TLS
  verification (``httpx2.create_ssl_context``); no redirects, no cookies kept, no automatic
  decompression (the bytes are passed on as they came, as httpx2's transport does), no
  ``User-Agent``/``Accept`` added: only the headers of the httpx2 request go out.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from types import SimpleNamespace
from typing import Any, Literal, NoReturn, Protocol

import aiohttp
import httpx2
from aiohttp.abc import AbstractResolver
from aiohttp.resolver import DefaultResolver

from . import _aiohttp_seam
from ._aiohttp_seam import CALL, TimedConnector, TimedRequest, TimedResolver
from ._timing import CURRENT_CLOCK, PhaseClock

__all__ = ["AiohttpTransport", "ReadWatch", "aiohttp_trace_config"]

_monotonic = time.monotonic

#: aiohttp adds these unless told not to; the httpx2 request says what it wants sent.
_SKIP_AUTO_HEADERS = frozenset({"User-Agent", "Accept", "Accept-Encoding", "Content-Type"})

#: ``AiohttpTransport``'s ``hooks``.
_HOOKS = ("auto", "trace", "none")
_SEAM_FITS: list[bool] = []


def _seam_fits() -> bool:
    """``_aiohttp_seam.fits()``, worked out once."""
    if not _SEAM_FITS:
        _SEAM_FITS.append(_aiohttp_seam.fits())
    return _SEAM_FITS[0]


# Messages chosen so ``classify_exception`` reads them as it reads httpx2's own.
_DISCONNECTED = "Server disconnected without sending a response."
_INCOMPLETE = "peer closed connection without sending complete message body"


class _Call:
    """One request's state, told each step by the seam's overrides (``_aiohttp_seam.CALL``)
    or by the TraceConfig hooks (``trace_request_ctx``)."""

    __slots__ = (
        "clock",
        "connected",
        "direct",
        "https",
        "pool_s",
        "queued",
        "scope",
        "sent",
        "trace",
    )

    def __init__(
        self, trace: Any, clock: PhaseClock | None, pool_s: float | None, https: bool
    ) -> None:
        self.trace = trace
        self.clock = clock
        # The trace is the clock's own: its events go to the clock without being spelled.
        self.direct = clock is not None and trace is not None and trace == clock.atrace
        self.pool_s = pool_s
        self.https = https
        self.queued = False
        self.connected = False  # a connection is ours (new or reused)
        self.sent = False
        self.scope: asyncio.Timeout | None = None

    async def emit(self, event: str, phase: str, edge: str) -> None:
        """httpcore2's trace ``event``: to the request's ``trace``, or, when that is the call
        clock's own (the instrumented transport's, nothing chained), straight to the clock as
        ``PhaseClock.trace`` would put it (``phase`` started or complete). The head's two
        steps, on every request, do the same inline (:meth:`head_sent`, :meth:`head_received`)."""
        trace = self.trace
        if trace is None:
            return
        if not self.direct:
            await trace(event, {})
            return
        clock = self.clock
        assert clock is not None  # direct: the trace is this clock's
        if edge == "started":
            clock.start(phase)
        else:
            clock.end(phase)

    # -- the request's steps: from the seam's overrides, or from TraceConfig's signals ------

    async def pool_wait_started(self) -> None:
        """The request waits for a free connection: the pool timeout bounds the wait."""
        self.queued = True
        if self.pool_s is not None and self.scope is not None:
            loop = asyncio.get_running_loop()
            when = loop.time() + self.pool_s
            current = self.scope.when()
            self.scope.reschedule(when if current is None else min(current, when))

    def pool_wait_ended(self) -> None:
        self.queued = False
        if self.scope is not None:
            self.scope.reschedule(_deadline_when(self.clock))

    async def creating(self) -> None:
        # The connect event marks the connection as this call's own (a failure on it is no
        # stale keep-alive); for https it never completes: TCP and TLS are one aiohttp step.
        await self.emit("connection.connect_tcp.started", "connect", "started")

    async def created(self) -> None:
        self.connected = True
        if not self.https:
            await self.emit("connection.connect_tcp.complete", "connect", "complete")

    def dns_started(self) -> None:
        if self.clock is not None:
            self.clock.start("dns")

    def dns_ended(self) -> None:
        if self.clock is not None:
            self.clock.end("dns")

    def head_sent(self) -> Awaitable[None] | None:
        """The request head goes out. What is left to await: the request's own ``trace``
        (None when there is none, or when the clock took the events directly)."""
        self.sent = self.connected = True
        clock = self.clock
        if clock is not None:
            clock.sent = True
        if self.direct:
            clock.start("headers")  # type: ignore[union-attr]  # direct: the clock's own trace
            return None
        if self.trace is None:
            return None
        return self._trace_head_sent()

    async def _trace_head_sent(self) -> None:
        await self.trace("http11.send_request_headers.started", {})
        await self.trace("http11.receive_response_headers.started", {})

    def head_received(self) -> Awaitable[None] | None:
        """The response head arrived (what is left to await, as for :meth:`head_sent`)."""
        if self.direct:
            self.clock.end("headers")  # type: ignore[union-attr]
            return None
        if self.trace is None:
            return None
        return self.trace("http11.receive_response_headers.complete", {})  # type: ignore[no-any-return]


# -- TraceConfig hooks: public aiohttp signals, routed to the request's ``_Call`` ------------
# (the fallback when ``_aiohttp_seam`` does not fit the installed aiohttp)


def _call_of(ctx: SimpleNamespace) -> _Call | None:
    call = getattr(ctx, "trace_request_ctx", None)
    return call if isinstance(call, _Call) else None


async def _on_queued_start(_: Any, ctx: SimpleNamespace, __: Any) -> None:
    call = _call_of(ctx)
    if call is not None:
        await call.pool_wait_started()


async def _on_queued_end(_: Any, ctx: SimpleNamespace, __: Any) -> None:
    call = _call_of(ctx)
    if call is not None:
        call.pool_wait_ended()


async def _on_create_start(_: Any, ctx: SimpleNamespace, __: Any) -> None:
    call = _call_of(ctx)
    if call is not None:
        await call.creating()


async def _on_create_end(_: Any, ctx: SimpleNamespace, __: Any) -> None:
    call = _call_of(ctx)
    if call is not None:
        await call.created()


async def _on_reuse(_: Any, ctx: SimpleNamespace, __: Any) -> None:
    call = _call_of(ctx)
    if call is not None:
        call.connected = True


async def _on_dns_start(_: Any, ctx: SimpleNamespace, __: Any) -> None:
    call = _call_of(ctx)
    if call is not None:
        call.dns_started()


async def _on_dns_end(_: Any, ctx: SimpleNamespace, __: Any) -> None:
    call = _call_of(ctx)
    if call is not None:
        call.dns_ended()


async def _on_headers_sent(_: Any, ctx: SimpleNamespace, __: Any) -> None:
    call = _call_of(ctx)
    if call is not None and (rest := call.head_sent()) is not None:
        await rest


async def _on_request_end(_: Any, ctx: SimpleNamespace, __: Any) -> None:
    call = _call_of(ctx)
    if call is not None and (rest := call.head_received()) is not None:
        await rest


def aiohttp_trace_config() -> aiohttp.TraceConfig:
    """The hooks the transport times a call with (each costs a little CPU per request: only
    those it reads are registered)."""
    config = aiohttp.TraceConfig()
    config.on_connection_queued_start.append(_on_queued_start)
    config.on_connection_queued_end.append(_on_queued_end)
    config.on_connection_create_start.append(_on_create_start)
    config.on_connection_create_end.append(_on_create_end)
    config.on_connection_reuseconn.append(_on_reuse)
    config.on_dns_resolvehost_start.append(_on_dns_start)
    config.on_dns_resolvehost_end.append(_on_dns_end)
    config.on_request_headers_sent.append(_on_headers_sent)
    config.on_request_end.append(_on_request_end)
    return config


def _deadline_when(clock: PhaseClock | None) -> float | None:
    """The call's deadline on the running loop's clock (uvloop's is not ``time.monotonic``)."""
    deadline = None if clock is None else clock.deadline
    if deadline is None:
        return None
    return asyncio.get_running_loop().time() + (deadline - _monotonic())


# -- errors -----------------------------------------------------------------------------------


def _chain_has(exc: BaseException, kind: type[BaseException]) -> bool:
    seen = 0
    current: BaseException | None = exc
    while current is not None and seen < 8:
        if isinstance(current, kind):
            return True
        current = current.__cause__ or current.__context__
        seen += 1
    return False


def _connect_error(exc: aiohttp.ClientConnectorError, request: httpx2.Request) -> Exception:
    if isinstance(exc, aiohttp.ClientProxyConnectionError):
        return httpx2.ProxyError(str(exc), request=request)
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return httpx2.ConnectError(f"DNS lookup failed: {exc.os_error}", request=request)
    if isinstance(exc, aiohttp.ClientSSLError):
        return httpx2.ConnectError(f"TLS handshake failed: {exc.os_error}", request=request)
    # The OS error's own text ("[Errno 111] Connect call failed", "Connection reset"...).
    return httpx2.ConnectError(str(exc.os_error), request=request)


def _head_error(
    exc: BaseException, call: _Call, request: httpx2.Request, *, timed_out: bool
) -> Exception:
    """The httpx2 exception for a failure before the response head was complete."""
    if timed_out:  # our own timer: the pool wait, or the call's deadline
        if call.queued:
            return httpx2.PoolTimeout("no free connection in the pool in time", request=request)
        if not call.connected:
            return httpx2.ConnectTimeout(
                "the call's deadline passed while connecting", request=request
            )
        return httpx2.ReadTimeout(
            "the call's deadline passed before the response head", request=request
        )
    if isinstance(exc, aiohttp.ClientConnectorError):
        return _connect_error(exc, request)
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        if call.queued:
            return httpx2.PoolTimeout("no free connection in the pool in time", request=request)
        return httpx2.ConnectTimeout("connect timed out", request=request)
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return httpx2.ReadTimeout("no response bytes within the read timeout", request=request)
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        if not isinstance(exc.message, str) and call.clock is not None:
            call.clock.received = True  # part of a head came back: never resent
        return httpx2.RemoteProtocolError(_DISCONNECTED, request=request)
    if isinstance(exc, aiohttp.ClientResponseError):  # the head did not parse
        return httpx2.RemoteProtocolError(f"invalid response head: {exc.message}", request=request)
    if isinstance(exc, aiohttp.ClientOSError | aiohttp.ClientConnectionResetError | OSError):
        if call.sent:
            return httpx2.ReadError(str(exc) or type(exc).__name__, request=request)
        return httpx2.WriteError(str(exc) or type(exc).__name__, request=request)
    if isinstance(exc, aiohttp.NonHttpUrlClientError):
        return httpx2.UnsupportedProtocol(str(exc), request=request)
    if isinstance(exc, aiohttp.InvalidURL):
        return httpx2.LocalProtocolError(f"invalid URL: {exc}", request=request)
    if isinstance(exc, aiohttp.ClientPayloadError):  # a request body that failed to stream
        return httpx2.WriteError(str(exc), request=request)
    if isinstance(exc, ValueError):  # a header aiohttp refuses to send
        return httpx2.LocalProtocolError(f"the request could not be sent: {exc}", request=request)
    return httpx2.TransportError(f"{type(exc).__name__}: {exc}", request=request)


def _body_error(exc: BaseException, request: httpx2.Request) -> Exception:
    """The httpx2 exception for a failure while the body was being read."""
    if isinstance(exc, aiohttp.ServerTimeoutError | TimeoutError):
        return httpx2.ReadTimeout("no response bytes within the read timeout", request=request)
    if isinstance(exc, aiohttp.ClientPayloadError):
        if _chain_has(exc, ConnectionResetError) or "ConnectionResetError" in str(exc):
            return httpx2.ReadError("the connection was reset", request=request)
        text = str(exc).lower()
        if "not enough data" in text or "not completed" in text:
            return httpx2.RemoteProtocolError(f"{_INCOMPLETE} ({exc})", request=request)
        return httpx2.RemoteProtocolError(f"invalid response body: {exc}", request=request)
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return httpx2.RemoteProtocolError(_INCOMPLETE, request=request)
    if isinstance(exc, aiohttp.ClientOSError | aiohttp.ClientConnectionError | OSError):
        return httpx2.ReadError(str(exc) or type(exc).__name__, request=request)
    return httpx2.ReadError(f"{type(exc).__name__}: {exc}", request=request)


class _DeadlinePassedError(Exception):
    """Set on a response body whose call deadline passed (wakes the pending read)."""


# -- the response body ------------------------------------------------------------------------


class _ReadLimitPassedError(Exception):
    """Set on a response body whose read limit passed while a read waited (wakes it)."""


class ReadWatch(Protocol):
    """The limits a body's reads are checked against (the client's ``AttemptWatch``)."""

    @property
    def limits_reads(self) -> bool: ...

    @property
    def token_seen(self) -> bool: ...

    def read_limit(self) -> tuple[Any, float] | None: ...

    def timed_out(self, limit: Any, request: httpx2.Request) -> httpx2.ReadTimeout: ...

    def check(self) -> str: ...

    def passed(self, verdict: Any, request: httpx2.Request) -> NoReturn: ...


def _has_read_timeout(protocol: object) -> bool:
    """Whether aiohttp's connection protocol (``client_proto.ResponseHandler``) has the
    ``read_timeout`` and ``start_timeout()`` ``_Body`` turns off and on: not documented API,
    so without them (an upgrade) the read timeout stays on, as before
    (``tests/transport/test_aiohttp_transport.py`` names them)."""
    return hasattr(protocol, "read_timeout") and callable(getattr(protocol, "start_timeout", None))


class _Body(httpx2.AsyncByteStream):
    """The response body, each piece as aiohttp received it; the call deadline is one timer.

    With a :class:`ReadWatch` (:meth:`guard_reads`, what the client's guard transport does
    with a body of this transport instead of wrapping it in a layer of its own), every piece
    is checked against it as it arrives, and the wait for the next one is bounded by its read
    limit (first token, then idle): one timer per body, armed when a read finds none armed
    for the limit that applies (the first read, the first token, a timer that fired between
    two reads), moved only when the limit comes sooner than it is set for; a limit that moved
    later (new data resets the idle limit) is worked out again when the timer fires, and the
    timer re-armed for it. So a read in the steady state of a stream neither reads a clock
    nor touches the timer for its limit.

    Observed (:meth:`observe_reads`, what the instrumented transport does with a body of this
    transport instead of wrapping it in a layer of its own), each piece goes to the observer
    before it is handed over, a failure goes to it to be named, and the end (or the close)
    is told to it.
    """

    __slots__ = (
        "_armed_seen",
        "_closed",
        "_limit_timer",
        "_loop",
        "_on_chunk",
        "_on_close",
        "_on_end",
        "_on_error",
        "_protocol",
        "_reading",
        "_request",
        "_response",
        "_sock_read",
        "_timer",
        "_watch",
    )

    def __init__(
        self, response: aiohttp.ClientResponse, request: httpx2.Request, when: float | None
    ) -> None:
        self._response = response
        self._request = request
        self._closed = False
        self._loop = asyncio.get_running_loop()
        self._timer: asyncio.TimerHandle | None = None
        if when is not None:
            self._timer = self._loop.call_at(when, self._deadline_passed)
        self._watch: ReadWatch | None = None
        # The watch's ``token_seen`` when the limit timer was last armed (None: arm it at the
        # next read): the limit that applies changes kind with it.
        self._armed_seen: bool | None = None
        self._limit_timer: asyncio.TimerHandle | None = None
        # The connection's protocol and its read timeout (aiohttp's ``sock_read``) when a
        # watch limits the reads: ``_bound_by_limit`` turns it off while a limit applies.
        self._protocol: Any = None
        self._sock_read: float | None = None
        self._reading = False
        self._on_chunk: Callable[[bytes], object] | None = None
        self._on_error: Callable[[Exception], Exception] | None = None
        self._on_end: Callable[[], object] | None = None
        self._on_close: Callable[[], object] | None = None

    def observe_reads(
        self,
        on_chunk: Callable[[bytes], object],
        on_error: Callable[[Exception], Exception],
        on_end: Callable[[], object],
        *,
        on_close: Callable[[], object] | None = None,
    ) -> None:
        """Hand every piece to ``on_chunk`` before it is yielded; a failure reading the body
        (or in ``on_chunk``) to ``on_error``, which returns the exception to raise in its
        place (itself, or one raised from it); the end of the body, and its close, to
        ``on_end`` (told more than once: it must be idempotent), except a close before the
        body's end, told to ``on_close`` when given (the reader stopped early)."""
        self._on_chunk = on_chunk
        self._on_error = on_error
        self._on_end = on_end
        self._on_close = on_close

    def guard_reads(self, watch: ReadWatch) -> None:
        """Check every piece against ``watch`` and bound each wait by its read limit (see the
        class docstring): what ``client._guard``'s stream does, done here."""
        self._watch = watch
        connection = self._response.connection
        protocol: Any = None if connection is None else getattr(connection, "protocol", None)
        if watch.limits_reads and _has_read_timeout(protocol):
            self._protocol = protocol
            self._sock_read = protocol.read_timeout

    def _bound_by_limit(self, limited: bool) -> None:
        """A read limit bounds the wait for the next piece (``limited``) in place of the read
        timeout, as ``transport.limit_reads`` does on httpx2's wire: aiohttp's ``sock_read``
        (the request's read timeout, which bounded the wait for the head) is off on the
        connection while it does, and back when no limit applies. Left on, it cut every gap
        at that timeout, shorter than the idle limit once content started: a healthy stream
        pausing between the two was cut, and named for the idle limit it never reached."""
        protocol = self._protocol
        if protocol is None:
            return
        wanted = None if limited else self._sock_read
        if protocol.read_timeout != wanted:
            protocol.read_timeout = wanted
            protocol.start_timeout()  # re-armed from now, or the armed timer dropped

    def _deadline_passed(self) -> None:
        self._timer = None
        content = self._response.content
        if not content.is_eof():  # all of it here already: the reader takes it in time
            content.set_exception(_DeadlinePassedError())

    def _arm(self, watch: ReadWatch) -> None:
        """Arm the limit timer for the limit that applies now (moved only if sooner)."""
        self._armed_seen = watch.token_seen
        limit = watch.read_limit()
        self._bound_by_limit(limit is not None)
        if limit is None:  # none (it stays so until the first token), or the deadline first
            return
        at = self._loop.time() + limit[1]
        timer = self._limit_timer
        if timer is None or timer.when() > at:
            if timer is not None:
                timer.cancel()
            self._limit_timer = self._loop.call_at(at, self._limit_passed)

    def _limit_passed(self) -> None:
        self._limit_timer = None
        watch = self._watch
        if watch is None or not self._reading:  # the next read arms its own
            self._armed_seen = None
            return
        limit = watch.read_limit()
        if limit is None:  # the attempt's deadline comes first now: its own timer ends it
            return
        if limit[1] > 0:  # the limit moved later since (new data): wait for it
            self._limit_timer = self._loop.call_at(self._loop.time() + limit[1], self._limit_passed)
            return
        content = self._response.content
        if not content.is_eof():
            content.set_exception(_ReadLimitPassedError())

    async def __aiter__(self) -> AsyncIterator[bytes]:
        readany = self._response.content.readany
        watch, request = self._watch, self._request
        limited = watch if watch is not None and watch.limits_reads else None
        on_chunk = self._on_chunk
        try:
            try:
                while True:
                    if limited is not None:
                        if limited.token_seen is not self._armed_seen:
                            self._arm(limited)
                        self._reading = True
                        chunk = await readany()
                        self._reading = False
                    else:
                        chunk = await readany()
                    if not chunk:
                        break
                    if watch is not None:
                        verdict = watch.check()
                        if verdict != "ok":
                            watch.passed(verdict, request)
                    if on_chunk is not None:
                        on_chunk(chunk)
                    yield chunk
            except _ReadLimitPassedError:
                # Only a limited read is cut by the limit timer. The limit of the read that
                # failed (its kind, and whether it had one, do not depend on the moment: the
                # watch changes only between reads).
                limit = None if limited is None else limited.read_limit()
                if limited is None or limit is None:  # pragma: no cover - never armed without
                    raise httpx2.ReadTimeout("the read limit passed", request=request) from None
                raise limited.timed_out(limit[0], request) from None
            except _DeadlinePassedError:
                limit = None if limited is None else limited.read_limit()
                timeout = httpx2.ReadTimeout(
                    "the call's deadline passed while the body was arriving", request=request
                )
                if limited is None or limit is None:
                    raise timeout from None
                raise limited.timed_out(limit[0], request) from timeout
            except (aiohttp.ClientError, OSError, TimeoutError) as exc:
                error = _body_error(exc, request)
                limit = None if limited is None else limited.read_limit()
                if limited is None or limit is None or not isinstance(error, httpx2.ReadTimeout):
                    raise error from exc
                error.__cause__ = exc
                raise limited.timed_out(limit[0], request) from error
        except Exception as exc:
            on_error = self._on_error
            if on_error is None:
                raise
            named = on_error(exc)
            if named is not exc:
                raise named from exc
            raise
        on_end = self._on_end
        if on_end is not None:
            on_end()

    async def aclose(self) -> None:
        ended = self._response.content.at_eof()  # read to its end (or it failed, told already)
        try:
            if not self._closed:
                self._closed = True
                for timer in (self._timer, self._limit_timer):
                    if timer is not None:
                        timer.cancel()
                self._timer = self._limit_timer = None
                response = self._response
                if response.content.at_eof() and response.content.exception() is None:
                    response.release()  # read to the end: the connection goes back to the pool
                else:
                    response.close()  # not read to the end: the connection cannot be reused
        finally:
            on_end = self._on_end if ended or self._on_close is None else self._on_close
            if on_end is not None:
                on_end()


# -- the transport ----------------------------------------------------------------------------


class AiohttpTransport(httpx2.AsyncBaseTransport):
    """Sends httpx2 requests through one ``aiohttp.ClientSession`` (see module).

    Args:
        verify: TLS verification, as httpx2's (``True``: its default context, ``False``: none,
            or an ``ssl.SSLContext``).
        trust_env: as httpx2's, for the default TLS context (``SSL_CERT_FILE``...).
        limits: the pool's size and how long an idle connection is kept (httpx2's
            ``Limits``; ``max_keepalive_connections`` has no aiohttp counterpart).
        hooks: how a call's phases are timed and its pool wait bounded: ``"auto"`` (the
            connector and request steps of ``_aiohttp_seam``, or aiohttp's ``TraceConfig``
            when an aiohttp upgrade moved them), ``"trace"`` (``TraceConfig`` always), or
            ``"none"``: no phase timings and no pool timeout of its own (aiohttp's plain
            session: what a bare proxy runs, the benchmarks' floor).
        trace_config: the ``TraceConfig`` hooks that time a call (implies ``"trace"``).

    The session is created on first use inside the running event loop and closed by
    ``aclose()``; used from another loop later, the transport starts a new session there.
    """

    def __init__(
        self,
        *,
        verify: ssl.SSLContext | bool = True,
        trust_env: bool = True,
        limits: httpx2.Limits = httpx2.Limits(max_connections=100, max_keepalive_connections=20),  # noqa: B008
        hooks: Literal["auto", "trace", "none"] = "auto",
        trace_config: aiohttp.TraceConfig | None = None,
    ) -> None:
        if hooks not in _HOOKS:
            raise ValueError(f"hooks must be one of {', '.join(_HOOKS)}, got {hooks!r}")
        self._ssl = httpx2.create_ssl_context(verify=verify, trust_env=trust_env)
        self._limits = limits
        if trace_config is not None or (hooks == "auto" and not _seam_fits()):
            hooks = "trace"
        #: The steps of ``_aiohttp_seam`` tell each call its phases (else ``TraceConfig``).
        self._seam = hooks == "auto"
        self._trace_config: aiohttp.TraceConfig | None = None
        if hooks == "trace":
            self._trace_config = (
                trace_config if trace_config is not None else aiohttp_trace_config()
            )
        self._resolver: AbstractResolver | None = None
        self._session: aiohttp.ClientSession | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._timeouts: dict[tuple[Any, Any], aiohttp.ClientTimeout] = {}

    def _session_here(self) -> aiohttp.ClientSession:
        loop = asyncio.get_running_loop()
        session = self._session
        if session is not None and self._loop is loop and not session.closed:
            return session
        limits = self._limits
        connector_class: type[aiohttp.TCPConnector] = aiohttp.TCPConnector
        request_class: type[aiohttp.ClientRequest] = aiohttp.ClientRequest
        resolver: AbstractResolver | None = None
        if self._seam:
            connector_class, request_class = TimedConnector, TimedRequest
            resolver = TimedResolver(DefaultResolver())
        connector = connector_class(
            limit=limits.max_connections or 0,
            limit_per_host=0,
            keepalive_timeout=limits.keepalive_expiry if limits.keepalive_expiry else 5.0,
            ssl=self._ssl,
            resolver=resolver,
        )
        session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            timeout=aiohttp.ClientTimeout(total=None),
            trace_configs=None if self._trace_config is None else [self._trace_config],
            trust_env=False,
            raise_for_status=False,
            skip_auto_headers=_SKIP_AUTO_HEADERS,
            request_class=request_class,
        )
        self._session, self._loop, self._resolver = session, loop, resolver
        return session

    def _timeout(self, timeouts: Mapping[str, Any]) -> aiohttp.ClientTimeout:
        key = (timeouts.get("connect"), timeouts.get("read"))
        found = self._timeouts.get(key)
        if found is None:
            if len(self._timeouts) > 64:  # requests choose their timeouts: keep a few
                self._timeouts.clear()
            found = aiohttp.ClientTimeout(
                total=None, connect=None, sock_connect=key[0], sock_read=key[1]
            )
            self._timeouts[key] = found
        return found

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        session = self._session_here()
        timeouts: Mapping[str, Any] = request.extensions.get("timeout") or {}
        clock = CURRENT_CLOCK.get()
        url = request.url
        call = _Call(
            request.extensions.get("trace"), clock, timeouts.get("pool"), url.scheme == "https"
        )
        stream = request.stream
        raw = request.headers.raw
        if isinstance(stream, httpx2.ByteStream):
            data: Any = request.content
        else:  # a streamed body: aiohttp frames it itself (chunked, unless a length is given)
            data = _chunks(stream)
            raw = [(name, value) for name, value in raw if name.lower() != b"transfer-encoding"]
        scope: asyncio.Timeout | None = None
        token = CALL.set(call) if self._seam else None
        try:
            async with asyncio.timeout_at(_deadline_when(clock)) as scope:
                call.scope = scope
                response = await session.request(
                    request.method,
                    str(url),
                    data=data,
                    headers=_headers(raw),
                    allow_redirects=False,
                    compress=None,
                    timeout=self._timeout(timeouts),
                    trace_request_ctx=call,
                )
                # With the seam, what TraceConfig's request end told the call.
                if token is not None and (rest := call.head_received()) is not None:
                    await rest
        except (aiohttp.ClientError, OSError, ValueError) as exc:  # TimeoutError is an OSError
            # Our timer (the pool wait, the deadline) fired: whatever aiohttp made of the
            # cancellation it caused, the timer names the failure.
            timed_out = scope is not None and scope.expired()
            raise _head_error(exc, call, request, timed_out=timed_out) from exc
        finally:
            call.scope = None
            if token is not None:
                CALL.reset(token)
        if clock is not None:
            clock.received = True
        return httpx2.Response(
            response.status,
            headers=list(response.raw_headers),
            stream=_Body(response, request, _deadline_when(clock)),
            extensions={
                "http_version": b"HTTP/1.1",
                "reason_phrase": (response.reason or "").encode("latin-1", "replace"),
            },
        )

    async def aclose(self) -> None:
        session, self._session = self._session, None
        resolver, self._resolver = self._resolver, None
        if session is not None and not session.closed:
            await session.close()
        if resolver is not None:  # the connector does not own a resolver it was given
            await resolver.close()


def _headers(raw: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    return [(name.decode("latin-1"), value.decode("latin-1")) for name, value in raw]


async def _chunks(stream: Any) -> AsyncIterator[bytes]:
    async for chunk in stream:
        yield chunk
