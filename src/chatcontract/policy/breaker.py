"""A circuit breaker per route: skip a route that keeps failing, briefly, and never refuse a call.

During a 60 s outage of the primary, a client without a breaker tries the primary first on
every call and wastes an attempt (and its timeout) each time. ``Breakers`` counts, per route,
the attempts in a row that failed with a counted class (by default the retryable ones:
``rate_limit``, ``upstream``, ``timeout``, ``network``); after ``policy.breaker.failures`` of
them the route is *open* for ``cooldown_ms``: calls go to the other routes first (and the call
whose attempt opened it takes no same-route retry when another route remains). After the
cool-down, one call is let through as a trial (*half-open*); its failure opens the breaker again
for another cool-down, its success closes it *on probation*: traffic returns at once, but the
next counted failure re-opens it before a second success clears the count. So a route that
flaps (an attempt now and then gets through an outage) costs at most ``failures`` attempts,
then one trial per cool-down plus, after a trial that got through, one more call.

The breaker only reorders routes, it never removes one: an open route is still tried after
the others, and when every route is open the least recently failed one goes first. So a call
that some route can serve is never refused by the breaker.

    breakers = Breakers(contract.policy.breaker, clock=time.monotonic)
    order = breakers.order(["primary", "smaller-model"])   # open routes last
    change = breakers.record_failure("primary", "upstream")  # a BreakerChange when it opens
    breakers.snapshot()                                      # states for a metric

The clock is injected (monotonic seconds); the object is safe to share between threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Literal

from chatcontract.contract.model import BreakerPolicy

__all__ = [
    "BREAKER_STATES",
    "COUNTED_CATEGORIES",
    "BreakerChange",
    "BreakerState",
    "Breakers",
    "RouteHealth",
]

BreakerState = Literal["closed", "open", "half_open"]

#: The states in the order a gauge reports them (0, 1, 2).
BREAKER_STATES: tuple[BreakerState, ...] = ("closed", "open", "half_open")

#: Failure categories that count towards opening a breaker: the route's health, not the
#: request's fault (a validation error says nothing about the route).
COUNTED_CATEGORIES: tuple[str, ...] = ("rate_limit", "upstream", "timeout", "network")


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteHealth:
    """One route's breaker, as a value a metric or an event can report.

    ``failures`` is the count of counted failures in a row; ``open_until`` is when an open
    breaker lets a trial call through (``None`` unless open); ``last_failure_at`` is the clock
    value of the last counted failure.
    """

    route: str
    state: BreakerState
    failures: int
    open_until: float | None = None
    last_failure_at: float | None = None

    @property
    def state_value(self) -> int:
        """The state as a gauge value: 0 closed, 1 open, 2 half-open."""
        return BREAKER_STATES.index(self.state)


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakerChange:
    """A state change, for an event: ``route`` went from ``before`` to ``after``."""

    route: str
    before: BreakerState
    after: BreakerState
    failures: int
    reason: str


class _Phase(Enum):
    """A breaker's state inside ``Breakers`` (compared by identity, reported by value)."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass
class _Route:
    phase: _Phase
    failures: int
    opened_at: float
    last_failure_at: float
    trial_at: float | None  # when the half-open trial call was let through


class Breakers:
    """The breakers of a client's routes.

    Args:
        policy: ``policy.breaker`` (``enabled``, ``failures``, ``cooldown_ms``).
        clock: monotonic seconds (default ``time.monotonic``).
        counted: the failure categories that count (default ``COUNTED_CATEGORIES``; pass the
            contract's ``errors.retryable``).
    """

    def __init__(
        self,
        policy: BreakerPolicy,
        *,
        clock: Callable[[], float] = time.monotonic,
        counted: Iterable[str] = COUNTED_CATEGORIES,
    ) -> None:
        self.policy = policy
        self.counted = frozenset(counted)
        self._clock = clock
        self._routes: dict[str, _Route] = {}
        self._lock = threading.Lock()

    @property
    def cooldown_s(self) -> float:
        """The cool-down in seconds."""
        return self.policy.cooldown_ms / 1000.0

    @property
    def idle(self) -> bool:
        """No route has a counted failure on record (or breakers are off): :meth:`order` would
        give any routes back as they are, claiming no trial (a cheap test before it)."""
        return not self.policy.enabled or not self._routes

    def order(self, routes: Sequence[str]) -> tuple[str, ...]:
        """``routes`` in the order to try them for one call.

        Routes whose breaker lets a call through (closed, or the one trial of a half-open
        breaker, claimed here) keep their configured order; open routes follow, the least
        recently failed first. Every route is always in the result.
        """
        if not self.policy.enabled:
            return tuple(routes)
        with self._lock:
            now = self._clock()
            allowed = [name for name in routes if self._let_through(name, now)]
            held = sorted(
                (name for name in routes if name not in allowed),
                key=lambda name: self._routes[name].last_failure_at,
            )
        return (*allowed, *held)

    def _let_through(self, name: str, now: float) -> bool:
        route = self._routes.get(name)
        if route is None or route.phase is _Phase.CLOSED:
            return True
        if route.phase is _Phase.OPEN and now >= route.opened_at + self.cooldown_s:
            route.phase, route.trial_at = _Phase.HALF_OPEN, now
            return True
        if route.phase is _Phase.HALF_OPEN and (
            route.trial_at is None or now >= route.trial_at + self.cooldown_s
        ):
            route.trial_at = now  # the last trial never reported: let another one through
            return True
        return False

    def record_success(self, route: str) -> BreakerChange | None:
        """A call succeeded on ``route``. Returns the change, if any.

        A closed breaker forgets its failures. An open or half-open one closes on probation:
        its count stays one short of ``failures``, so the next counted failure re-opens it
        (a flapping route does not get ``failures`` more attempts) until a second success.
        """
        if not self.policy.enabled:
            return None
        with self._lock:
            state = self._routes.get(route)
            if state is None or state.phase is _Phase.CLOSED:
                self._routes.pop(route, None)
                return None
            before = state.phase
            state.phase, state.trial_at = _Phase.CLOSED, None
            state.failures = self.policy.failures - 1
            if state.failures <= 0:
                del self._routes[route]
            on_probation = state.failures
        return BreakerChange(
            route=route,
            before=before.value,
            after="closed",
            failures=on_probation,
            reason="a call succeeded: traffic returns to the route (its next failure "
            "re-opens it until a second success)",
        )

    def record_failure(self, route: str, category: str) -> BreakerChange | None:
        """An attempt failed on ``route`` with ``category`` (call it once per failed attempt).

        A category outside ``counted`` leaves the breaker as it is. Returns the change when
        the breaker opens (or re-opens after a failed trial, or on probation).
        """
        if not self.policy.enabled or category not in self.counted:
            return None
        with self._lock:
            now = self._clock()
            state = self._routes.get(route)
            if state is None:
                state = _Route(
                    phase=_Phase.CLOSED,
                    failures=0,
                    opened_at=now,
                    last_failure_at=now,
                    trial_at=None,
                )
                self._routes[route] = state
            state.failures += 1
            state.last_failure_at = now
            before = state.phase
            if before is _Phase.HALF_OPEN or (
                before is _Phase.CLOSED and state.failures >= self.policy.failures
            ):
                state.phase, state.opened_at, state.trial_at = _Phase.OPEN, now, None
                failures = state.failures
            else:
                return None
        reason = (
            "the trial call failed"
            if before is _Phase.HALF_OPEN
            else f"{failures} attempts in a row failed ({category})"
        )
        return BreakerChange(
            route=route,
            before=before.value,
            after="open",
            failures=failures,
            reason=f"{reason}: the route is tried last for {self.cooldown_s:g} s",
        )

    def is_open(self, route: str) -> bool:
        """Whether ``route``'s breaker is open now (a trial not yet let through)."""
        with self._lock:
            state = self._routes.get(route)
            return state is not None and state.phase is _Phase.OPEN

    def health(self, route: str) -> RouteHealth:
        """``route``'s breaker now (an open one past its cool-down still reads ``open``)."""
        with self._lock:
            state = self._routes.get(route)
            if state is None:
                return RouteHealth(route=route, state="closed", failures=0)
            is_open = state.phase is _Phase.OPEN
            return RouteHealth(
                route=route,
                state=state.phase.value,
                failures=state.failures,
                open_until=state.opened_at + self.cooldown_s if is_open else None,
                last_failure_at=state.last_failure_at,
            )

    def snapshot(self, routes: Iterable[str]) -> tuple[RouteHealth, ...]:
        """The health of each of ``routes``, for a gauge."""
        return tuple(self.health(route) for route in routes)

    def __repr__(self) -> str:
        open_routes = sorted(
            name for name, r in self._routes.items() if r.phase is not _Phase.CLOSED
        )
        return f"Breakers(enabled={self.policy.enabled}, not_closed={open_routes})"
