"""Phase timing: DNS (a resolving network backend), connect and TLS (httpcore2 trace events),
time to first byte (response headers complete).

The connections the timed backend makes also give deferred observation its wait windows: the
first read after a write is where the thread would block until the server answers, so the
queue of ended calls is worked off there (see ``deferred.py``).

One ``PhaseClock`` per HTTP call. The network backend cannot see the request, so the clock of
the call in progress travels in a context variable set by the transport around the call;
context variables follow both threads' call stacks and asyncio tasks.
"""

from __future__ import annotations

import contextvars
import ipaddress
import socket
import time
from collections.abc import Iterable
from typing import Any, ClassVar

import anyio
import httpcore2

from ._pending import PENDING, drain

__all__ = [
    "CURRENT_CLOCK",
    "AsyncTimedBackend",
    "PhaseClock",
    "TimedBackend",
    "has_timed_backend",
    "install_backend",
]


class PhaseClock:
    """Collects phase start/end moments (``time.perf_counter`` seconds) for one call."""

    __slots__ = ("_starts", "ends", "origin")

    def __init__(self) -> None:
        self.origin = time.perf_counter()
        self._starts: dict[str, float] = {}
        self.ends: dict[str, float] = {}

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
        clock = CURRENT_CLOCK.get()
        target = host
        if clock is not None and not _is_ip(host):
            clock.start("dns")
            try:
                infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except socket.gaierror as exc:
                raise httpcore2.ConnectError(f"DNS lookup failed: {exc}") from exc
            clock.end("dns")
            target = _first_address(infos) or host
        if clock is not None:
            clock.start("connect")
        stream = self._inner.connect_tcp(
            target,
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )
        if clock is not None:
            clock.end("connect")
        return _TimedStream(stream, clock)

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
        clock = CURRENT_CLOCK.get()
        target = host
        if clock is not None and not _is_ip(host):
            clock.start("dns")
            try:
                infos = await anyio.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            except socket.gaierror as exc:
                raise httpcore2.ConnectError(f"DNS lookup failed: {exc}") from exc
            clock.end("dns")
            target = _first_address(infos) or host
        if clock is not None:
            clock.start("connect")
        stream = await self._inner.connect_tcp(
            target,
            port,
            timeout=timeout,
            local_address=local_address,
            socket_options=socket_options,
        )
        if clock is not None:
            clock.end("connect")
        return _AsyncTimedStream(stream, clock)

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> httpcore2.AsyncNetworkStream:
        return await self._inner.connect_unix_socket(
            path, timeout=timeout, socket_options=socket_options
        )

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _TimedStream(httpcore2.NetworkStream):
    """A connected stream whose TLS handshake is timed, and whose first read after a write
    (the server is working on the request) drains the deferred observations.

    Reads cost nothing extra: the instance's ``read`` is the inner stream's own, except for
    the first read after a write while observations are pending, which goes through the
    class's ``read`` (it drains, then puts the direct read back)."""

    def __init__(self, inner: httpcore2.NetworkStream, clock: PhaseClock | None) -> None:
        self._inner = inner
        self._clock = clock
        self.__dict__["read"] = inner.read

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self.__dict__["read"] = self._inner.read
        if PENDING:
            drain()
        return self._inner.read(max_bytes, timeout)

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, timeout)
        if PENDING:  # the next read waits for the server: work the queue off there
            self.__dict__.pop("read", None)

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore2.NetworkStream:
        # The TLS stream is wrapped too, so HTTPS connections keep their wait windows.
        clock = self._clock
        if clock is None:  # a connection made outside an observed call
            return _TimedStream(self._inner.start_tls(ssl_context, server_hostname, timeout), None)
        clock.start("tls")
        stream = self._inner.start_tls(ssl_context, server_hostname, timeout)
        clock.end("tls")
        return _TimedStream(stream, clock)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _AsyncTimedStream(httpcore2.AsyncNetworkStream):
    """The async twin of ``_TimedStream``."""

    def __init__(self, inner: httpcore2.AsyncNetworkStream, clock: PhaseClock | None) -> None:
        self._inner = inner
        self._clock = clock
        self.__dict__["read"] = inner.read

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        self.__dict__["read"] = self._inner.read
        if PENDING:
            drain()
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)
        if PENDING:
            self.__dict__.pop("read", None)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self, ssl_context: Any, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore2.AsyncNetworkStream:
        clock = self._clock
        if clock is None:
            inner = await self._inner.start_tls(ssl_context, server_hostname, timeout)
            return _AsyncTimedStream(inner, None)
        clock.start("tls")
        stream = await self._inner.start_tls(ssl_context, server_hostname, timeout)
        clock.end("tls")
        return _AsyncTimedStream(stream, clock)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


def has_timed_backend(transport: object) -> bool:
    """True when ``transport``'s pool connects through a timed backend (no trace needed)."""
    pool = getattr(transport, "_pool", None)
    backend = getattr(pool, "_network_backend", None)
    return isinstance(backend, TimedBackend | AsyncTimedBackend)


def install_backend(transport: object, *, is_async: bool) -> bool:
    """Put the timed backend under an ``httpx2.HTTPTransport``'s connection pool.

    httpx2 builds its pool without a ``network_backend`` argument, so the pool's backend
    attribute is replaced after construction. Returns False (DNS then stays inside
    ``connect``) when the transport has no such pool, e.g. behind a proxy.
    """
    pool = getattr(transport, "_pool", None)
    if pool is None or not hasattr(pool, "_network_backend"):
        return False
    pool._network_backend = AsyncTimedBackend() if is_async else TimedBackend()
    return True
