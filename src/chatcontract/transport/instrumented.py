"""httpx2 transports that record one ``Exchange`` per HTTP call, sync and async.

They wrap any httpx2 transport (default: a real ``HTTPTransport`` with timed DNS), pass every
byte through unchanged, and hand each finished ``Exchange`` to the sinks. Attempt number and
route name travel in the request's ``extensions["chatcontract"]``, and so may the call's
deadline (``deadline_s``, seconds from now, or the transport's ``total_timeout``): through the
timed network backend, every connect, write and read of the call is cut to the time left, the
response head included.

Three more things happen here, the same for every caller (``ChatClient``, ``instrument()``,
``validate``):

- A request sent on a *reused* pooled connection that the server had silently dropped (a reset
  or a close before any byte of the answer) is sent once more on a new connection, when its
  body can be re-sent. This is not an attempt of the retry policy: the call still has one
  Exchange, marked ``stale_connection_replaced``.
- Exchanges are redacted at the source: the contract's key (read from its ``auth.env``), the
  request's own credential header and the ``secrets`` given are removed from every text the
  Exchange keeps, before any sink sees it.
- A sink that raises never fails the call: its first error is logged once, every error is
  counted in ``sink_errors``.

Example::

    exchanges = []
    transport = InstrumentedTransport(contract=contract, sinks=[exchanges.append])
    with httpx2.Client(transport=transport) as client:
        client.post(contract.endpoint.url, json=body, headers=auth)
    exchanges[0].timings.ttfb_ms, exchanges[0].failure
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Sequence
from typing import Any

import httpx2

from chatcontract._log import get_logger
from chatcontract.contract import Contract
from chatcontract.failures import DeadlineExceeded
from chatcontract.redact import known_secrets

from ._httpx_seam import Layout, header_layout, url_key
from ._timing import (
    CURRENT_CLOCK,
    PhaseClock,
    adiscard_idle_connections,
    discard_idle_connections,
    has_timed_backend,
    install_backend,
    limit_reads,
)
from .observer import (
    _BUDGETS,
    _MISSING,
    EXCHANGE_EXTENSION,
    STREAM_EXTENSION,
    CallObserver,
    ExchangeSink,
    _budget_ms,
    _request_facts,
    _safe_url,
)

__all__ = [
    "EXCHANGE_EXTENSION",
    "STALE_CONNECTION_ERRORS",
    "STREAM_EXTENSION",
    "AsyncInstrumentedTransport",
    "CallDeadlineError",
    "InstrumentedTransport",
    "request_head",
    "request_header",
    "sent_header",
]

logger = get_logger("chatcontract.transport")

#: What a pooled connection the server dropped while idle raises when a request is sent on
#: it: a reset (read/write error) or a close before the response head.
STALE_CONNECTION_ERRORS: tuple[type[Exception], ...] = (
    httpx2.RemoteProtocolError,
    httpx2.ReadError,
    httpx2.WriteError,
)

_monotonic = time.monotonic
#: An error answer closed unread (``CallObserver.error_body_unread``) is read on, to judge it by
#: its body, for at most this long and this many bytes (an error body is a few hundred bytes,
#: usually in the head's packet), and only through the timed backend, which bounds the wait.
_ERROR_REST_S = 0.05
_ERROR_REST_BYTES = 64 * 1024
# Timers wake a hair early on some platforms: a timeout this close to the deadline is it.
_DEADLINE_SLACK_S = 0.01


class CallDeadlineError(DeadlineExceeded, httpx2.ReadTimeout):
    """The call's deadline (``deadline_s`` or ``total_timeout``) passed before the response
    ended: a timeout for httpx2 and the openai SDK, classified ``transport/timeout/deadline``."""


def _as_deadline(exc: Exception, clock: PhaseClock, request: httpx2.Request | None) -> Exception:
    """``exc``, or a ``CallDeadlineError`` when it is a timeout the call's deadline caused."""
    deadline = clock.deadline
    if (
        deadline is None
        or not isinstance(exc, httpx2.TimeoutException)
        or isinstance(exc, DeadlineExceeded)
        or _monotonic() < deadline - _DEADLINE_SLACK_S
    ):
        return exc
    return CallDeadlineError(
        "the call's deadline passed before the response ended", request=request
    )


#: The request extension holding its head's layout (``request_head``), read once per call.
_HEAD_EXTENSION = "chatcontract.head"
#: The most request credentials a transport remembers the secrets of (a few keys in practice),
#: and the most URLs whose safe form is remembered (a client calls a few).
_MAX_MEMO = 64
#: The safe form (``observer._safe_url``) of the URLs called, by their parsed parts.
_SAFE_URLS_BY_KEY: dict[tuple[Any, ...], str] = {}


def request_head(request: httpx2.Request) -> Layout:
    """The request's header items and the index of each lower-case name among them (a
    repeated name's values joined with ", "): ``items[layout[name]][2]`` is its value, as
    bytes. Worked out once per request (``_httpx_seam.header_layout``; ``Headers.raw`` when a
    name repeats or without the seam). Read them only."""
    head: Layout | None = request.extensions.get(_HEAD_EXTENSION)
    if head is None:
        head = header_layout(request.headers)
        if head is None:  # a repeated name (its values joined, as Headers.get does), no seam
            joined = _joined_headers(request.headers.raw)
            head = [(k, k, v) for k, v in joined.items()], {k: i for i, k in enumerate(joined)}
        request.extensions[_HEAD_EXTENSION] = head
    return head


def sent_header(request: httpx2.Request, name: bytes) -> bytes | None:
    """The raw value of the request's header ``name`` (lower-case bytes; a repeated one's
    values joined with ", "), None when absent."""
    items, layout = request_head(request)
    index = layout.get(name)
    return None if index is None else items[index][2]


def request_header(request: httpx2.Request, name: bytes) -> str | None:
    """``request.headers.get(name)`` (``name``: lower-case bytes): repeated headers joined
    with ", ", None when absent.

    The headers are read once per request (``request_head``; ``Headers.get`` first works out
    the headers' encoding, then scans them all, for every name asked); a value that is not
    ASCII is left to ``Headers.get`` and its encoding rules."""
    sent = sent_header(request, name)
    if sent is None:
        return None
    return sent.decode("ascii") if sent.isascii() else request.headers.get(name.decode())


def _joined_headers(raw: list[tuple[bytes, bytes]]) -> dict[bytes, bytes]:
    found: dict[bytes, bytes] = {}
    for raw_key, value in raw:
        key = raw_key.lower()
        seen = found.get(key)
        found[key] = value if seen is None else seen + b", " + value
    return found


#: What the transports feed: the call's one observer.
Observer = CallObserver


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


def _call_deadline(meta: dict[str, Any] | None, total_timeout: float | None) -> float | None:
    """``time.monotonic()`` by which the call must end: the request's ``deadline_s`` (``meta``:
    a copy of its ``extensions["chatcontract"]``), else the transport's ``total_timeout``, else
    None."""
    seconds: Any = total_timeout if meta is None else meta.get("deadline_s", total_timeout)
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return None
    return _monotonic() + max(float(seconds), 0.0)


def _resendable(request: httpx2.Request) -> bool:
    return isinstance(request.stream, httpx2.ByteStream)


def _stale(request: httpx2.Request, clock: PhaseClock, exc: Exception) -> bool:
    """The request went out on a reused connection that failed before any byte of the answer,
    and its body can be sent again."""
    return (
        isinstance(exc, STALE_CONNECTION_ERRORS)
        and clock.reused_connection
        and not clock.received
        and _resendable(request)
    )


def _already_read(response: httpx2.Response, observer: Observer) -> bool:
    """A response built with its content (mock and ASGI-test transports) is observed at once."""
    # httpx2 keeps given content in ``_content``; a live network response has none yet.
    # (Checking the attribute avoids raising ResponseNotRead on every real call.)
    content = getattr(response, "_content", None)
    if content is None:
        return False
    observer.content_decoded()  # httpx2 removed the codings it can remove from ``_content``
    observer.on_chunk(content)
    observer.finish()
    return True


class _Observed:
    """What both observed streams share."""

    _observer: Observer
    #: The body is read through the timed backend, which can bound the wait for the rest of
    #: an error answer closed unread (``_read_error_rest``); set by the transport.
    timed = False


class _ObservedStream(_Observed, httpx2.SyncByteStream):
    def __init__(
        self, inner: Iterable[bytes], observer: Observer, request: httpx2.Request | None = None
    ) -> None:
        self._inner = inner
        self._observer = observer
        self._request = request

    def __iter__(self) -> Iterator[bytes]:
        on_chunk = self._observer.chunk_sink
        clock = self._observer.clock
        try:
            if clock.deadline is None:
                for chunk in self._inner:
                    on_chunk(chunk)
                    yield chunk
            else:  # the body's reads keep to the call's deadline too
                chunks = iter(self._inner)
                while True:
                    token = CURRENT_CLOCK.set(clock)
                    try:
                        piece = next(chunks, None)
                    finally:
                        CURRENT_CLOCK.reset(token)
                    if piece is None:
                        break
                    on_chunk(piece)
                    yield piece
        except Exception as exc:
            error = _as_deadline(exc, clock, self._request)
            self._observer.on_error(error)
            if error is not exc:
                raise error from exc
            raise
        except BaseException:  # the reader stopped: a closed generator, a cancelled task
            self._observer.closed()
            raise
        self._observer.finish()

    def close(self) -> None:
        if self._observer.error_body_unread:
            self._read_error_rest()
        try:
            close = getattr(self._inner, "close", None)
            if close is not None:
                close()
        finally:
            if self._observer.exchange is None:  # closed by the caller before the body's end
                self._observer.closed()

    def _read_error_rest(self) -> None:
        """Feed the observer what is left of an error answer closed unread, within
        ``_ERROR_REST_S`` and ``_ERROR_REST_BYTES`` (nothing without the timed backend)."""
        observer = self._observer
        token = CURRENT_CLOCK.set(observer.clock)
        try:
            if not self.timed or not limit_reads(_ERROR_REST_S):
                return
            on_chunk, size = observer.chunk_sink, 0
            for chunk in self._inner:
                on_chunk(chunk)
                size += len(chunk)
                if size >= _ERROR_REST_BYTES:
                    break
        except Exception:  # noqa: S110 - judged by what came: the caller closed it
            pass
        finally:
            limit_reads(None)
            CURRENT_CLOCK.reset(token)


class _AsyncObservedStream(_Observed, httpx2.AsyncByteStream):
    def __init__(
        self, inner: Any, observer: Observer, request: httpx2.Request | None = None
    ) -> None:
        self._inner = inner
        self._observer = observer
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        on_chunk = self._observer.chunk_sink
        clock = self._observer.clock
        try:
            if clock.deadline is None:
                async for chunk in self._inner:
                    on_chunk(chunk)
                    yield chunk
            else:  # the body's reads keep to the call's deadline too
                chunks = aiter(self._inner)
                while True:
                    token = CURRENT_CLOCK.set(clock)
                    try:
                        piece = await anext(chunks, None)
                    finally:
                        CURRENT_CLOCK.reset(token)
                    if piece is None:
                        break
                    on_chunk(piece)
                    yield piece
        except Exception as exc:
            error = _as_deadline(exc, clock, self._request)
            self._observer.on_error(error)
            if error is not exc:
                raise error from exc
            raise
        except BaseException:  # the reader stopped: a closed generator, a cancelled task
            self._observer.closed()
            raise
        self._observer.finish()

    async def aclose(self) -> None:
        if self._observer.error_body_unread:
            await self._read_error_rest()
        try:
            aclose = getattr(self._inner, "aclose", None)
            if aclose is not None:
                await aclose()
        finally:
            if self._observer.exchange is None:  # closed by the caller before the body's end
                self._observer.closed()

    async def _read_error_rest(self) -> None:
        """The async twin of ``_ObservedStream._read_error_rest``."""
        observer = self._observer
        token = CURRENT_CLOCK.set(observer.clock)
        try:
            if not self.timed or not limit_reads(_ERROR_REST_S):
                return
            on_chunk, size = observer.chunk_sink, 0
            async for chunk in self._inner:
                on_chunk(chunk)
                size += len(chunk)
                if size >= _ERROR_REST_BYTES:
                    break
        except Exception:  # noqa: S110 - judged by what came: the caller closed it
            pass
        finally:
            limit_reads(None)
            CURRENT_CLOCK.reset(token)


def _failure_namer(observer: Observer, request: httpx2.Request) -> Callable[[Exception], Exception]:
    """What a body that feeds ``observer`` itself calls when reading it fails: the failure
    as ``_AsyncObservedStream`` names it (the call's deadline, when that is what passed),
    told to the observer."""

    def named(exc: Exception) -> Exception:
        error = _as_deadline(exc, observer.clock, request)
        observer.on_error(error)
        return error

    return named


class _Sniffed(httpx2.SyncByteStream):
    """A body whose first reads were taken to tell what it is (``CallObserver.sniff``): those
    reads again, then the rest of the same iteration, or the failure that cut it short (told
    to the observer already). Closing it closes both."""

    def __init__(
        self,
        taken: list[bytes],
        reads: Iterator[bytes],
        stream: Any,
        error: BaseException | None = None,
    ) -> None:
        self._taken = taken
        self._reads = reads
        self._stream = stream
        self._error = error

    def __iter__(self) -> Iterator[bytes]:
        taken, self._taken = self._taken, []
        yield from taken
        if self._error is not None:
            raise self._error
        yield from self._reads

    def close(self) -> None:
        try:
            close = getattr(self._reads, "close", None)
            if close is not None:
                close()
        finally:
            close = getattr(self._stream, "close", None)
            if close is not None:
                close()


class _AsyncSniffed(httpx2.AsyncByteStream):
    """The async twin of ``_Sniffed``."""

    def __init__(
        self,
        taken: list[bytes],
        reads: AsyncIterator[bytes],
        stream: Any,
        error: BaseException | None = None,
    ) -> None:
        self._taken = taken
        self._reads = reads
        self._stream = stream
        self._error = error

    async def __aiter__(self) -> AsyncIterator[bytes]:
        taken, self._taken = self._taken, []
        for piece in taken:
            yield piece
        if self._error is not None:
            raise self._error
        async for piece in self._reads:
            yield piece

    async def aclose(self) -> None:
        try:
            aclose = getattr(self._reads, "aclose", None)
            if aclose is not None:
                await aclose()
        finally:
            aclose = getattr(self._stream, "aclose", None)
            if aclose is not None:
                await aclose()


def _sniff(stream: Iterable[bytes], observer: Observer, request: httpx2.Request) -> _Sniffed:
    """Read a body the observer is ``sniffing`` until its first bytes say what it is (a
    mislabelled stream, or a JSON answer to a streamed request): the body as it came, to hand
    over. Within the reads' own limits (the guard's, the deadline's: the reads are the ones
    the caller would have made); a failure is told to the observer and raised when the
    caller reads that far, as it would have been; a stop (a cancellation) closes the body."""
    reads = iter(stream)
    taken: list[bytes] = []
    error: BaseException | None = None
    token = CURRENT_CLOCK.set(observer.clock)
    try:
        for piece in reads:
            taken.append(piece)
            if observer.sniff(piece):
                break
        else:
            observer.end_sniff()
    except Exception as exc:
        error = _failure_namer(observer, request)(exc)
        if error is not exc:
            error.__cause__ = exc
    except BaseException:
        observer.closed()
        _Sniffed([], reads, stream).close()
        raise
    finally:
        CURRENT_CLOCK.reset(token)
    return _Sniffed(taken, reads, stream, error)


async def _asniff(stream: Any, observer: Observer, request: httpx2.Request) -> _AsyncSniffed:
    """The async twin of ``_sniff``."""
    reads = aiter(stream)
    taken: list[bytes] = []
    error: BaseException | None = None
    token = CURRENT_CLOCK.set(observer.clock)
    try:
        async for piece in reads:
            taken.append(piece)
            if observer.sniff(piece):
                break
        else:
            observer.end_sniff()
    except Exception as exc:
        error = _failure_namer(observer, request)(exc)
        if error is not exc:
            error.__cause__ = exc
    except BaseException:
        observer.closed()
        await _AsyncSniffed([], reads, stream).aclose()
        raise
    finally:
        CURRENT_CLOCK.reset(token)
    return _AsyncSniffed(taken, reads, stream, error)


class _Observing:
    """What both transports share: their arguments and settings, their sinks, and starting an
    observer. The sync and async classes add only the I/O calls (and their default inner
    transport)."""

    _trace: bool

    def __init__(
        self,
        *,
        contract: Contract | None = None,
        sinks: Sequence[ExchangeSink] = (),
        inner: httpx2.BaseTransport | httpx2.AsyncBaseTransport | None = None,
        secrets: Sequence[str] = (),
        capture_content: bool = False,
        shape_sample_rate: float = 1.0,
        rng: Callable[[], float] = random.random,
        total_timeout: float | None = None,
    ) -> None:
        self._inner = inner if inner is not None else self._default_inner()
        self._configure(
            inner=self._inner,
            contract=contract,
            sinks=sinks,
            secrets=secrets,
            capture_content=capture_content,
            shape_sample_rate=shape_sample_rate,
            rng=rng,
            total_timeout=total_timeout,
        )

    def _default_inner(self) -> Any:
        raise NotImplementedError

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
        total_timeout: float | None,
    ) -> None:
        if not 0.0 <= shape_sample_rate <= 1.0:
            raise ValueError("shape_sample_rate must be between 0 and 1")
        if total_timeout is not None and not total_timeout > 0:
            raise ValueError("total_timeout must be a positive number of seconds, or None")
        self._contract = contract
        self._sinks = tuple(sinks)
        self._total_timeout = total_timeout
        self.sink_errors = 0
        self._failed_sinks: set[int] = set()
        self._lock = threading.Lock()
        self._auth_header = contract.auth.header if contract is not None else "Authorization"
        self._auth_name = self._auth_header.lower().encode("latin-1")
        scheme = contract.auth.scheme if contract is not None else "Bearer"
        self._auth_prefix = f"{scheme.lower()} " if scheme else ""  # compared lower-cased
        found = contract.auth.resolve() if contract is not None else None
        contract_key = (found[1],) if found is not None else ()
        self._secrets = tuple(dict.fromkeys((*known_secrets(secrets), *contract_key)))
        self._secrets_by_credential: dict[bytes, tuple[str, ...]] = {}
        self._capture = capture_content
        self._shape_rate = shape_sample_rate
        self._rng = rng
        # A timed network backend measures DNS, connect and TLS itself: no per-event trace.
        self._trace = not has_timed_backend(inner)

    def add_sink(self, sink: ExchangeSink) -> None:
        """Also hand every later Exchange to ``sink``."""
        self._sinks = (*self._sinks, sink)

    def _sink_failed(self, sink: ExchangeSink, exc: Exception) -> None:
        with self._lock:
            self.sink_errors += 1
            first = id(sink) not in self._failed_sinks
            self._failed_sinks.add(id(sink))
        if first:  # the type only: an exception message could quote provider text
            logger.warning(
                "chatcontract: the Exchange sink %s raised %s; the call went on (further "
                "errors of this sink are only counted)",
                getattr(sink, "__qualname__", type(sink).__qualname__),
                type(exc).__name__,
            )

    def _call_secrets(self, request: httpx2.Request, sent: bytes | None) -> tuple[str, ...]:
        """The transport's secrets plus the credential this request carries (``sent``: its
        auth header's raw value); memoised by that value when it is ASCII."""
        if sent is None:
            return self._secrets
        known = self._secrets_by_credential.get(sent)
        if known is not None:
            return known
        if not sent.isascii():  # Headers.get decodes it by the encoding of all the headers
            return self._with_credential(request.headers.get(self._auth_header))
        found = self._with_credential(sent.decode("ascii"))
        if len(self._secrets_by_credential) < _MAX_MEMO:
            self._secrets_by_credential[sent] = found
        return found

    def _with_credential(self, value: str | None) -> tuple[str, ...]:
        if not value:
            return self._secrets
        prefix = self._auth_prefix
        if prefix and value[: len(prefix)].lower() == prefix:
            value = value[len(prefix) :]
        value = value.strip()
        if not value or value in self._secrets:
            return self._secrets
        return (*self._secrets, value)

    def _begin(self, request: httpx2.Request, *, is_async: bool) -> Observer:
        """The observer of ``request``: it builds the call's one Exchange as bytes pass.

        The per-call path: what repeats from call to call (the credential's secrets, the safe
        URL, the timeout budget) is looked up in its memo here, each read only on a miss."""
        extensions = request.extensions
        head = extensions.get(_HEAD_EXTENSION)
        items, layout = request_head(request) if head is None else head
        index = layout.get(self._auth_name)
        sent = None if index is None else items[index][2]
        secrets = self._secrets if sent is None else self._secrets_by_credential.get(sent)
        if secrets is None:
            secrets = self._call_secrets(request, sent)
        attempt, route = 1, "primary"
        meta = extensions.get("chatcontract")
        found: dict[str, Any] | None = None
        if meta:  # only retried or routed calls carry it: most calls skip the copy and casts
            found = dict(meta)
            attempt, route = int(found.get("attempt", 1)), str(found.get("route", "primary"))
        shapes = self._shape_rate >= 1.0 or self._rng() < self._shape_rate
        content = request.content if isinstance(request.stream, httpx2.ByteStream) else b""
        source = None
        if b"x-request-source" in layout:  # rare: a source ChatClient or the gateway names
            source = request_header(request, b"x-request-source") or None
        url = request.url
        key = url_key(url)
        safe_url = None if key is None else _SAFE_URLS_BY_KEY.get(key)
        if safe_url is None:
            safe_url = _safe_url(str(url))
            if key is not None and len(_SAFE_URLS_BY_KEY) < _MAX_MEMO:
                _SAFE_URLS_BY_KEY[key] = safe_url
        budget = None
        timeout = extensions.get("timeout")
        if timeout:
            try:
                budget = _BUDGETS.get(tuple(timeout.values()), _MISSING)
            except TypeError:  # an unhashable value: not a timeout httpx2 makes
                budget = _MISSING
            if budget is _MISSING:
                budget = _budget_ms(timeout)
        facts = _request_facts(request.method, safe_url, content, source, budget, shapes)
        observer = CallObserver(
            request=facts, contract=self._contract, sinks=self._sinks, secrets=secrets,
            attempt=attempt, route=route, capture_content=self._capture, shapes=shapes,
            request_content=content if not shapes else b"", home=extensions, redact=True,
            on_sink_error=self._sink_failed,
        )  # fmt: skip
        if self._trace:  # without a timed backend, httpcore2's trace events time connect and TLS
            chain = _chain_atrace if is_async else _chain_trace
            extensions["trace"] = chain(extensions.get("trace"), observer.clock)
        if found is not None or self._total_timeout is not None:
            observer.clock.deadline = _call_deadline(found, self._total_timeout)
        return observer


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
        total_timeout: seconds a call may take from sending to its last byte, the response
            head included (a request's ``extensions["chatcontract"]["deadline_s"]`` sets its
            own); enforced by the timed network backend, i.e. with ``inner`` left to default
            or prepared with ``install_backend``. None: only httpx2's per-phase timeouts.
    """

    _inner: httpx2.BaseTransport

    def _default_inner(self) -> httpx2.BaseTransport:
        inner = httpx2.HTTPTransport()
        install_backend(inner, is_async=False)
        return inner

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        observer = self._begin(request, is_async=False)
        token = CURRENT_CLOCK.set(observer.clock)
        try:
            try:
                response = self._inner.handle_request(request)
            except STALE_CONNECTION_ERRORS as exc:
                if not _stale(request, observer.clock, exc):
                    raise
                observer.connection_replaced()
                discard_idle_connections(self._inner, request.url)
                response = self._inner.handle_request(request)
        except Exception as exc:
            error = _as_deadline(exc, observer.clock, request)
            observer.on_error(error)
            if error is not exc:
                raise error from exc
            raise
        except BaseException:  # the caller stopped the call: a cancelled task, an interrupt
            observer.closed()
            raise
        finally:
            CURRENT_CLOCK.reset(token)
        observer.on_response(response.status_code, response.headers)
        if _already_read(response, observer):
            observer.hand_back_in(response.extensions)
            return response
        stream: Any = response.stream
        if observer.sniffing:  # once per response: a mislabelled answer to a stream request
            stream = _sniff(stream, observer, request)
        observer.hand_back_in(response.extensions)  # the stream parser, if it is one
        if observer.exchange is not None:  # reading its first bytes failed: told already
            response.stream = stream
            return response
        observed = _ObservedStream(stream, observer, request)
        observed.timed = not self._trace
        response.stream = observed
        return response

    def close(self) -> None:
        self._inner.close()


class AsyncInstrumentedTransport(_Observing, httpx2.AsyncBaseTransport):
    """The async twin of ``InstrumentedTransport`` (same arguments, same Exchanges)."""

    _inner: httpx2.AsyncBaseTransport

    def _default_inner(self) -> httpx2.AsyncBaseTransport:
        inner = httpx2.AsyncHTTPTransport()
        install_backend(inner, is_async=True)
        return inner

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        observer = self._begin(request, is_async=True)
        token = CURRENT_CLOCK.set(observer.clock)
        try:
            try:
                response = await self._inner.handle_async_request(request)
            except STALE_CONNECTION_ERRORS as exc:
                if not _stale(request, observer.clock, exc):
                    raise
                observer.connection_replaced()
                await adiscard_idle_connections(self._inner, request.url)
                response = await self._inner.handle_async_request(request)
        except Exception as exc:
            error = _as_deadline(exc, observer.clock, request)
            observer.on_error(error)
            if error is not exc:
                raise error from exc
            raise
        except BaseException:  # the caller stopped the call: a cancelled task, an interrupt
            observer.closed()
            raise
        finally:
            CURRENT_CLOCK.reset(token)
        observer.on_response(response.status_code, response.headers)
        if _already_read(response, observer):
            observer.hand_back_in(response.extensions)
            return response
        stream: Any = response.stream
        if observer.sniffing:  # once per response: a mislabelled answer to a stream request
            stream = await _asniff(stream, observer, request)
        observer.hand_back_in(response.extensions)  # the stream parser, if it is one
        if observer.exchange is not None:  # reading its first bytes failed: told already
            response.stream = stream
            return response
        # The aiohttp wire's body feeds the observer itself (no layer per read); its reads
        # keep to the call's deadline with a timer of their own.
        observe_reads = getattr(stream, "observe_reads", None)
        if observe_reads is not None:
            observe_reads(
                observer.chunk_sink,
                _failure_namer(observer, request),
                observer.finish,
                on_close=observer.closed,
            )
        else:
            observed = _AsyncObservedStream(stream, observer, request)
            observed.timed = not self._trace
            response.stream = observed
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()
