"""``CallPlan``: the sans-IO state machine of one call, driven by both client shells.

The shell asks the plan what to do next and reports what happened; the plan never sends,
sleeps or reads a socket. Steps:

- ``Send(route, attempt, budget_s)``: make one HTTP attempt within ``budget_s`` seconds.
- ``Wait(seconds)``: sleep, then call ``resume()``.
- ``Finish(result)``: the call succeeded.
- ``Fail(error)``: raise ``error`` (a ``CallFailedError``).

Retry/fallback/raise come from ``policy.decide``; the budget guard is asked before every
attempt, the actual cost recorded after a success, and the telemetry events emitted here, so
the sync and async clients behave identically by construction.

Every failed attempt gets exactly one ``Decision`` (``decisions[i]`` follows the i-th failed
attempt) and is told to the route's circuit breaker.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from msgspec import Struct
from msgspec.structs import replace

from chatcontract.contract import ErrorTable, Policy
from chatcontract.exchange import Exchange
from chatcontract.failures import Failure, make_failure
from chatcontract.policy import BudgetGuard, Deadline, Decision, decide, parse_retry_after
from chatcontract.policy.breaker import BreakerChange, Breakers
from chatcontract.policy.deadline import MIN_ATTEMPT_S
from chatcontract.policy.recovery import UNRECOVERABLE, Recovery, recover_stream, tolerated
from chatcontract.telemetry.events import (
    BreakerChanged,
    BudgetRefusal,
    ClientEvent,
    DeadlineExhausted,
    FallbackActivated,
    RetryDecided,
    RetrySucceeded,
)
from chatcontract.wire import Completion, StreamResult

from ._routes import Route
from .errors import (
    BudgetExceededError,
    CallFailedError,
    DeadlineExhaustedError,
    KillSwitchError,
    NonRetryableError,
    RetriesExhaustedError,
    StreamInterrupted,
)
from .result import ChatResult

__all__ = [
    "AttemptOutcome",
    "CallPlan",
    "Fail",
    "Finish",
    "Send",
    "Step",
    "Wait",
    "attempt_outcome",
]


class Send(Struct, frozen=True, kw_only=True):
    """Make one attempt on ``route`` within ``budget_s`` seconds."""

    route: Route
    attempt: int  # across the whole call, from 1
    route_attempt: int  # on this route, from 1
    budget_s: float
    #: A stream's budget once text reached the caller, when longer: the fallback reserve
    #: (kept out of ``budget_s``) is released then, as no later route could take over a
    #: stream with text delivered (none continues one, the caller takes no restart). None:
    #: ``budget_s`` throughout.
    delivered_budget_s: float | None = None
    #: The body to send instead of the call's own (a continuation request), if any.
    body: Mapping[str, Any] | None = None
    #: The caller's ``on_restart`` is called before this attempt (it answers from the start).
    restart: bool = False


class Wait(Struct, frozen=True, kw_only=True, gc=False):
    """Sleep ``seconds``, then call ``CallPlan.resume()``."""

    seconds: float


class Finish(Struct, frozen=True, kw_only=True):
    """The call succeeded."""

    result: ChatResult


class Fail(Struct, frozen=True, kw_only=True):
    """The call failed: raise ``error``."""

    error: CallFailedError


Step = Send | Wait | Finish | Fail


class AttemptOutcome(Struct, frozen=True, kw_only=True):
    """What one attempt produced, as the shell saw it.

    ``answer`` is the parsed answer when the Exchange is a success; ``partial`` a stream's
    assembled result; ``delivered`` whether any delta reached the caller.
    """

    exchange: Exchange
    answer: Completion | None = None
    partial: StreamResult | None = None
    delivered: bool = False


def attempt_outcome(
    exchange: Exchange, answer: Completion | None, partial: StreamResult | None, delivered: bool
) -> AttemptOutcome:
    """``AttemptOutcome(exchange=..., answer=..., partial=..., delivered=...)``."""
    return AttemptOutcome(exchange=exchange, answer=answer, partial=partial, delivered=delivered)


#: The error raised for each way a call can stop (the deadline has its own path).
_STOP_ERRORS: dict[str, type[CallFailedError]] = {
    "non_retryable": NonRetryableError,
    "exhausted": RetriesExhaustedError,
    "deadline": DeadlineExhaustedError,
}


def _no_emit(event: ClientEvent) -> None:
    del event


class CallPlan:
    """One call's routes, deadline, guard and history; see the module docstring.

    Args:
        routes: primary first, then the fallbacks in order.
        policy, errors: the contract's policy and error table.
        deadline: the call's single deadline.
        rng: random source for backoff jitter.
        wall_clock: epoch seconds, for ``retry-after`` given as an HTTP date.
        guard: the client's budget guard.
        prompt_tokens, max_tokens: the request's estimated prompt and its completion cap.
        kill_switch: whether the kill switch is on for this call.
        kill_switch_env: the variable that turned it on, for messages (None: the caller
            turned it on, as the gateway's admin port does).
        emit: receives telemetry events.
        secrets: redacted from every message.
        breakers: the client's circuit breakers: told how each route this call left ended
            (its last failure, once) and which route answered.
        body_for: the call's request body for a route (what a continuation extends).
        accepts_restart: the caller of a stream said it can take a restart (``on_restart``).
    """

    def __init__(
        self,
        *,
        routes: Sequence[Route],
        policy: Policy,
        errors: ErrorTable,
        deadline: Deadline,
        rng: Callable[[], float],
        wall_clock: Callable[[], float],
        guard: BudgetGuard,
        prompt_tokens: int,
        max_tokens: int | None,
        kill_switch: bool = False,
        kill_switch_env: str | None = None,
        emit: Callable[[ClientEvent], None] = _no_emit,
        secrets: Sequence[str] = (),
        breakers: Breakers | None = None,
        body_for: Callable[[Route], Mapping[str, Any]] | None = None,
        accepts_restart: bool = False,
    ) -> None:
        if not routes:
            raise ValueError("a call needs at least one route")
        self.routes = tuple(routes)
        self.policy = policy
        self.errors = errors
        self.deadline = deadline
        self._rng = rng
        self._wall = wall_clock
        self._guard = guard
        self._prompt_tokens = prompt_tokens
        self._max_tokens = max_tokens
        self._kill_switch = kill_switch
        self._kill_switch_env = kill_switch_env
        self._emit = emit
        self._secrets = tuple(secrets)
        self._breakers = breakers
        self._body_for = body_for
        self._accepts_restart = accepts_restart
        # The mutable history; the rest of a new call's state is the class's defaults below.
        self._recoveries: list[Recovery] = []
        self._attempts: list[Exchange] = []
        self._decisions: list[Decision] = []

    # A new call's state, as class attributes (immutable values: each call that changes one
    # sets its own): no 10 stores per call for values most calls never change.
    # Mid-stream recovery: the text the caller holds, what the next attempt continues,
    # the failure that broke the stream (the one reported) and whether a route refused
    # a continuation.
    _delivered = ""
    _tool_started = False
    _prefix = ""
    _broken: Failure | None = None
    _refused = False
    _next_body: Mapping[str, Any] | None = None
    _restart = False
    _continuing = False
    _index = 0
    _route_attempt = 0

    # -- what the shells read ------------------------------------------------------------

    @property
    def attempts(self) -> tuple[Exchange, ...]:
        """Every attempt so far, in order."""
        return tuple(self._attempts)

    @property
    def decisions(self) -> tuple[Decision, ...]:
        """The policy's decision after each failed attempt."""
        return tuple(self._decisions)

    @property
    def recoveries(self) -> tuple[Recovery, ...]:
        """What was done after each mid-stream break (continue, restart or raise)."""
        return tuple(self._recoveries)

    @property
    def route(self) -> Route:
        """The route the next or current attempt uses."""
        return self.routes[self._index]

    # -- steps ---------------------------------------------------------------------------

    def start(self) -> Step:
        """The first step: the kill switch, then the first attempt."""
        if self._kill_switch:
            if len(self.routes) < 2:
                primary = self.routes[0]
                self._emit(BudgetRefusal(reason="kill_switch", model=primary.model))
                env = self._kill_switch_env
                switch = (
                    "the kill switch (set by this call's caller: the gateway's admin port)"
                    if env is None
                    else f"the kill switch ${env}"
                )
                failure = make_failure(
                    kind="budget",
                    category="budget",
                    code="kill_switch",
                    message=f"{switch} is on and this call has no fallback route (the contract "
                    "declares none, or the call's fallbacks name none): no request was sent",
                )
                return Fail(error=self._error(KillSwitchError, failure))
            self._index = 1
        return self._send()

    def resume(self) -> Step:
        """The step after a ``Wait``: the retry."""
        return self._send()

    def on_outcome(self, outcome: AttemptOutcome) -> Step:
        """Record an attempt; the next step (``Finish``, ``Wait``, ``Send`` or ``Fail``)."""
        exchange = outcome.exchange
        route = self.route
        answer = outcome.answer
        if answer is not None and (exchange.failure is None or _tolerated(exchange, answer)):
            self._attempts.append(exchange)
            if self._continuing:  # the caller holds the beginning: the answer is the whole
                answer = replace(answer, content=self._prefix + (answer.content or ""))
            return Finish(result=self._success(route, answer, exchange.failure))
        failure = exchange.failure or _unreadable(self._secrets)
        if exchange.failure is None:
            exchange = replace(exchange, failure=failure)
        self._attempts.append(exchange)
        self._charge_failed(route, exchange, failure)
        self._breaker_failure(route, failure)  # every failed attempt, once
        partial = outcome.partial
        if outcome.delivered and partial is not None:
            self._delivered += partial.content
            self._tool_started = self._tool_started or bool(partial.tool_calls)
        if self._delivered or self._tool_started:
            return self._mid_stream(route, exchange, failure, outcome)
        return self._after_failure(route, exchange, failure)

    # -- internals -----------------------------------------------------------------------

    def _send(self) -> Step:
        route = self.route
        refusal = self._guard.check(route.model, self._prompt_tokens, self._max_tokens)
        if refusal is not None:
            self._emit(BudgetRefusal(reason=refusal, model=route.model))
            failure = make_failure(
                kind="budget",
                category="budget",
                code=refusal,
                message=_refusal_message(refusal, route.model, self._max_tokens, self._guard),
            )
            return Fail(error=self._error(BudgetExceededError, failure))
        has_fallback = self._index < len(self.routes) - 1
        reserve_s = self.policy.fallback_reserve_ms / 1000.0 if has_fallback else 0.0
        budget = self.deadline.for_attempt(reserve_s)
        if budget is None:
            return self._deadline_exhausted(route, "before the next attempt could start")
        self._route_attempt += 1
        restart, self._restart = self._restart, False
        delivered_budget = None
        if has_fallback and reserve_s > 0.0 and not self._taken_over_after_text():
            whole = self.deadline.for_attempt()
            if whole is not None and whole > budget:
                delivered_budget = whole
        return Send(
            route=route,
            attempt=len(self._attempts) + 1,
            route_attempt=self._route_attempt,
            budget_s=budget,
            delivered_budget_s=delivered_budget,
            body=self._next_body,
            restart=restart,
        )

    def _taken_over_after_text(self) -> bool:
        """Whether a later route could take over a stream whose text reached the caller (it
        continues one, or the caller takes a restart): what the fallback reserve is kept for
        once text flows."""
        if self._accepts_restart:
            return True
        return any(route.continuation != "none" for route in self.routes[self._index + 1 :])

    def _charge_failed(self, route: Route, exchange: Exchange, failure: Failure) -> None:
        """A failed attempt the provider may have billed counts against the daily cap."""
        response = exchange.response
        self._guard.record_failed(
            route.model,
            usage=None if response is None else response.usage,
            answered=response is not None,
            category=failure.category,
            prompt_tokens=self._prompt_tokens,
            completion_chars=0 if response is None else response.content_chars,
        )

    def _breaker_failure(self, route: Route, failure: Failure) -> None:
        if self._breakers is not None:
            self._breaker_event(route, self._breakers.record_failure(route.name, failure.category))

    def _breaker_event(self, route: Route, change: BreakerChange | None) -> None:
        if change is not None:
            self._emit(
                BreakerChanged(
                    route=change.route,
                    model=route.model,
                    before=change.before,
                    after=change.after,
                    failures=change.failures,
                    reason=change.reason,
                )
            )

    def _success(
        self, route: Route, answer: Completion, violation: Failure | None = None
    ) -> ChatResult:
        if self._breakers is not None:
            self._breaker_event(route, self._breakers.record_success(route.name))
        if violation is None or violation.code not in _USAGE_CODES:
            cost = self._guard.record(route.model, answer.usage)
        else:  # the usage is missing or not to be trusted: charge the estimate
            cost = self._guard.record_failed(
                route.model,
                usage=None,
                answered=True,
                category=violation.category,
                prompt_tokens=self._prompt_tokens,
                completion_chars=len(answer.content or ""),
            )
        if len(self._attempts) > 1:
            self._emit(
                RetrySucceeded(route=route.name, model=route.model, attempts=len(self._attempts))
            )
        return ChatResult(
            content=answer.content,
            reasoning=answer.reasoning_content,
            refusal=answer.refusal,
            tool_calls=answer.tool_calls,
            finish_reason=answer.finish_reason,
            usage=answer.usage,
            model=answer.model,
            route=route.name,
            requested_model=route.model,
            attempts=tuple(self._attempts),
            decisions=tuple(self._decisions),
            cost_usd=cost,
            violations=() if violation is None else (violation,),
            secrets=self._secrets,
        )

    def _decide(
        self, route: Route, exchange: Exchange, failure: Failure, *, record: bool = True
    ) -> Decision:
        headers = exchange.response.rate_limit_headers if exchange.response is not None else {}
        has_fallback = self._index < len(self.routes) - 1
        decision = decide(
            failure,
            attempt=self._route_attempt,
            policy=self.policy,
            retryable=self.errors.retryable,
            non_retryable=self.errors.non_retryable,
            deadline=self.deadline,
            has_fallback=has_fallback,
            retry_after_s=parse_retry_after(headers, now=self._wall()),
            rng=self._rng,
            route_window=route.context_window,
            next_windows=[later.context_window for later in self.routes[self._index + 1 :]],
        )
        decision = self._hold_back(route, failure, decision)
        if record:
            self._record(route, exchange, failure, decision)
        return decision

    def _hold_back(self, route: Route, failure: Failure, decision: Decision) -> Decision:
        """A same-route retry on a route whose breaker this failure opened goes to the next
        route instead: an open route is not hammered (with no route left, it is retried)."""
        if (
            decision.action != "retry"
            or self._breakers is None
            or not self._has_next()
            or not self._breakers.is_open(route.name)
        ):
            return decision
        label = f"{failure.kind}/{failure.category}/{failure.code}"
        return Decision(
            action="fallback", reason=f"{label}: fall back (the route's circuit breaker opened)"
        )

    def _has_next(self) -> bool:
        """A later route remains and there is time for an attempt on it."""
        return self._index < len(self.routes) - 1 and self.deadline.remaining() >= MIN_ATTEMPT_S

    def _record(
        self, route: Route, exchange: Exchange, failure: Failure, decision: Decision
    ) -> None:
        self._decisions.append(decision)
        self._emit(
            RetryDecided(
                route=route.name,
                model=route.model,
                category=failure.category,
                decision=decision.retry_decision,
                attempt=exchange.attempt,
            )
        )

    def _move(self, route: Route, decision: Decision, failure: Failure) -> Step:
        """Take a retry or fallback decision: the next step."""
        if decision.action == "retry":
            return Wait(seconds=decision.delay_s) if decision.delay_s > 0 else self._send()
        target = self.routes[self._index + 1 + decision.skip]
        self._emit(
            FallbackActivated(
                from_route=route.name,
                to_route=target.name,
                category=failure.category,
                model=route.model,
            )
        )
        self._index += 1 + decision.skip
        self._route_attempt = 0
        return self._send()

    def _after_failure(self, route: Route, exchange: Exchange, failure: Failure) -> Step:
        decision = self._decide(route, exchange, failure)
        if decision.action != "raise":
            return self._move(route, decision, failure)
        if decision.stop == "deadline":
            return self._deadline_exhausted(route, decision.reason)
        return Fail(error=self._error(_STOP_ERRORS[decision.stop or "exhausted"], failure))

    def _mid_stream(
        self, route: Route, exchange: Exchange, failure: Failure, outcome: AttemptOutcome
    ) -> Step:
        """A stream broke after text reached the caller (in this attempt or an earlier one):
        continue it, restart it, or raise ``StreamInterrupted`` (``policy.recovery``).

        A break goes through this recovery once: it is never retried on the same route as if
        nothing had been delivered. The next route takes it when it continues the stream, or
        when this route does not (restart there, or raise); this route only when it continues
        the stream itself or no route is left. So ``on_restart`` is called at most once for
        one break. A continuation a route refuses (a request error before any new text) never
        replaces the failure that broke the stream: that one is reported whatever happens next.
        """
        label = f"{failure.kind}/{failure.category}/{failure.code}"
        refused = self._continuing and not outcome.delivered and failure.category in UNRECOVERABLE
        if refused:
            self._refused = True
            decision = Decision(
                action="retry", reason=f"{label}: the continuation was refused on this route"
            )
        else:
            if outcome.delivered or self._broken is None:
                self._broken = failure  # what broke the stream the caller reads
            decision = self._decide(route, exchange, failure, record=False)
        original = self._broken or failure
        if decision.action == "raise":
            self._record(route, exchange, failure, decision)
            return self._interrupted(original, outcome)
        target_index = self._index
        if decision.action == "fallback":
            target_index = self._index + 1 + decision.skip
        recovery = self._recovery(original, self.routes[target_index])
        if not refused and decision.action == "retry" and self._has_next():
            ahead = self._recovery(original, self.routes[self._index + 1])
            if ahead.action == "continue" or (outcome.delivered and recovery.action != "continue"):
                # The next route continues the stream, or this one cannot and the break is
                # fresh: recover there, once, instead of retrying here as if nothing happened.
                why = (
                    "the next route continues the stream"
                    if ahead.action == "continue"
                    else "a stream broken after deltas is recovered on the next route"
                )
                decision = Decision(action="fallback", reason=f"{label}: fall back ({why})")
                recovery = ahead
        self._recoveries.append(recovery)
        if recovery.action == "raise":
            stop = Decision(action="raise", stop="exhausted", reason=recovery.reason)
            self._record(route, exchange, failure, stop)  # nothing is tried next
            return self._interrupted(original, outcome)
        self._record(route, exchange, failure, decision)
        if recovery.action == "continue":
            self._next_body, self._continuing = recovery.body, True
            self._prefix = self._delivered
        else:  # restart: the caller is told before the new attempt, which starts afresh
            self._next_body, self._continuing, self._restart = None, False, True
            self._prefix, self._delivered, self._tool_started = "", "", False
        return self._move(route, decision, failure)

    def _recovery(self, original: Failure, target: Route) -> Recovery:
        base = dict(self._body_for(target)) if self._body_for is not None else {}
        return recover_stream(
            failure=original,
            delivered=self._delivered,
            tool_call_started=self._tool_started,
            continuation=target.continuation,
            accepts_restart=self._accepts_restart,
            request=base,
            continuation_refused=self._refused,
        )

    def _interrupted(self, failure: Failure, outcome: AttemptOutcome) -> Fail:
        partial = outcome.partial
        if partial is None:  # pragma: no cover - a stream attempt always has one
            raise ValueError("a stream attempt needs its partial result")
        partial = replace(partial, content=self._delivered)
        return Fail(
            error=StreamInterrupted(
                failure,
                partial=partial,
                attempts=self._attempts,
                decisions=self._decisions,
                secrets=self._secrets,
            )
        )

    def _deadline_exhausted(self, route: Route, why: str) -> Fail:
        self._emit(
            DeadlineExhausted(route=route.name, model=route.model, attempts=len(self._attempts))
        )
        last = self._attempts[-1].failure if self._attempts else None
        after = f"; last attempt: {last.kind}/{last.category}/{last.code}" if last else ""
        failure = make_failure(
            kind="transport",
            category="timeout",
            code="deadline",
            message=f"the call's {self.deadline.total_s:g} s deadline ran out ({why}){after}",
            secrets=self._secrets,
        )
        return Fail(error=self._error(DeadlineExhaustedError, failure))

    def _error(self, error_class: type[CallFailedError], failure: Failure) -> CallFailedError:
        return error_class(
            failure, attempts=self._attempts, decisions=self._decisions, secrets=self._secrets
        )


#: Tolerated codes after which the answer's usage is not charged as reported.
_USAGE_CODES = frozenset({"missing_usage", "usage_mismatch", "negative_usage"})


def _tolerated(exchange: Exchange, answer: Completion) -> bool:
    """A complete answer whose only failure is "complete but not as contracted"."""
    failure = exchange.failure
    return failure is not None and tolerated(
        failure,
        finish_reason=answer.finish_reason,
        content=answer.content,
        tool_calls=bool(answer.tool_calls),
    )


def _unreadable(secrets: tuple[str, ...]) -> Failure:
    return make_failure(
        kind="parser",
        category="contract",
        code="unreadable_success",
        message="the response passed its checks but the client could not read an answer",
        secrets=secrets,
    )


def _refusal_message(reason: str, model: str, max_tokens: int | None, guard: BudgetGuard) -> str:
    caps = guard.caps
    messages = {
        "max_tokens_cap": f"max_tokens {max_tokens} is above policy.caps.max_tokens_per_call "
        f"({caps.max_tokens_per_call})",
        "call_cost_cap": f"the worst-case cost for {model} is above "
        f"policy.caps.max_cost_per_call_usd ({caps.max_cost_per_call_usd})",
        "daily_cost_cap": f"the last 24 hours' spend plus this call's worst case is above "
        f"policy.caps.max_cost_per_day_usd ({caps.max_cost_per_day_usd})",
    }
    return messages.get(reason, reason) + ": nothing was sent"
