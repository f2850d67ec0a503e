"""What telemetry receives: every ``Exchange``, plus the client's decisions as small events.

A sink implements ``TelemetrySink``; ``Telemetry`` fans out to several. Labels shared by every
series (``provider``, ``endpoint``) come from the contract via ``CallLabels``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from chatcontract.transport import Exchange

__all__ = [
    "BudgetRefusal",
    "CallLabels",
    "ClientEvent",
    "DeadlineExhausted",
    "FallbackActivated",
    "RetryDecided",
    "RetrySucceeded",
    "Telemetry",
    "TelemetrySink",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class CallLabels:
    """Bounded labels shared by every series: who we call and which endpoint."""

    provider: str
    endpoint: str  # the path, e.g. /chat/completions (never a full URL with a query)


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryDecided:
    """After a failed attempt, the policy decided (``retry``, ``fallback`` or ``none``)."""

    route: str
    model: str
    category: str
    decision: Literal["retry", "fallback", "none"]
    attempt: int


@dataclass(frozen=True, slots=True, kw_only=True)
class RetrySucceeded:
    """A call succeeded after at least one failed attempt."""

    route: str
    model: str
    attempts: int


@dataclass(frozen=True, slots=True, kw_only=True)
class FallbackActivated:
    """Traffic moved from one route to the next because of ``category``."""

    from_route: str
    to_route: str
    category: str
    model: str


@dataclass(frozen=True, slots=True, kw_only=True)
class BudgetRefusal:
    """A local guard refused to send (nothing went on the wire)."""

    reason: str  # max_tokens_cap | call_cost_cap | daily_cost_cap | kill_switch
    model: str


@dataclass(frozen=True, slots=True, kw_only=True)
class DeadlineExhausted:
    """The call's single deadline ran out across attempts and fallbacks."""

    route: str
    model: str
    attempts: int


ClientEvent = RetryDecided | RetrySucceeded | FallbackActivated | BudgetRefusal | DeadlineExhausted


@runtime_checkable
class TelemetrySink(Protocol):
    """A destination for telemetry: Prometheus, OpenTelemetry, a JSON event log, a test list."""

    def handle_exchange(self, exchange: Exchange, labels: CallLabels) -> None: ...

    def handle_event(self, event: ClientEvent, labels: CallLabels) -> None: ...


class Telemetry:
    """Fans out to sinks; one sink failing never breaks a call (it is counted and skipped)."""

    def __init__(self, sinks: list[TelemetrySink] | tuple[TelemetrySink, ...], labels: CallLabels):
        self.sinks = tuple(sinks)
        self.labels = labels
        self.sink_errors = 0

    def exchange(self, exchange: Exchange) -> None:
        """Hand one Exchange to every sink (usable directly as a transport sink)."""
        for sink in self.sinks:
            try:
                sink.handle_exchange(exchange, self.labels)
            except Exception:  # telemetry must never break the call it observes
                self.sink_errors += 1

    def event(self, event: ClientEvent) -> None:
        """Hand one client decision to every sink."""
        for sink in self.sinks:
            try:
                sink.handle_event(event, self.labels)
            except Exception:  # telemetry must never break the call it observes
                self.sink_errors += 1
