"""Phase timing: DNS (a resolving network backend), connect and TLS (httpcore2 trace events),
time to first byte (response headers complete).

The clock of a call also carries what the connection layer must know about it: its deadline
(every connect, TLS handshake, write and read of the call is cut to the time left, so a server
dripping its headers or its body one byte at a time cannot outlive it: httpx2's own timeouts
bound one silent gap each), whether the request went out on a reused connection and got
any byte back (a stale pooled connection is retried once, see ``instrumented.py``), and a limit
the layer reading the body may put on its next reads (``limit_reads``: a stream's first-token
or idle limit, so a socket that goes fully silent is cut by that limit, not by the read timeout).

One ``PhaseClock`` per HTTP call. The network backend cannot see the request, so the clock of
the call in progress travels in a context variable set by the transport around the call;
context variables follow both threads' call stacks and asyncio tasks.
"""

from __future__ import annotations

import contextlib
import contextvars
import ipaddress
import socket
import time
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

import anyio
import httpcore2

from ._httpx_seam import network_backend, pool_of, set_network_backend

__all__ = [
    "CURRENT_CLOCK",
    "AsyncTimedBackend",
    "PhaseClock",
    "TimedBackend",
    "adiscard_idle_connections",
    "discard_idle_connections",
    "has_timed_backend",
    "install_backend",
    "limit_reads",
]

_monotonic = time.monotonic


class PhaseClock:
    """Collects phase start/end moments (``time.perf_counter`` seconds) for one call.

    Attributes:
        deadline: ``time.monotonic()`` by which the call must have ended, or None.
        sent: the request started going out (a write, or httpcore2's send trace event).
        received: a byte of the answer came back (seen by the timed backend only).
        received_at: when the first of them did (``time.perf_counter`` seconds), or None.
        read_by: ``time.monotonic()`` by which the next read must return, in place of the
            read timeout (set through ``limit_reads``), or None.
    """

    __slots__ = (
        "_starts",
        "deadline",
        "ends",
        "origin",
        "read_by",
        "received",
        "received_at",
        "sent",
    )

    def __init__(self) -> None:
        self.origin = time.perf_counter()
        self._starts: dict[str, float] = {}
        self.ends: dict[str, float] = {}
        self.deadline: float | None = None
        self.read_by: float | None = None
        self.sent = False
        self.received = False
        self.received_at: float | None = None

    @property
    def reused_connection(self) -> bool:
        """The request went out on a connection this call did not open."""
        return self.sent and "connect" not in self._starts

    def restart_send(self) -> None:
        """Forget the send markers, before the same call is sent again."""
        self.sent = self.received = False
        self.received_at = None

    def remaining(self, timeout: float | None, error: type[Exception]) -> float | None:
        """``timeout`` cut to the time left before the deadline; raises ``error`` (an
        httpcore2 timeout) when no time is left."""
        deadline = self.deadline
        if deadline is None:
            return timeout
        left = deadline - _monotonic()
        if left <= 0:
            raise error("the call's deadline passed (chatcontract)")
        return left if timeout is None or timeout > left else timeout

    def read_timeout(self, timeout: float | None) -> float | None:
        """A read's timeout: the time left to ``read_by`` when set (instead of ``timeout``),
        then cut to the deadline; raises ``httpcore2.ReadTimeout`` when none is left."""
        read_by = self.read_by
        if read_by is not None:
            timeout = read_by - _monotonic()
            if timeout <= 0:
                raise httpcore2.ReadTimeout("the read limit passed (chatcontract)")
        return self.remaining(timeout, httpcore2.ReadTimeout)

    def start(self, phase: str) -> None:
        self._starts[phase] = time.perf_counter()

    def end(self, phase: str) -> None:
        if phase in self._starts:
            self.ends[phase] = time.perf_counter()

    def duration_ms(self, phase: str) -> float | None:
        """Milliseconds the phase took, or ``None`` if it did not happen in this call."""
        if phase not in self.ends:
            return None
        return (self.ends[phase] - self._starts[phase]) * 1000.0

    def since_origin_ms(self, moment: float | None) -> float | None:
        return None if moment is None else (moment - self.origin) * 1000.0

    # httpcore2's trace extension: ``trace(event_name, info)``, e.g.
    # "connection.connect_tcp.started", "http11.receive_response_headers.complete".
    _PHASES: ClassVar[dict[str, str]] = {
        "connect_tcp": "connect",
        "start_tls": "tls",
        "receive_response_headers": "headers",
    }

    def trace(self, event_name: str, info: dict[str, Any]) -> None:
        _, _, rest = event_name.partition(".")
        step, _, edge = rest.rpartition(".")
        if step == "send_request_headers":
            self.sent = True
            return
        phase = self._PHASES.get(step)
        if phase is None:
            return
        if edge == "started":
            self.start(phase)
        elif edge == "complete":
            self.end(phase)

    async def atrace(self, event_name: str, info: dict[str, Any]) -> None:
        self.trace(event_name, info)


CURRENT_CLOCK: contextvars.ContextVar[PhaseClock | None] = contextvars.ContextVar(
    "chatcontract_phase_clock", default=None
)


def limit_reads(seconds: float | None) -> bool:
    """Make the current call's next reads wait at most ``seconds`` from now, whatever its read
    timeout (``None``: the read timeout again; the call's deadline always applies).

    Called by a layer reading a response body through the timed backend, around each read:
    the client puts a stream's first-token or idle limit here, so a socket that sends nothing
    at all is cut when that limit passes. Returns False when no call is being timed (a
    transport without the timed backend): the limit then only applies as data arrives.
    """
    clock = CURRENT_CLOCK.get()
    if clock is None:
        return False
    clock.read_by = None if seconds is None else _monotonic() + max(seconds, 0.0)
    return True


def _is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _first_address(infos: Iterable[Any]) -> str | None:
    for info in infos:
        return str(info[4][0])
    return None


@contextlib.contextmanager
def _timed(clock: PhaseClock | None, phase: str, timeout: float | None) -> Iterator[float | None]:
    """Time ``phase`` of a connection around the I/O in the ``with`` block, which gets
    ``timeout`` cut to the call's deadline; a connection made outside an observed call
    (``clock`` None) is neither timed nor cut. The phase ends only if the I/O succeeded."""
    if clock is None:
        yield timeout
        return
    left = clock.remaining(timeout, httpcore2.ConnectTimeout)
    clock.start(phase)
    yield left
    clock.end(phase)


class _Connect:
    """One ``connect_tcp``, sans-IO: the call's clock, the name resolved first (and timed)
    when the host is a name, then the timed connect; the backends add the I/O calls."""

    __slots__ = ("clock", "host", "target", "timeout")

    def __init__(self, host: str, timeout: float | None) -> None:
        self.clock = CURRENT_CLOCK.get()
        self.host = self.target = host
        self.timeout = timeout

    @property
    def resolves(self) -> bool:
        """Whether to resolve the name first: only in an observed call, and only a name."""
        return self.clock is not None and not _is_ip(self.host)

    @contextlib.contextmanager
    def resolving(self) -> Iterator[None]:
        """Around the name lookup: timed as ``dns``; a failed lookup is a ``ConnectError``."""
        with _timed(self.clock, "dns", self.timeout):
            try:
                yield
            except socket.gaierror as exc:
                raise httpcore2.ConnectError(f"DNS lookup failed: {exc}") from exc

    def resolved(self, infos: Iterable[Any]) -> None:
        """The lookup's answer: connect to its first address."""
        self.target = _first_address(infos) or self.host

    def connecting(self) -> contextlib.AbstractContextManager[float | None]:
        """Around the connect: timed as ``connect``, its timeout cut to the deadline."""
        return _timed(self.clock, "connect", self.timeout)


class TimedBackend(httpcore2.NetworkBackend):
    """The default sync backend, with name resolution done (and timed) first."""

    def __init__(self, inner: httpcore2.NetworkBackend | None = None) -> None:
        self._inner = inner or httpcore2.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.NetworkStream:
        connect = _Connect(host, timeout)
        if connect.resolves:
            with connect.resolving():
                connect.resolved(socket.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        with connect.connecting() as left:
            stream = self._inner.connect_tcp(
                connect.target,
                port,
                timeout=left,
                local_address=local_address,
                socket_options=socket_options,
            )
        return _TimedStream(stream, connect.clock)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore2.NetworkStream:
        return self._inner.connect_unix_socket(path, timeout=timeout, socket_options=socket_options)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class AsyncTimedBackend(httpcore2.AsyncNetworkBackend):
    """The default async backend (anyio), with name resolution done (and timed) first."""

    def __init__(self, inner: httpcore2.AsyncNetworkBackend | None = None) -> None:
        self._inner = inner or httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        connect = _Connect(host, timeout)
        if connect.resolves:
            with connect.resolving():
                connect.resolved(await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM))
        with connect.connecting() as left:
            stream = await self._inner.connect_tcp(
                connect.target,
                port,
                timeout=left,
                local_address=local_address,
                socket_options=socket_options,
            )
        return _AsyncTimedStream(stream, connect.clock)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore2.AsyncNetworkStream:
        return await self._inner.connect_unix_socket(
            path, timeout=timeout, socket_options=socket_options
        )

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _TimedStream(httpcore2.NetworkStream):
    """A connected stream whose TLS handshake is timed, whose reads and writes keep to the
    current call's deadline and mark it as sent / answered."""

    def __init__(self, inner: httpcore2.NetworkStream, clock: PhaseClock | None) -> None:
        self._inner = inner
        self._clock = clock

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        clock = CURRENT_CLOCK.get()
        if clock is None:
            return self._inner.read(max_bytes, timeout)
        if clock.read_by is not None or clock.deadline is not None:  # else: ``timeout`` as is
            timeout = clock.read_timeout(timeout)
        data = self._inner.read(max_bytes, timeout)
        if data and not clock.received:
            clock.received = True
            clock.received_at = time.perf_counter()
        return data

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        clock = CURRENT_CLOCK.get()
        if clock is not None:
            clock.sent = True
            if clock.deadline is not None:
                timeout = clock.remaining(timeout, httpcore2.WriteTimeout)
        self._inner.write(buffer, timeout)

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore2.NetworkStream:
        # The TLS stream is wrapped too, so HTTPS reads keep to the deadline.
        with _timed(self._clock, "tls", timeout) as left:
            stream = self._inner.start_tls(ssl_context, server_hostname, left)
        return _TimedStream(stream, self._clock)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _AsyncTimedStream(httpcore2.AsyncNetworkStream):
    """The async twin of ``_TimedStream``."""

    def __init__(self, inner: httpcore2.AsyncNetworkStream, clock: PhaseClock | None) -> None:
        self._inner = inner
        self._clock = clock

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        clock = CURRENT_CLOCK.get()
        if clock is None:
            return await self._inner.read(max_bytes, timeout)
        if clock.read_by is not None or clock.deadline is not None:  # else: ``timeout`` as is
            timeout = clock.read_timeout(timeout)
        data = await self._inner.read(max_bytes, timeout)
        if data and not clock.received:
            clock.received = True
            clock.received_at = time.perf_counter()
        return data

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        clock = CURRENT_CLOCK.get()
        if clock is not None:
            clock.sent = True
            if clock.deadline is not None:
                timeout = clock.remaining(timeout, httpcore2.WriteTimeout)
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore2.AsyncNetworkStream:
        with _timed(self._clock, "tls", timeout) as left:
            stream = await self._inner.start_tls(ssl_context, server_hostname, left)
        return _AsyncTimedStream(stream, self._clock)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


def has_timed_backend(transport: object) -> bool:
    """True when ``transport``'s pool connects through a timed backend (no trace needed)."""
    return isinstance(network_backend(transport), TimedBackend | AsyncTimedBackend)


def install_backend(transport: object, *, is_async: bool) -> bool:
    """Put the timed backend under an ``httpx2.HTTPTransport``'s connection pool.

    httpx2 builds its pool without a ``network_backend`` argument, so the pool's backend is
    replaced after construction, through the one private seam (``_httpx_seam``). Returns
    False when the transport has no such pool (a proxy, a mock, a moved seam): connect and TLS
    are then timed from httpcore2's public trace events, with no DNS phase.
    """
    return set_network_backend(transport, AsyncTimedBackend() if is_async else TimedBackend())


def _origin(url: Any) -> Any:
    try:
        return httpcore2.URL(
            scheme=url.raw_scheme, host=url.raw_host, port=url.port, target="/"
        ).origin
    except (AttributeError, KeyError, TypeError):  # not an http(s) URL of httpx2
        return None


def _idle_to(pool: Any, origin: Any) -> list[Any]:
    connections = getattr(pool, "connections", None)
    if not isinstance(connections, list):
        return []
    return [
        connection
        for connection in connections
        if connection.can_handle_request(origin) and connection.is_idle()
    ]


def discard_idle_connections(transport: object, url: Any) -> int:
    """Close the pooled idle connections to ``url``'s origin (a server that silently dropped
    one keep-alive connection most likely dropped its siblings too), so that the next request
    opens a new one. Returns how many were closed; 0 without a reachable httpcore2 pool.

    httpx2 exposes no pool; it is reached through the one private seam (``_httpx_seam``),
    then only public connection methods are used.
    """
    pool = pool_of(transport)
    origin = _origin(url)
    if pool is None or origin is None:
        return 0
    idle = _idle_to(pool, origin)
    for connection in idle:
        connection.close()
    return len(idle)


async def adiscard_idle_connections(transport: object, url: Any) -> int:
    """The async twin of ``discard_idle_connections``."""
    pool = pool_of(transport)
    origin = _origin(url)
    if pool is None or origin is None:
        return 0
    idle = _idle_to(pool, origin)
    for connection in idle:
        await connection.aclose()
    return len(idle)
