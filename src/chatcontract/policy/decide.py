"""After a failed attempt: retry the same route, move to the fallback, or give up — by table.

``RULES`` (the one retry table, kept with the taxonomy in ``chatcontract.failures.taxonomy``)
says, per failure class, how many same-route retries are allowed, how long to wait
before one, and what happens once no retry is taken. It is keyed by ``"kind:category"`` for
the few classes where *where* it failed matters (a transport timeout is retried at once), and
by ``category`` otherwise. ``decide`` applies the row, the contract's ``errors.retryable`` /
``errors.non_retryable`` sets, ``policy.retry.max_attempts`` and the deadline:

============================  =======================  ===========  =========================
failure                       same-route retries       wait         then
============================  =======================  ===========  =========================
a silent route (no byte or    0                        -            fallback
  token within its limit,
  a stall)
connect failure / reset       1                        none         fallback
  before any byte
rate_limit                    up to max_attempts - 1   retry-after  fallback
                                                       or backoff
quota                         0                        -            fallback
upstream (5xx), timeout       1                        backoff      fallback
contract, content, usage      0                        -            fallback
  (broken after a 200)
context_length                0                        -            fallback to a route with
                                                                    a larger context window
content_policy                0                        -            raise (fallback when
                                                                    policy.content_policy_
                                                                    fallback is set)
validation, auth, model,      0                        -            raise at once
  endpoint, budget
============================  =======================  ===========  =========================

Rows are looked up by ``"kind:category:code"`` first (a silent route: ``SILENT_CODES``), then
``"kind:category"``, then ``category``.

A retry is only taken if its wait plus a minimal attempt (``MIN_ATTEMPT_S``) plus the fallback
reserve (while a fallback route remains) fits in what is left of the deadline. A server's
``retry-after`` above ``policy.retry.retry_after_cap_ms`` is never cut short: retrying inside
the window it asked for is hammering, so the call moves to the fallback instead.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from chatcontract.contract.model import Policy
from chatcontract.failures import Failure
from chatcontract.failures.taxonomy import (
    ALL_ATTEMPTS,
    RULES,
    SILENT_CODES,
    RetryDecision,
    Rule,
    Wait,
    rule_of,
)

from .backoff import compute_backoff
from .deadline import MIN_ATTEMPT_S, Deadline

__all__ = [
    "ALL_ATTEMPTS",
    "RULES",
    "SILENT_CODES",
    "Action",
    "Decision",
    "Rule",
    "Stop",
    "context_route",
    "decide",
    "rule_for",
]

Action = Literal["retry", "fallback", "raise"]
#: Why a call stops: the class forbids trying again, every option was used, or time ran out.
Stop = Literal["non_retryable", "exhausted", "deadline"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """The policy's answer after a failed attempt.

    ``action`` is ``retry`` (same route, after ``delay_s``), ``fallback`` (a later route, now)
    or ``raise``; for ``raise``, ``stop`` says why. ``reason`` is one readable line. ``skip``
    is how many of the remaining routes a ``fallback`` passes over (a ``context_length``
    refusal skips routes whose window is known to be no larger).
    """

    action: Action
    delay_s: float = 0.0
    reason: str = ""
    stop: Stop | None = None
    skip: int = 0

    def __post_init__(self) -> None:
        if self.delay_s < 0:
            raise ValueError(f"Decision.delay_s must be >= 0, got {self.delay_s}")
        if self.skip < 0 or (self.skip and self.action != "fallback"):
            raise ValueError("Decision.skip is a count >= 0, set only for a fallback")
        if (self.action == "raise") != (self.stop is not None):
            raise ValueError("Decision.stop is set exactly when action is 'raise'")

    @property
    def retry_decision(self) -> RetryDecision:
        """The action in the taxonomy's words (``raise`` is ``none``), for events and metrics."""
        return "none" if self.action == "raise" else self.action


def rule_for(
    failure: Failure,
    *,
    retryable: tuple[str, ...] = (),
    non_retryable: tuple[str, ...] = (),
) -> Rule:
    """The row of the one retry table (``chatcontract.failures.taxonomy.RULES``) for
    ``failure``, adjusted by the contract's sets (see ``rule_of``). A silent route
    (``SILENT_CODES``) is never retried, whatever the sets say about ``timeout``."""
    return rule_of(
        failure.category,
        kind=failure.kind,
        code=failure.code,
        retryable=retryable,
        non_retryable=non_retryable,
    )


def decide(
    failure: Failure,
    *,
    attempt: int,
    policy: Policy,
    retryable: tuple[str, ...],
    non_retryable: tuple[str, ...],
    deadline: Deadline,
    has_fallback: bool,
    retry_after_s: float | None,
    rng: Callable[[], float],
    route_window: int | None = None,
    next_windows: Sequence[int | None] | None = None,
) -> Decision:
    """Retry, fall back or raise after ``failure`` on attempt ``attempt`` (1-based) of a route.

    Args:
        failure: the failed attempt's classification.
        attempt: how many attempts this route has had, the failed one included.
        policy: the contract's policy (retry settings, fallback reserve).
        retryable, non_retryable: the contract's ``errors`` sets.
        deadline: the call's single deadline.
        has_fallback: whether a fallback route remains after this one.
        retry_after_s: the server's ``retry-after`` hint, if any (capped here).
        rng: a random source in ``[0, 1)`` for the jitter.
        route_window: this route's ``context_window``, if declared.
        next_windows: the ``context_window`` of each remaining route, in order (``None``:
            unknown); read for a ``context_length`` refusal only.
    """
    rule = rule_for(failure, retryable=retryable, non_retryable=non_retryable)
    label = f"{failure.kind}/{failure.category}/{failure.code}"
    if failure.category == "content_policy" and policy.content_policy_fallback:
        rule = replace(rule, then="fallback")
    skip = 0
    if failure.category == "context_length":
        # The same request on the same route is refused again: never retried, even if listed.
        rule = replace(rule, retries=0, then="fallback")
        target: int | None = None
        if has_fallback:
            target = 0 if next_windows is None else context_route(route_window, next_windows)
        if target is None:
            where = "declares a larger one" if has_fallback else "is configured"
            return Decision(
                action="raise",
                stop="non_retryable",
                reason=f"{label}: the request is too large for this route's context window "
                f"({_window(route_window)}) and no fallback route {where}",
            )
        skip = target
    if rule.then == "raise" and rule.retries == 0:
        return Decision(
            action="raise",
            stop="non_retryable",
            reason=f"{label} is not retried and has no fallback: {failure.action}",
        )
    settings = policy.retry
    allowed = settings.max_attempts - 1
    if rule.retries != ALL_ATTEMPTS:
        allowed = min(allowed, rule.retries)
    reserve_s = deadline.reserve(policy.fallback_reserve_ms / 1000.0) if has_fallback else 0.0
    blocked = ""
    cap_s = settings.retry_after_cap_ms / 1000.0
    too_long = ""
    if rule.wait == "retry_after" and retry_after_s is not None and retry_after_s > cap_s:
        # Retrying before the window the server asked for is hammering: no same-route retry.
        allowed = 0
        too_long = f"retry-after {retry_after_s:.3f} s is above the {cap_s:.3f} s cap"
    if attempt - 1 < allowed:
        delay, source = _delay(rule.wait, attempt, policy, retry_after_s, rng)
        needed = delay + MIN_ATTEMPT_S + reserve_s
        left = deadline.remaining()
        if needed <= left:
            return Decision(
                action="retry",
                delay_s=delay,
                reason=f"{label}: retry {attempt} of {allowed} after {delay:.3f} s ({source})",
            )
        blocked = f"a retry needs {needed:.3f} s but {left:.3f} s are left"
    if rule.then == "fallback" and has_fallback:
        if deadline.remaining() >= MIN_ATTEMPT_S:
            why = (
                blocked
                or too_long
                or (
                    "no same-route retry for this class"
                    if allowed == 0
                    else f"{allowed} retr{'y' if allowed == 1 else 'ies'} used"
                )
            )
            passed = f", passing over {skip} route(s) with no larger context window" if skip else ""
            return Decision(
                action="fallback", reason=f"{label}: fall back ({why}{passed})", skip=skip
            )
        return Decision(
            action="raise",
            stop="deadline",
            reason=f"{label}: the deadline ran out before the fallback",
        )
    if too_long:
        return Decision(
            action="raise", stop="exhausted", reason=f"{label}: {too_long} and no fallback route"
        )
    if blocked or deadline.expired:
        return Decision(
            action="raise", stop="deadline", reason=f"{label}: {blocked or 'the deadline ran out'}"
        )
    if rule.then == "raise":
        return Decision(
            action="raise",
            stop="exhausted",
            reason=f"{label}: retries used, not eligible for a fallback",
        )
    return Decision(
        action="raise", stop="exhausted", reason=f"{label}: no retry left and no fallback route"
    )


def context_route(route_window: int | None, next_windows: Sequence[int | None]) -> int | None:
    """The index of the first remaining route that may serve a request refused as too long.

    A route whose ``context_window`` is declared and no larger than the refusing route's is
    passed over (it would refuse too); a route with an unknown window, or any route when the
    refusing route's window is unknown, is tried. ``None``: no remaining route may serve it.

        >>> context_route(8_192, [8_192, None, 128_000])
        1
        >>> context_route(8_192, [4_096]) is None
        True
    """
    for index, window in enumerate(next_windows):
        if route_window is None or window is None or window > route_window:
            return index
    return None


def _window(tokens: int | None) -> str:
    return "unknown" if tokens is None else f"{tokens} tokens"


def _delay(
    wait: Wait,
    attempt: int,
    policy: Policy,
    retry_after_s: float | None,
    rng: Callable[[], float],
) -> tuple[float, str]:
    if wait == "none":
        return 0.0, "immediately"
    if wait == "retry_after" and retry_after_s is not None:
        # decide() takes no retry for a hint above the cap: what is asked is waited in full.
        return max(retry_after_s, 0.0), "retry-after"
    return compute_backoff(attempt, policy.retry, rng=rng), "backoff"
