"""The probe service: synthetic probes, their store, metrics and the contract-health dashboard.

- :class:`Scheduler`: when the next cycle is due (grid + jitter, clock injected).
- :class:`Prober`: one cycle of probes (``run_cycle(now)``), the resilience path (one retry,
  one fallback), cost control, drift detection against the accepted baseline.
- :class:`ProbeStore`: SQLite history (WAL, committed per probe), portable to PostgreSQL.
- :func:`create_probe_app`: ``/metrics``, ``/healthz``, ``/api/summary`` and the dashboard.
- :class:`ProbeMetrics`: the probe series on an injected Prometheus registry.

Example::

    with open_target(simulate=True) as target, ProbeStore.open(DEFAULT_DB_PATH) as store:
        registry = CollectorRegistry()
        metrics = ProbeMetrics(registry, contract=target.contract)
        prober = Prober(target=target, store=store, metrics=metrics, clock=time.time)
        try:
            result = prober.run_cycle()
        finally:
            prober.close()
"""

from __future__ import annotations

from .app import create_probe_app
from .cost import CostEstimate, CostStatus, cost_paused, probe_cost, utc_day
from .metrics import ProbeMetrics, review_due_on
from .prober import Prober
from .probes import ProbeRequest, build_request, judge, kinds_for
from .records import PROBE_KINDS, PROMPT_SIZES, DriftEvent, ProbeKind, ProbeRun, ValidationRun
from .runner import (
    CycleResult,
    ProbeOutcome,
    ProberOptions,
    fallback_target,
    validation_run,
)
from .schedule import Clock, Scheduler
from .service import AppServer, run_loop, stop_on_signals
from .store import (
    DEFAULT_DB_PATH,
    SCHEMA_VERSION,
    ProbeState,
    ProbeStore,
    PruneResult,
    StoreHealth,
)
from .summary import SUMMARY_KEYS, Summary, build_summary

__all__ = [
    "DEFAULT_DB_PATH",
    "PROBE_KINDS",
    "PROMPT_SIZES",
    "SCHEMA_VERSION",
    "SUMMARY_KEYS",
    "AppServer",
    "Clock",
    "CostEstimate",
    "CostStatus",
    "CycleResult",
    "DriftEvent",
    "ProbeKind",
    "ProbeMetrics",
    "ProbeOutcome",
    "ProbeRequest",
    "ProbeRun",
    "ProbeState",
    "ProbeStore",
    "Prober",
    "ProberOptions",
    "PruneResult",
    "Scheduler",
    "StoreHealth",
    "Summary",
    "ValidationRun",
    "build_request",
    "build_summary",
    "cost_paused",
    "create_probe_app",
    "fallback_target",
    "judge",
    "kinds_for",
    "probe_cost",
    "review_due_on",
    "run_loop",
    "stop_on_signals",
    "utc_day",
    "validation_run",
]
