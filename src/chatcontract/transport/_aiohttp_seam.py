"""The one place chatcontract reaches into aiohttp privately: the two steps of its connector
that a request may wait in (a free connection from the pool, a new connection).

Why: aiohttp's public ``TraceConfig`` is how a request's phases were timed, and it costs about
80k instructions a request whatever is listened to (five signals a request, each a parameters
object and two coroutines, and the URL rebuilt for the first), a twentieth of what the gateway
spends on a stream. The same events come from four places a request passes through anyway:

- ``ClientRequest.send`` (``request_class`` is documented): the request head goes out on a
  connection that is the request's, new or reused (aiohttp calls it right after
  ``TCPConnector.connect`` returns, with no wait in between);
- an ``AbstractResolver`` around the default one (documented): a DNS lookup, not a cache hit;
- and two private steps of ``TCPConnector``: ``_wait_for_available_connection`` (the wait for
  a free connection, which the pool timeout bounds) and ``_create_connection`` (the TCP
  connect, timed for plain ``http://``).

The request a step belongs to is the one the running task sends (``CALL``, a context variable
set around ``session.request``; the resolver runs in a task started from it, which copies
it). ``fits()`` checks each step by name and parameters; when an aiohttp upgrade moves one, the
transport falls back to ``TraceConfig`` and its timings stay right.
``tests/transport/test_aiohttp_seam.py`` fails loudly when that happens.
"""

from __future__ import annotations

import inspect
from collections.abc import Awaitable
from contextvars import ContextVar
from typing import Any, Protocol

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult

__all__ = ["CALL", "SEAM", "Steps", "TimedConnector", "TimedRequest", "TimedResolver", "fits"]


class Steps(Protocol):
    """What a request's state does at each step (``_aiohttp._Call``)."""

    async def pool_wait_started(self) -> None: ...

    def pool_wait_ended(self) -> None: ...

    async def creating(self) -> None: ...

    async def created(self) -> None: ...

    def dns_started(self) -> None: ...

    def dns_ended(self) -> None: ...

    def head_sent(self) -> Awaitable[None] | None: ...


#: The request the running task sends (None: none of ours).
CALL: ContextVar[Steps | None] = ContextVar("chatcontract_aiohttp_call", default=None)

#: Each step this module overrides: its class, and the parameters it must have.
SEAM: tuple[tuple[type, str, tuple[str, ...]], ...] = (
    (aiohttp.TCPConnector, "_wait_for_available_connection", ("self", "key", "traces")),
    (aiohttp.TCPConnector, "_create_connection", ("self", "req", "traces", "timeout")),
    (aiohttp.ClientRequest, "send", ("self", "conn")),
    (AbstractResolver, "resolve", ("self", "host", "port", "family")),
)


def fits() -> bool:
    """Whether every step of :data:`SEAM` is a coroutine function with those parameters."""
    for owner, name, parameters in SEAM:
        step = getattr(owner, name, None)
        if step is None or not inspect.iscoroutinefunction(step):
            return False
        try:
            found = tuple(inspect.signature(step).parameters)
        except (TypeError, ValueError):
            return False
        if found != parameters:
            return False
    return True


class TimedConnector(aiohttp.TCPConnector):
    """``TCPConnector`` telling the running task's request (:data:`CALL`) of a wait for a
    free connection and of a new connection (a reused one costs nothing here)."""

    async def _wait_for_available_connection(self, key: Any, traces: Any) -> None:
        call = CALL.get()
        if call is None:
            await super()._wait_for_available_connection(key, traces)
            return
        await call.pool_wait_started()
        await super()._wait_for_available_connection(key, traces)
        call.pool_wait_ended()  # only once a connection is free (a pool timeout leaves it queued)

    async def _create_connection(self, req: Any, traces: Any, timeout: Any) -> Any:
        call = CALL.get()
        if call is None:
            return await super()._create_connection(req, traces, timeout)
        await call.creating()
        protocol = await super()._create_connection(req, traces, timeout)
        await call.created()
        return protocol


class TimedRequest(aiohttp.ClientRequest):
    """``ClientRequest`` telling the running task's request that its head goes out."""

    async def send(self, conn: Any) -> Any:
        call = CALL.get()
        if call is not None and (rest := call.head_sent()) is not None:
            await rest  # the request's own trace
        return await super().send(conn)


class TimedResolver(AbstractResolver):
    """A resolver timing each lookup of ``inner`` (the connector's cache hits never get here)."""

    def __init__(self, inner: AbstractResolver) -> None:
        self._inner = inner

    async def resolve(self, host: str, port: int = 0, family: Any = 0) -> list[ResolveResult]:
        call = CALL.get()
        if call is None:
            return await self._inner.resolve(host, port, family)
        call.dns_started()
        found = await self._inner.resolve(host, port, family)
        call.dns_ended()
        return found

    async def close(self) -> None:
        await self._inner.close()
