"""One deadline for a whole call: every attempt, retry wait and fallback comes out of it.

A per-attempt timeout multiplied by the number of attempts is how a 30 s timeout turns into
91 s of waiting (openai-python #3828). Here the caller's budget is fixed once, and each
attempt gets what is left, minus a reserve kept for the fallback route when one remains.

    deadline = Deadline(60.0)                    # clock: time.monotonic
    timeout = deadline.for_attempt(reserve_s=5)  # None once nothing is left
"""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["MAX_RESERVE_SHARE", "MIN_ATTEMPT_S", "Deadline", "effective_reserve"]

#: No attempt is started with less time than this: below it a request cannot succeed.
MIN_ATTEMPT_S = 0.1

#: The fallback reserve never takes more than this share of the whole call's deadline: a
#: 5 s reserve under a 5 s deadline would leave the primary route the 0.1 s floor.
MAX_RESERVE_SHARE = 0.5


def effective_reserve(reserve_s: float, total_s: float) -> float:
    """The fallback reserve for a call of ``total_s`` seconds: it shrinks with the deadline.

    At most ``MAX_RESERVE_SHARE`` of the deadline, so the primary route always gets at least
    as much time as the fallback keeps; never negative.

        >>> effective_reserve(5.0, 60.0), effective_reserve(5.0, 5.0), effective_reserve(5.0, 0.1)
        (5.0, 2.5, 0.05)
    """
    return max(0.0, min(reserve_s, total_s * MAX_RESERVE_SHARE))


class Deadline:
    """A fixed end moment on an injected monotonic clock.

    Args:
        total_s: the whole call's budget in seconds (> 0).
        clock: a monotonic clock in seconds (default ``time.monotonic``).
        floor_s: the smallest timeout ``for_attempt`` hands out while time remains.
    """

    __slots__ = ("_clock", "ends_at", "floor_s", "started_at", "total_s")

    def __init__(
        self,
        total_s: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        floor_s: float = MIN_ATTEMPT_S,
    ) -> None:
        if not total_s > 0:
            raise ValueError(f"a deadline needs a positive number of seconds, got {total_s}")
        self._clock = clock
        self.total_s = float(total_s)
        self.floor_s = floor_s
        self.started_at = clock()
        self.ends_at = self.started_at + self.total_s

    def now(self) -> float:
        """The injected clock's current value."""
        return self._clock()

    def remaining(self) -> float:
        """Seconds left (never negative)."""
        return max(0.0, self.ends_at - self._clock())

    def elapsed(self) -> float:
        """Seconds since the deadline started."""
        return self._clock() - self.started_at

    @property
    def expired(self) -> bool:
        """True once no time is left."""
        return self.remaining() <= 0.0

    def for_attempt(self, reserve_s: float = 0.0) -> float | None:
        """The timeout for the next attempt, or ``None`` when the deadline has expired.

        What is left minus the fallback reserve (``reserve_s``, passed only while a fallback
        route remains, shrunk by :meth:`reserve` for a short deadline), never below
        ``floor_s`` and never above what is left.
        """
        remaining = self.remaining()
        if remaining <= 0.0:
            return None
        return min(remaining, max(remaining - self.reserve(reserve_s), self.floor_s))

    def reserve(self, reserve_s: float) -> float:
        """The configured fallback reserve as it applies to this deadline (see
        :func:`effective_reserve`)."""
        return effective_reserve(reserve_s, self.total_s)

    def __repr__(self) -> str:
        return f"Deadline(total_s={self.total_s:g}, remaining={self.remaining():.3f})"
