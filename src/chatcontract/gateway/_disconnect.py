"""``DisconnectWatch``: notice an ASGI client going away without a task per request.

Once a request's body is read, the only way an ASGI app learns that its client left is a
``receive()`` that returns ``http.disconnect``; something must be waiting on it while the
call runs. A task doing that costs more CPU than the rest of the gateway's own work on a
non-streamed call (its creation, two steps, a cancellation unwinding through the server's
``receive``). This drives the ``receive()`` awaitable by hand instead, exactly as an asyncio
task would step it, but with no task: the awaitable runs until it waits on a future, and one
callback on that future resumes it. Until the client goes away (or the server ends the
request) nothing else runs; ``close`` removes the callback and closes the awaitable the way
a task's cancellation would (``CancelledError`` thrown in, so a ``finally`` in the server's
``receive`` runs).

What ``receive()`` may do is what an asyncio task allows: wait on asyncio futures, or yield
bare to be resumed at the next loop iteration; anything else is an error, as in a task.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Generator, Iterator, MutableMapping
from typing import Any

from chatcontract._log import get_logger

__all__ = ["DisconnectWatch", "cancel_for_disconnect", "holding_disconnect"]

logger = get_logger("chatcontract.gateway")

Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]

#: Tasks in ``holding_disconnect``, and those of them whose client left meanwhile.
_HELD: set[asyncio.Task[Any]] = set()
_DEFERRED: set[asyncio.Task[Any]] = set()


def cancel_for_disconnect(task: asyncio.Task[Any]) -> None:
    """Cancel ``task`` because its client went away: now, or when it leaves
    ``holding_disconnect``."""
    if task in _HELD:
        _DEFERRED.add(task)
    else:
        task.cancel()


@contextlib.contextmanager
def holding_disconnect() -> Iterator[None]:
    """A client leaving meanwhile cancels the current task only at the end of the block (what
    an anyio shielded scope does for a scope's cancellation, for ``cancel_for_disconnect``)."""
    task = asyncio.current_task()
    assert task is not None
    _HELD.add(task)
    try:
        yield
    finally:
        _HELD.discard(task)
        if task in _DEFERRED:
            _DEFERRED.discard(task)
            task.cancel()


class DisconnectWatch:
    """Call ``on_disconnect`` once when ``receive()`` returns ``http.disconnect``, until
    ``close()``. Other messages (a body part arriving late) are skipped, as a watching task
    would. Construct it inside a running event loop; it starts watching at once. A client
    already gone: ``disconnected`` is true on return, and ``on_disconnect`` is not called."""

    __slots__ = ("_handle", "_it", "_on_disconnect", "_receive", "_waiting", "disconnected")

    def __init__(self, receive: Receive, on_disconnect: Callable[[], object]) -> None:
        self._receive = receive
        self._on_disconnect: Callable[[], object] | None = None  # not while starting
        self._it: Generator[Any, None, Any] | None = None  # the receive() being driven
        self._waiting: asyncio.Future[Any] | None = None  # the future it waits on
        self._handle: asyncio.Handle | None = None  # a resumption after a bare yield
        self.disconnected = False
        self._advance()
        self._on_disconnect = on_disconnect

    def close(self) -> None:
        """Stop watching: the pending ``receive()`` is cancelled (as a task's would be)."""
        it = self._it
        if it is None:
            return
        self._it = None
        if self._waiting is not None:
            self._waiting.remove_done_callback(self._wake)
            self._waiting = None
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
        try:
            it.throw(asyncio.CancelledError())
        except (StopIteration, asyncio.CancelledError):
            pass
        except Exception:  # the server's receive failed on its way out: not this request's
            logger.debug("chatcontract gateway: receive() failed on cancellation", exc_info=True)
        else:  # it ignored the cancellation and waits again: end it for good
            it.close()

    # -- stepping ----------------------------------------------------------------------------

    def _wake(self, future: asyncio.Future[Any]) -> None:
        if self._waiting is future:  # else closed since (its callback was already scheduled)
            self._waiting = None
            self._advance()

    def _resume(self) -> None:
        self._handle = None
        self._advance()

    def _advance(self) -> None:
        """Step ``receive()`` (a new one when none is pending) until it waits or returns."""
        while True:
            if self._it is None:
                if self.disconnected:
                    return
                self._it = self._receive().__await__()
            it = self._it
            try:
                yielded = it.send(None)  # a cancelled future raises in it, as in a task
            except StopIteration as stop:
                self._it = None
                message = stop.value
                if message["type"] == "http.disconnect":
                    self.disconnected = True
                    if self._on_disconnect is not None:
                        self._on_disconnect()
                    return
                continue  # a late body part: receive again
            except (Exception, asyncio.CancelledError):
                # As a watching task that failed: nothing more to watch (the request goes on).
                self._it = None
                logger.warning("chatcontract gateway: receive() failed", exc_info=True)
                return
            if yielded is None:  # a bare yield: resumed at the next loop iteration
                self._handle = asyncio.get_running_loop().call_soon(self._resume)
                return
            if getattr(yielded, "_asyncio_future_blocking", None):
                yielded._asyncio_future_blocking = False
                self._waiting = yielded
                yielded.add_done_callback(self._wake)
                return
            self._it = None
            it.close()
            raise RuntimeError(f"receive() yielded {yielded!r}: not an asyncio future")
