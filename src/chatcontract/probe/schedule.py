"""When the next probe cycle is due: a fixed grid with jitter, driven by an injected clock.

Cycles sit on a grid ``anchor + k * interval``; each one is due at its grid point plus a random
offset in ``[0, jitter * interval)``, so several probe processes started together spread out,
yet the schedule never drifts and never bunches: a late cycle skips to the next grid point
after ``now`` instead of firing the missed ones in a burst. A clock that steps back (NTP, a
resumed VM) re-anchors the grid at the new time, so the next cycle is never more than one
interval (plus jitter) away. The scheduler never sleeps; the caller asks how long to wait.

Example::

    scheduler = Scheduler(clock=time.time, rng=random.Random(), interval_s=60, jitter=0.1)
    if scheduler.is_due():
        run_cycle()
        scheduler.advance()
    wait(scheduler.seconds_until_due())
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable

__all__ = ["MAX_JITTER", "Clock", "Scheduler"]

#: A clock returns epoch seconds (``time.time`` in production, a fake in tests).
Clock = Callable[[], float]

#: Jitter is a fraction of the interval; above one half, neighbouring cycles could touch.
MAX_JITTER = 0.5


class Scheduler:
    """Due times of probe cycles.

    Args:
        clock: epoch seconds now.
        rng: the source of jitter (seed it in tests).
        interval_s: seconds between grid points (> 0).
        jitter: the offset's upper bound as a fraction of the interval (0 to 0.5).
        start: the first grid point (default: now); the first cycle is due at once.
    """

    def __init__(
        self,
        *,
        clock: Clock,
        rng: random.Random,
        interval_s: float,
        jitter: float = 0.1,
        start: float | None = None,
    ) -> None:
        if not interval_s > 0 or math.isinf(interval_s):
            raise ValueError(f"interval_s must be a positive number of seconds, got {interval_s}")
        if not 0 <= jitter <= MAX_JITTER:
            raise ValueError(f"jitter must be between 0 and {MAX_JITTER}, got {jitter}")
        self._clock = clock
        self._rng = rng
        self.interval_s = float(interval_s)
        self.jitter = float(jitter)
        self.anchor = clock() if start is None else float(start)
        self._slot = 0
        self._due = self.anchor

    @property
    def slot(self) -> int:
        """The grid index of the next cycle."""
        return self._slot

    def next_due(self) -> float:
        """Epoch seconds at which the next cycle is due."""
        return self._due

    def is_due(self, now: float | None = None) -> bool:
        current = self._clock() if now is None else now
        self._follow_clock(current)
        return current >= self._due

    def seconds_until_due(self, now: float | None = None) -> float:
        """How long to wait before the next cycle (0 when it is due)."""
        current = self._clock() if now is None else now
        self._follow_clock(current)
        return max(0.0, self._due - current)

    def _follow_clock(self, now: float) -> None:
        """Re-anchor the grid when the clock stepped back.

        The next cycle is never further than one interval plus jitter away unless the clock
        went backwards; waiting for the old due time would stop probing for as long as the
        step (an hour's step back: an hour without a probe). The first cycle stays due at
        once; a later one is due one interval (plus jitter) after ``now``.
        """
        if self._due - now <= self.interval_s * (1.0 + self.jitter):
            return
        if self._slot == 0:
            self.anchor = now
            self._due = now
            return
        self.anchor = now - (self._slot - 1) * self.interval_s
        grid = self.anchor + self._slot * self.interval_s
        self._due = grid + self._rng.uniform(0.0, self.jitter * self.interval_s)

    def advance(self, now: float | None = None) -> float:
        """A cycle ran at ``now``: schedule the next one on the first grid point after ``now``.

        Returns the new due time.
        """
        current = self._clock() if now is None else now
        elapsed = (current - self.anchor) / self.interval_s
        self._slot = max(self._slot + 1, math.floor(elapsed) + 1)
        grid = self.anchor + self._slot * self.interval_s
        self._due = grid + self._rng.uniform(0.0, self.jitter * self.interval_s)
        self._follow_clock(current)
        return self._due
