"""Connection-level tricks ASGI has no words for: waiting politely, and hanging up.

**Hanging up without a response.** ASGI cannot express "close the socket without an HTTP
response": if an app raises or returns before ``http.response.start``, uvicorn answers 500 itself.
uvicorn's ``receive`` is a bound method of its per-request cycle object, which holds the asyncio
transport (true for both its h11 and httptools implementations), so ``drop_connection`` closes
that transport and then waits for uvicorn to notice the disconnect. uvicorn then sends nothing:
its "no response started" fallback is skipped once the cycle is marked disconnected. The client
sees the connection closed (FIN) with no status line — ``httpx2.RemoteProtocolError: Server
disconnected without sending a response`` — or, mid-body, an incomplete message.

Served in-process (``httpx2.ASGITransport``) there is no socket to close; ``drop_connection``
raises ``SimulatedDisconnectError`` (a ``ConnectionResetError``), which the transport re-raises
to the caller, the closest in-process equivalent.

**Waiting.** ``pause`` sleeps, but wakes early when the client goes away (so a disconnected
client does not keep a stall alive) or when the server shuts down (``Release``), so a
``no_response`` request can never hold a server open.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from enum import StrEnum
from typing import Protocol

from starlette.types import Receive

__all__ = [
    "PauseEnd",
    "Release",
    "SimulatedDisconnectError",
    "drop_connection",
    "pause",
    "pause_with_pings",
]

# How long to wait for the server to notice a connection we closed.
_DISCONNECT_GRACE_S = 1.0


class SimulatedDisconnectError(ConnectionResetError):
    """Raised in-process, where the simulator has no socket to close."""


class PauseEnd(StrEnum):
    """Why a pause ended."""

    ELAPSED = "elapsed"
    DISCONNECTED = "disconnected"
    RELEASED = "released"


class Release:
    """Wakes every pending pause at once, so held requests cannot block a shutdown.

    ``release()`` must run in the event loop serving the app (``SimulatorServer`` uses
    ``loop.call_soon_threadsafe``); after it, every pause ends at once with ``RELEASED``.
    """

    __slots__ = ("_released", "_waiters")

    def __init__(self) -> None:
        self._released = False
        self._waiters: set[asyncio.Future[None]] = set()

    @property
    def released(self) -> bool:
        """Whether ``release()`` was called."""
        return self._released

    def release(self) -> None:
        """End every pending and future pause."""
        self._released = True
        for waiter in self._waiters:
            if not waiter.done():
                waiter.set_result(None)

    def _waiter(self) -> asyncio.Future[None]:
        waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.add(waiter)
        return waiter

    def __repr__(self) -> str:
        return f"Release(released={self._released}, pending={len(self._waiters)})"


async def _until_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def pause(seconds: float, *, receive: Receive, release: Release) -> PauseEnd:
    """Sleep ``seconds`` unless the client disconnects or the server releases pending requests.

    Only call it once the request body has been read, so ``receive`` can only report a disconnect.
    """
    if release.released:
        return PauseEnd.RELEASED
    if seconds <= 0:
        return PauseEnd.ELAPSED
    released = release._waiter()
    gone = asyncio.ensure_future(_until_disconnect(receive))
    try:
        await asyncio.wait({released, gone}, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        release._waiters.discard(released)
        gone.cancel()
        await asyncio.wait({gone})
    if gone.done() and not gone.cancelled():
        return PauseEnd.DISCONNECTED
    return PauseEnd.RELEASED if released.done() else PauseEnd.ELAPSED


async def pause_with_pings(
    seconds: float,
    *,
    interval: float,
    ping: Callable[[], Awaitable[None]],
    receive: Receive,
    release: Release,
) -> PauseEnd:
    """Like ``pause``, calling ``ping`` every ``interval`` seconds of the wait (SSE keep-alives)."""
    deadline = time.monotonic() + seconds
    while interval > 0 and deadline - time.monotonic() > interval:
        end = await pause(interval, receive=receive, release=release)
        if end is not PauseEnd.ELAPSED:
            return end
        await ping()
    return await pause(deadline - time.monotonic(), receive=receive, release=release)


class _Transport(Protocol):
    def close(self) -> None: ...

    def is_closing(self) -> bool: ...


def _transport_of(receive: Receive) -> _Transport | None:
    """The server's transport behind ``receive``, when the server is uvicorn."""
    transport = getattr(getattr(receive, "__self__", None), "transport", None)
    if callable(getattr(transport, "close", None)) and callable(
        getattr(transport, "is_closing", None)
    ):
        return transport
    return None


async def drop_connection(receive: Receive) -> None:
    """Close the client connection now, whatever was or was not sent on it.

    Raises:
        SimulatedDisconnectError: when served in-process, with no connection to close.
    """
    transport = _transport_of(receive)
    if transport is None:
        raise SimulatedDisconnectError(
            "chatcontract simulator: connection closed without a response"
        )
    transport.close()
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(_DISCONNECT_GRACE_S):
            await _until_disconnect(receive)
