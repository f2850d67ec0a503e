"""What telemetry receives: every ``Exchange``, plus the client's decisions as small events.

A sink implements ``TelemetrySink``; ``Telemetry`` fans out to several. Labels shared by every
series (``provider``, ``endpoint``) come from the contract via ``CallLabels``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from chatcontract._log import get_logger
from chatcontract.exchange import Exchange

__all__ = [
    "BreakerChanged",
    "BudgetRefusal",
    "CallLabels",
    "ClientEvent",
    "DeadlineExhausted",
    "FallbackActivated",
    "RetryDecided",
    "RetrySucceeded",
    "Telemetry",
    "TelemetrySink",
    "sink_name",
]

logger = get_logger("chatcontract.telemetry")


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


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakerChanged:
    """A route's circuit breaker changed state (``closed``, ``open``, ``half_open``)."""

    route: str
    model: str
    before: Literal["closed", "open", "half_open"]
    after: Literal["closed", "open", "half_open"]
    failures: int  # counted failures in a row when it changed
    reason: str


ClientEvent = (
    RetryDecided
    | RetrySucceeded
    | FallbackActivated
    | BudgetRefusal
    | DeadlineExhausted
    | BreakerChanged
)


@runtime_checkable
class TelemetrySink(Protocol):
    """A destination for telemetry: Prometheus, OpenTelemetry, a JSON event log, a test list."""

    def handle_exchange(self, exchange: Exchange, labels: CallLabels) -> None: ...

    def handle_event(self, event: ClientEvent, labels: CallLabels) -> None: ...


class Telemetry:
    """Fans out to sinks; one sink failing never breaks a call.

    ``retry_successes``: see :meth:`exchange`.

    A sink that raises is skipped for that Exchange or event: the first error of each sink is
    logged (warning, on the ``chatcontract.telemetry`` logger: the exception type only, as its
    message could quote provider text), every error is counted in ``sink_errors`` and handed to
    the sinks that count sink errors (``PrometheusSink``: ``llm_telemetry_sink_errors_total``).
    """

    def __init__(
        self,
        sinks: list[TelemetrySink] | tuple[TelemetrySink, ...],
        labels: CallLabels,
        *,
        retry_successes: bool = False,
    ):
        self.sinks = tuple(sinks)
        for index, sink in enumerate(self.sinks):
            if not (
                callable(getattr(sink, "handle_exchange", None))
                and callable(getattr(sink, "handle_event", None))
            ):
                raise TypeError(
                    f"telemetry sink {index} ({type(sink).__name__}) has no handle_exchange() "
                    "and handle_event(): pass sinks such as PrometheusSink(), "
                    "OpenTelemetrySink() or JsonEventLog()"
                )
        self.labels = labels
        self.sink_errors = 0
        self._failed: set[int] = set()  # sinks whose first error was logged (by position)
        self._lock = threading.Lock()
        self._retry_successes = retry_successes

    def exchange(self, exchange: Exchange) -> None:
        """Hand one Exchange to every sink (usable directly as a transport sink).

        With ``retry_successes`` (for callers whose retries no policy of ours decides, as the
        openai SDK's), a successful Exchange of a later attempt is then also told as a
        ``RetrySucceeded`` event."""
        labels = self.labels
        for index, sink in enumerate(self.sinks):
            try:
                sink.handle_exchange(exchange, labels)
            except Exception as exc:  # telemetry must never break the call it observes
                self._sink_failed(index, sink, exc)
        if self._retry_successes and exchange.ok and exchange.attempt > 1:
            self.event(
                RetrySucceeded(
                    route=exchange.route,
                    model=exchange.request.model or "unknown",
                    attempts=exchange.attempt,
                )
            )

    def event(self, event: ClientEvent) -> None:
        """Hand one client decision to every sink."""
        for index, sink in enumerate(self.sinks):
            try:
                sink.handle_event(event, self.labels)
            except Exception as exc:  # telemetry must never break the call it observes
                self._sink_failed(index, sink, exc)

    def _sink_failed(self, index: int, sink: TelemetrySink, exc: Exception) -> None:
        name = sink_name(sink)
        with self._lock:
            self.sink_errors += 1
            first = index not in self._failed
            self._failed.add(index)
        if first:
            logger.warning(
                "chatcontract: telemetry sink %s raised %s; it is skipped for this call and "
                "further errors are only counted",
                name,
                type(exc).__name__,
            )
        for other in self.sinks:
            count = getattr(other, "count_sink_error", None)
            if count is None:
                continue
            try:
                count(name, self.labels)
            except Exception:  # noqa: S112 - a broken counter must not break the call either
                continue


def sink_name(sink: object) -> str:
    """A bounded label for a sink: its class name (a plain function: its name)."""
    callback = getattr(sink, "_callback", None)  # instrument()'s adapter for plain callables
    target = callback if callback is not None else sink
    name = getattr(target, "__qualname__", None) or type(target).__qualname__
    return str(name)[:64]
