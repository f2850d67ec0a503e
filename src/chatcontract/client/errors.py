"""Exceptions raised to callers of ``ChatClient`` / ``AsyncChatClient`` when a call fails.

These mean *the call* failed (the provider, the network or a local guard said no), not that
chatcontract itself is broken (that is ``chatcontract.errors.ChatContractError``). Each one
carries the classification of what stopped the call and every attempt made::

    CallFailedError                 .failure (Failure), .attempts (Exchanges), .outcome
    ├── NonRetryableError           validation, auth, model, endpoint: trying again repeats it
    ├── RetriesExhaustedError       every allowed retry and fallback route failed
    ├── DeadlineExhaustedError      the call's single deadline ran out (every attempt listed)
    ├── BudgetExceededError         a local cap refused to send (nothing went on the wire)
    ├── KillSwitchError             the kill switch is on and there is no fallback route
    └── StreamInterrupted           a stream failed after deltas reached the caller
                                    (.partial_content: what was delivered)

Messages are built from classifications only: never the prompt, the answer or the secret.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

from chatcontract.exchange import Exchange
from chatcontract.failures import Failure
from chatcontract.policy import Decision
from chatcontract.redact import redact_text
from chatcontract.wire import StreamResult

__all__ = [
    "BudgetExceededError",
    "CallFailedError",
    "CallOutcome",
    "DeadlineExhaustedError",
    "KillSwitchError",
    "NonRetryableError",
    "RetriesExhaustedError",
    "StreamInterrupted",
]

#: The final outcome of a call, as reports and results name it.
CallOutcome = Literal[
    "success",
    "non_retryable",
    "retries_exhausted",
    "deadline_exhausted",
    "budget_refused",
    "kill_switch",
    "stream_interrupted",
]


class CallFailedError(Exception):
    """A chat call failed; ``failure`` says why, ``attempts`` lists every HTTP call made.

    Attributes:
        failure: the classification that ended the call.
        attempts: one ``Exchange`` per attempt, in order (empty when nothing was sent).
        decisions: the policy's decision after each failed attempt.
        outcome: the final outcome (``non_retryable``, ``deadline_exhausted``, ...).
    """

    outcome: CallOutcome = "retries_exhausted"

    def __init__(
        self,
        failure: Failure,
        *,
        attempts: Sequence[Exchange] = (),
        decisions: Sequence[Decision] = (),
        secrets: Sequence[str] = (),
    ) -> None:
        self.failure = failure
        self.attempts: tuple[Exchange, ...] = tuple(attempts)
        self.decisions: tuple[Decision, ...] = tuple(decisions)
        super().__init__(redact_text(self._describe(), secrets))

    def _describe(self) -> str:
        count = len(self.attempts)
        routes = ", ".join(dict.fromkeys(exchange.route for exchange in self.attempts))
        sent = f"{count} attempt{'s' if count != 1 else ''}" + (f" on {routes}" if routes else "")
        return f"{self.outcome.replace('_', ' ')} after {sent}: {self.failure}"

    @property
    def category(self) -> str:
        """The failure category (``rate_limit``, ``quota``, ``validation``, ...)."""
        return self.failure.category


class NonRetryableError(CallFailedError):
    """The failure class forbids another attempt anywhere (validation, auth, model, endpoint)."""

    outcome: CallOutcome = "non_retryable"


class RetriesExhaustedError(CallFailedError):
    """Every retry and fallback the policy allowed was tried, and the last one failed."""

    outcome: CallOutcome = "retries_exhausted"


class DeadlineExhaustedError(CallFailedError):
    """The call's single deadline ran out across attempts, waits and fallbacks."""

    outcome: CallOutcome = "deadline_exhausted"


class BudgetExceededError(CallFailedError):
    """A local cap (tokens, cost per call, cost per day) refused the call before sending."""

    outcome: CallOutcome = "budget_refused"


class KillSwitchError(CallFailedError):
    """The contract's kill switch is set and no fallback route exists to take the traffic."""

    outcome: CallOutcome = "kill_switch"


class StreamInterrupted(CallFailedError):  # noqa: N818 - names the event, as the issue asks
    """A stream broke after deltas reached the caller: the answer is incomplete.

    Attributes:
        partial_content: the content delivered before the failure.
        partial: everything assembled from the attempt (content, reasoning, tool calls).
    """

    outcome: CallOutcome = "stream_interrupted"

    def __init__(
        self,
        failure: Failure,
        *,
        partial: StreamResult,
        attempts: Sequence[Exchange] = (),
        decisions: Sequence[Decision] = (),
        secrets: Sequence[str] = (),
    ) -> None:
        self.partial = partial
        self.partial_content = partial.content
        super().__init__(failure, attempts=attempts, decisions=decisions, secrets=secrets)

    def _describe(self) -> str:
        return (
            f"{super()._describe()} ({len(self.partial_content)} characters were delivered "
            "before the stream broke)"
        )
