"""The probe process's Prometheus series, registered on an injected registry.

Besides the ``llm_*`` call families (from ``chatcontract.telemetry.prometheus.PrometheusSink``
when it is installed, fed with every probe Exchange), the probe adds:

- ``probe_success{probe}``: 1 when the last run of that probe kind passed (of each prompt size
  it runs), else 0;
- ``probe_last_success_timestamp_seconds{probe}``;
- ``probe_paused{reason}``: 1 while probing is paused (``daily_cost_cap``);
- ``llm_contract_drift_total{kind}``: drift events (deduplicated) by kind;
- ``llm_contract_review_due_timestamp_seconds``: when the contract's review falls due
  (``reviewed_on`` + ``review_every_days``; 0 when the contract has no review date, so the
  alert fires);
- ``llm_validation_last_verdict`` (1 pass, 0 fail) and ``llm_validation_last_timestamp_seconds``;
- ``probe_store_writable``: 0 while the probe store refuses writes (disk full, read-only);
- ``probe_store_write_errors_total{reason}``: writes the store refused, by reason.

Everything read from the store is read for one target (:meth:`ProbeMetrics.restore`): a
simulated run never moves a real target's series. :meth:`ProbeMetrics.refresh` runs before
every scrape and after every cycle: it mirrors the store's write health and counts drift
events other processes stored for the target (``probe --once`` from cron), so they reach the
daemon's ``llm_contract_drift_total``.
"""

from __future__ import annotations

import datetime as dt
import importlib
import sqlite3
import threading

from prometheus_client import CollectorRegistry, Counter, Gauge

from chatcontract.contract import Contract
from chatcontract.drift import DRIFT_KINDS
from chatcontract.exchange import Exchange
from chatcontract.telemetry.events import CallLabels, ClientEvent, Telemetry, TelemetrySink

from .records import PROBE_KINDS, DriftEvent, ValidationRun
from .store import WRITE_ERROR_REASONS, ProbeStore

__all__ = ["PAUSE_REASONS", "REVIEW_PERIOD", "ProbeMetrics", "review_due_on"]

#: The default review interval; a contract's own ``review_every_days`` decides.
REVIEW_PERIOD = dt.timedelta(days=90)
PAUSE_REASONS: tuple[str, ...] = ("daily_cost_cap",)
# Drift events stored by another process are looked for this far behind the newest one seen
# (their clocks and commits may lag by seconds), at most this many per look.
_DRIFT_SLACK_S = 3600.0
_DRIFT_SYNC_LIMIT = 1000


def review_due_on(contract: Contract) -> dt.date | None:
    """The date the contract's review falls due, or None when it was never reviewed."""
    if contract.reviewed_on is None:
        return None
    return contract.reviewed_on + dt.timedelta(days=contract.review_every_days)


def _prometheus_sink(registry: CollectorRegistry, contract: Contract) -> TelemetrySink | None:
    """The telemetry layer's Prometheus sink, when that module is installed."""
    try:
        module = importlib.import_module("chatcontract.telemetry.prometheus")
    except ImportError:
        return None
    factory = getattr(module, "PrometheusSink", None)
    if factory is None:
        return None
    sink: TelemetrySink = factory(registry, contract=contract)
    return sink


class ProbeMetrics:
    """Every series of the probe process, on ``registry``.

    Example::

        metrics = ProbeMetrics(CollectorRegistry(), contract=contract)
        metrics.exchange(exchange)            # the llm_* families
        metrics.probe_result("streaming", ok=True, at=time.time())
    """

    def __init__(self, registry: CollectorRegistry, *, contract: Contract) -> None:
        self.registry = registry
        self.contract = contract
        self.success = Gauge(
            "probe_success",
            "1 when the last run of this probe kind (of each prompt size) passed.",
            ["provider", "probe"],
            registry=registry,
        )
        self.last_success = Gauge(
            "probe_last_success_timestamp_seconds",
            "When this probe kind last passed (epoch seconds).",
            ["provider", "probe"],
            registry=registry,
        )
        self.paused = Gauge(
            "probe_paused",
            "1 while probing is paused, by reason.",
            ["provider", "reason"],
            registry=registry,
        )
        self.drift = Counter(
            "llm_contract_drift",
            "Differences from the accepted baseline (each distinct difference counted once).",
            ["provider", "kind"],
            registry=registry,
        )
        # Every probe series carries the contract's provider, so alert rules scoped by
        # provider (as `chatcontract alerts` writes them) match.
        self.review_due = Gauge(
            "llm_contract_review_due_timestamp_seconds",
            "When the contract's review falls due "
            "(reviewed_on + review_every_days; 0: never reviewed).",
            ["provider"],
            registry=registry,
        )
        self.validation_verdict = Gauge(
            "llm_validation_last_verdict",
            "Last chatcontract validate verdict: 1 pass, 0 fail.",
            ["provider"],
            registry=registry,
        )
        self.validation_time = Gauge(
            "llm_validation_last_timestamp_seconds",
            "When the last chatcontract validate run started (epoch seconds).",
            ["provider"],
            registry=registry,
        )
        self.store_writable = Gauge(
            "probe_store_writable",
            "0 while the probe store refuses writes (disk full, read-only file); else 1.",
            ["provider"],
            registry=registry,
        )
        self.store_write_errors = Counter(
            "probe_store_write_errors",
            "Writes the probe store refused, by reason.",
            ["provider", "reason"],
            registry=registry,
        )
        provider = self._provider = contract.provider
        self.target: str | None = None
        self._lock = threading.Lock()
        self._drift_counted: set[str] = set()
        self._drift_newest: float | None = None
        self._store_errors_seen: dict[str, int] = {}
        # The last verdict of each prompt size, by probe kind (this process's runs).
        self._last_ok: dict[str, dict[str | None, bool]] = {}
        self.store_writable.labels(provider=provider).set(1)
        for reason in WRITE_ERROR_REASONS:
            self.store_write_errors.labels(provider=provider, reason=reason)
        for kind in DRIFT_KINDS:
            self.drift.labels(provider=provider, kind=kind)
        for reason in PAUSE_REASONS:
            self.paused.labels(provider=provider, reason=reason).set(0)
        due = review_due_on(contract)
        self.review_due.labels(provider=provider).set(
            0
            if due is None
            else dt.datetime(due.year, due.month, due.day, tzinfo=dt.UTC).timestamp()
        )
        sink = _prometheus_sink(registry, contract)
        self.telemetry = Telemetry(
            [sink] if sink is not None else [],
            CallLabels(provider=contract.provider, endpoint=contract.endpoint.path),
        )

    @property
    def has_call_metrics(self) -> bool:
        """Whether the llm_* call families are fed (the Prometheus sink is installed)."""
        return bool(self.telemetry.sinks)

    def exchange(self, exchange: Exchange) -> None:
        """Feed one probe call to the llm_* families."""
        self.telemetry.exchange(exchange)

    def event(self, event: ClientEvent) -> None:
        """Feed a retry / fallback decision to the llm_* families."""
        self.telemetry.event(event)

    def probe_result(
        self, probe: str, *, ok: bool, at: float, prompt_size: str | None = None
    ) -> None:
        """Set ``probe_success`` from this run and the last run of each other prompt size.

        ``non_streaming`` runs a large prompt every few cycles: were the gauge the last run
        alone, a large prompt failing every time would read 0 for one cycle in five (and a
        short one failing every time 1 for one in five), and ``LLMProbeFailing`` (``for:`` a
        few intervals) would never fire. It is 0 while the last run of any prompt size this
        process ran failed.
        """
        with self._lock:
            sizes = self._last_ok.setdefault(probe, {})
            sizes[prompt_size] = ok
            passing = all(sizes.values())
        self.success.labels(provider=self._provider, probe=probe).set(1 if passing else 0)
        if ok:
            self.last_success.labels(provider=self._provider, probe=probe).set(at)

    def set_paused(self, reason: str, paused: bool) -> None:
        self.paused.labels(provider=self._provider, reason=reason).set(1 if paused else 0)

    def drift_event(self, kind: str) -> None:
        self.drift.labels(provider=self._provider, kind=kind).inc()

    def drift_recorded(self, event: DriftEvent) -> None:
        """Count a drift event this process stored (never counted again by :meth:`refresh`)."""
        with self._lock:
            if event.event_id in self._drift_counted:
                return
            self._drift_counted.add(event.event_id)
            self._drift_newest = max(self._drift_newest or event.at, event.at)
        self.drift_event(event.kind)

    def validation(self, run: ValidationRun) -> None:
        self.validation_verdict.labels(provider=self._provider).set(
            1 if run.verdict == "pass" else 0
        )
        self.validation_time.labels(provider=self._provider).set(run.at)

    def restore(self, store: ProbeStore, *, target: str | None = None) -> None:
        """Set the gauges from ``target``'s history in the store (after a restart).

        Drift events already stored are taken as counted: a restart does not count them again.
        """
        self.target = target
        for probe, state in store.probe_states(PROBE_KINDS, target=target).items():
            if state.last_ok is not None:
                self.success.labels(provider=self._provider, probe=probe).set(
                    1 if state.last_ok else 0
                )
            if state.last_success_at is not None:
                self.last_success.labels(provider=self._provider, probe=probe).set(
                    state.last_success_at
                )
        last = store.last_validation(target=target)
        if last is not None:
            self.validation(last)
        events = store.drift_events(target=target, limit=_DRIFT_SYNC_LIMIT)
        with self._lock:
            self._drift_counted = {event.event_id for event in events}
            self._drift_newest = max((event.at for event in events), default=None)

    def refresh(self, store: ProbeStore) -> None:
        """Mirror the store's write health, and count drift stored by other processes."""
        health = store.health()
        self.store_writable.labels(provider=self._provider).set(1 if health.writable else 0)
        with self._lock:
            for reason, count in health.failed_writes.items():
                delta = count - self._store_errors_seen.get(reason, 0)
                if delta > 0:
                    self.store_write_errors.labels(provider=self._provider, reason=reason).inc(
                        delta
                    )
                self._store_errors_seen[reason] = count
        self._sync_drift(store)

    def _sync_drift(self, store: ProbeStore) -> None:
        with self._lock:
            since = None if self._drift_newest is None else self._drift_newest - _DRIFT_SLACK_S
            try:
                events = store.drift_events(
                    target=self.target, since=since, limit=_DRIFT_SYNC_LIMIT
                )
            except sqlite3.Error:
                return  # the store does not answer: /healthz says so; try on the next scrape
            new = [event for event in events if event.event_id not in self._drift_counted]
            # Events older than the look-back are never read again, so only these are kept.
            self._drift_counted = {event.event_id for event in events}
            if events:
                newest = max(event.at for event in events)
                self._drift_newest = max(self._drift_newest or newest, newest)
        for event in new:
            self.drift_event(event.kind)
