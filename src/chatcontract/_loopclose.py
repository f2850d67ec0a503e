"""Closing async connections in the event loop that opened them, when the application does not.

A sync client left open is closed by a ``weakref.finalize`` (when collected, or at exit). An
async client cannot be closed that way: its sockets belong to an event loop, closing them takes
an ``await``, and at exit the loop is gone (asyncio then warns "unclosed transport" for each).

The event loop already has the hook for this: it finalizes the async generators still open
when it shuts down (``asyncio.run`` awaits ``loop.shutdown_asyncgens()``; trio and anyio do the
same), and one collected while it runs is closed by a task on it. ``LoopCloser`` keeps one tiny
async generator per event loop that used the transports; closing it closes them, in that loop:

- the application calls ``aclose()`` (or leaves ``async with``): closed at once;
- the client is collected while the loop runs: the loop closes the generator, so the sockets;
- the loop shuts down with the client still open: ``shutdown_asyncgens`` closes them.

The generator holds the close function only (never the client), so it does not keep the
client alive. Only transports chatcontract built go in: a transport the application passed
stays the application's to close.
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import AsyncGenerator, Awaitable, Callable
from types import AsyncGeneratorType

__all__ = ["LoopCloser"]


class LoopCloser:
    """Runs ``close`` in the event loop that used the transports, however the client ends.

    Call :meth:`enter` (cheap: one identity check once armed) before each request the
    transports make, and :meth:`aclose` from the client's own ``aclose``. ``close`` must be
    idempotent and leave the transports usable (closing a connection pool does): the same
    client may be used again, in the same loop or in a later one.
    """

    __slots__ = ("__weakref__", "_box", "_close")

    def __init__(self, close: Callable[[], Awaitable[None]]) -> None:
        self._close = close
        # While armed: [the loop's firstiter hook, the keeper]. The keeper (and through it the
        # transports) is held from here, not from the client: when the client is collected,
        # even as part of a reference cycle, its sockets are not garbage with it (their
        # finalizers would warn "unclosed transport" first); the keeper is released and the
        # loop closes it, and so them.
        self._box: list[object] = []
        weakref.finalize(self, self._box.clear)

    def armed(self) -> bool:
        """Whether :meth:`enter` has nothing to do in the running event loop (armed in it, or
        a runner that finalizes no async generators): a caller may skip awaiting it."""
        firstiter = sys.get_asyncgen_hooks().firstiter
        box = self._box
        return firstiter is None or bool(box and box[0] is firstiter)

    async def enter(self) -> None:
        """Arm the closer in the running event loop (once per loop)."""
        firstiter = sys.get_asyncgen_hooks().firstiter
        box = self._box
        if firstiter is None or (box and box[0] is firstiter):
            return  # armed in this loop, or a runner that finalizes no async generators
        keeper = _keeper(self._close, box, firstiter)
        box[:] = [firstiter, keeper]
        await anext(keeper)  # registers it with this loop, suspended at its yield

    async def aclose(self) -> None:
        """Close the transports now (the client's ``aclose``)."""
        keeper = self._box[1] if self._box else None
        self._box.clear()
        if isinstance(keeper, AsyncGeneratorType) and keeper.ag_frame is not None:
            await keeper.aclose()  # runs close() once, and the loop has nothing left to close
        else:
            await self._close()


async def _keeper(
    close: Callable[[], Awaitable[None]], box: list[object], firstiter: object
) -> AsyncGenerator[None, None]:
    try:
        yield
    finally:
        if box and box[0] is firstiter:  # not re-armed by a later loop meanwhile
            box.clear()
        await close()
