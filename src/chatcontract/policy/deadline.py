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

__all__ = ["MIN_ATTEMPT_S", "Deadline"]

#: No attempt is started with less time than this: below it a request cannot succeed.
MIN_ATTEMPT_S = 0.1


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

        What is left minus ``reserve_s`` (the fallback reserve, passed only while a fallback
        route remains), never below ``floor_s`` and never above what is left.
        """
        remaining = self.remaining()
        if remaining <= 0.0:
            return None
        return min(remaining, max(remaining - reserve_s, self.floor_s))

    def __repr__(self) -> str:
        return f"Deadline(total_s={self.total_s:g}, remaining={self.remaining():.3f})"
