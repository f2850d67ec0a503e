"""Telemetry sinks: Prometheus (registry injected), OpenTelemetry GenAI (optional extra), a
JSON event log and the usage ledger, fed by the ``Telemetry`` hub with every Exchange and
client decision."""

from __future__ import annotations

from .events import (
    BudgetRefusal,
    CallLabels,
    ClientEvent,
    DeadlineExhausted,
    FallbackActivated,
    RetryDecided,
    RetrySucceeded,
    Telemetry,
    TelemetrySink,
)
from .events_log import DEFAULT_SHADOW_RATE, EVENT_LOGGER, JsonEventLog
from .ledger import LedgerMetrics, UsageLedger
from .otel import OpenTelemetrySink
from .prometheus import (
    BUDGET_BUCKETS_MS,
    CALL_LABELS,
    LATENCY_BUCKETS_MS,
    PHASE_BUCKETS_MS,
    PrometheusSink,
)

__all__ = [
    "BUDGET_BUCKETS_MS",
    "CALL_LABELS",
    "DEFAULT_SHADOW_RATE",
    "EVENT_LOGGER",
    "LATENCY_BUCKETS_MS",
    "PHASE_BUCKETS_MS",
    "BudgetRefusal",
    "CallLabels",
    "ClientEvent",
    "DeadlineExhausted",
    "FallbackActivated",
    "JsonEventLog",
    "LedgerMetrics",
    "OpenTelemetrySink",
    "PrometheusSink",
    "RetryDecided",
    "RetrySucceeded",
    "Telemetry",
    "TelemetrySink",
    "UsageLedger",
]
