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
transport timeout / network   1                        none         fallback
rate_limit                    up to max_attempts - 1   retry-after  fallback
                                                       or backoff
quota                         0                        -            fallback
upstream (5xx), timeout       1                        backoff      fallback
contract, content, usage      0                        -            fallback
  (broken after a 200)
validation, auth, model,      0                        -            raise at once
  endpoint, budget
============================  =======================  ===========  =========================

A retry is only taken if its wait plus a minimal attempt (``MIN_ATTEMPT_S``) plus the fallback
reserve (while a fallback route remains) fits in what is left of the deadline.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from chatcontract.contract.model import Policy
from chatcontract.failures import Failure
from chatcontract.failures.taxonomy import ALL_ATTEMPTS, RULES, RetryDecision, Rule, Wait, rule_of

from .backoff import compute_backoff
from .deadline import MIN_ATTEMPT_S, Deadline

__all__ = ["ALL_ATTEMPTS", "RULES", "Action", "Decision", "Rule", "Stop", "decide", "rule_for"]

Action = Literal["retry", "fallback", "raise"]
#: Why a call stops: the class forbids trying again, every option was used, or time ran out.
Stop = Literal["non_retryable", "exhausted", "deadline"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """The policy's answer after a failed attempt.

    ``action`` is ``retry`` (same route, after ``delay_s``), ``fallback`` (next route, now) or
    ``raise``; for ``raise``, ``stop`` says why. ``reason`` is one readable line.
    """

    action: Action
    delay_s: float = 0.0
    reason: str = ""
    stop: Stop | None = None

    def __post_init__(self) -> None:
        if self.delay_s < 0:
            raise ValueError(f"Decision.delay_s must be >= 0, got {self.delay_s}")
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
    ``failure``, adjusted by the contract's sets (see ``rule_of``)."""
    return rule_of(
        failure.category, kind=failure.kind, retryable=retryable, non_retryable=non_retryable
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
    """
    rule = rule_for(failure, retryable=retryable, non_retryable=non_retryable)
    label = f"{failure.kind}/{failure.category}/{failure.code}"
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
            why = blocked or (
                "no same-route retry for this class"
                if allowed == 0
                else f"{allowed} retr{'y' if allowed == 1 else 'ies'} used"
            )
            return Decision(action="fallback", reason=f"{label}: fall back ({why})")
        return Decision(
            action="raise",
            stop="deadline",
            reason=f"{label}: the deadline ran out before the fallback",
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
        cap_s = policy.retry.retry_after_cap_ms / 1000.0
        return min(max(retry_after_s, 0.0), cap_s), "retry-after"
    return compute_backoff(attempt, policy.retry, rng=rng), "backoff"
