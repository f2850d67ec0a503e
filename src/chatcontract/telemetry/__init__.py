"""Telemetry sinks: Prometheus (registry injected), OpenTelemetry GenAI (optional extra), a
JSON event log and the usage ledger, fed by the ``Telemetry`` hub with every Exchange and
client decision."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

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
from .otel import OpenTelemetrySink

if TYPE_CHECKING:
    from .ledger import LedgerMetrics, UsageLedger
    from .prometheus import (
        BUDGET_BUCKETS_MS,
        CALL_LABELS,
        LATENCY_BUCKETS_MS,
        PHASE_BUCKETS_MS,
        PrometheusSink,
    )

# prometheus_client is imported when a sink that needs it is first asked for (PEP 562), so a
# ChatClient without a registry never loads it.
_LAZY = {
    **dict.fromkeys(
        ("BUDGET_BUCKETS_MS", "CALL_LABELS", "LATENCY_BUCKETS_MS", "PHASE_BUCKETS_MS"),
        ".prometheus",
    ),
    "PrometheusSink": ".prometheus",
    "LedgerMetrics": ".ledger",
    "UsageLedger": ".ledger",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


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
