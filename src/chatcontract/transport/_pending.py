"""The queue of deferred calls and the one function that works it off (see ``deferred.py``).

Kept free of imports so the network backend (``_timing``) can drain it in its wait windows
without an import cycle.
"""

from __future__ import annotations

import logging
from collections import deque
from typing import Protocol

__all__ = ["PENDING", "Completable", "drain"]

logger = logging.getLogger("chatcontract.transport")


class Completable(Protocol):
    def complete(self) -> None: ...


#: Calls that ended and wait to be observed. ``append`` and ``popleft`` are atomic, so any
#: thread may add or drain, and each call is completed exactly once.
PENDING: deque[Completable] = deque()


def drain() -> int:
    """Complete every pending call now; returns how many. Never raises: an observer bug is
    logged (its type only: messages could quote a body) and the next call is taken."""
    done = 0
    pop = PENDING.popleft
    while True:
        try:
            call = pop()
        except IndexError:
            return done
        try:
            call.complete()
        except Exception as exc:  # the caller is another request's read: never fail it
            logger.warning("chatcontract: a deferred observation failed (%s)", type(exc).__name__)
        done += 1
