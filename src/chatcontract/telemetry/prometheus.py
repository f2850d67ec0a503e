"""Prometheus metrics for every call: the seed runbooks' family names, bounded labels.

Every family is registered on the ``CollectorRegistry`` you pass (never the global one unless you
pass it). Every per-call family carries the same labels, ``provider``, ``endpoint``, ``model``
(the *requested* model, bounded: the contract's models plus the first 50 others, then
``other``), ``stream`` and ``route``, so success and failure series join on them. Error series
add ``kind``, ``category`` and ``status_code`` from the failure taxonomy. ``docs/metrics.md``
documents each family and what to alert on.

The families every call updates are kept as plain numbers under one lock and exposed by a
collector (``_prom_calls``): one lock per call instead of one per ``inc``/``observe``. In
prometheus_client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR`` set when the sink is built)
they are ordinary metric objects instead (``_prom_objects``), whose values prometheus_client
keeps in its mmap files. A scrape reads the same either way.

Example::

    registry = CollectorRegistry()
    sink = PrometheusSink(registry, contract=load_preset("cometapi"))
    telemetry = Telemetry([sink], CallLabels(provider="cometapi", endpoint="/chat/completions"))
    transport = InstrumentedTransport(contract=contract, sinks=[telemetry.exchange])
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge

from chatcontract.contract import Contract
from chatcontract.exchange import Exchange
from chatcontract.policy.breaker import BREAKER_STATES

from ._labels import BoundedValues, contract_models, contract_routes
from ._prom_calls import CallCollector
from ._prom_families import (
    BUDGET_BUCKETS_MS,
    CALL_FAMILIES,
    CALL_LABELS,
    EVENT_FAMILIES,
    LATENCY_BUCKETS_MS,
    PHASE_BUCKETS_MS,
    MetricFamily,
)
from ._prom_objects import CallMetricObjects
from .events import (
    BreakerChanged,
    BudgetRefusal,
    CallLabels,
    ClientEvent,
    DeadlineExhausted,
    FallbackActivated,
    RetryDecided,
    RetrySucceeded,
)

__all__ = [
    "BUDGET_BUCKETS_MS",
    "CALL_LABELS",
    "LATENCY_BUCKETS_MS",
    "PHASE_BUCKETS_MS",
    "MetricFamily",
    "PrometheusSink",
    "multiprocess_mode",
]

_MAX_MODELS = 50
_MAX_ROUTES = 20
_MAX_SMALL = 30  # reasons, timeout codes: small sets from our own tables, capped anyway


def multiprocess_mode() -> bool:
    """Whether prometheus_client's multiprocess mode is on (the variables it looks for)."""
    return "PROMETHEUS_MULTIPROC_DIR" in os.environ or "prometheus_multiproc_dir" in os.environ


class PrometheusSink:
    """A ``TelemetrySink`` that meters every Exchange and client event in Prometheus.

    Args:
        registry: where the families are registered (inject it; one sink per registry).
        contract: names the models and routes always kept as label values.
        max_models: how many further distinct requested models get their own label value
            before the rest are counted as ``other``.
        metric_objects: keep the per-call families in prometheus_client metric objects rather
            than the sink's own collector. Default: only in prometheus_client's multiprocess
            mode, whose values live in its mmap files that only its metric objects write.

    Read values back with ``registry.get_sample_value("llm_request_total", {...})``.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        contract: Contract | None = None,
        max_models: int = _MAX_MODELS,
        metric_objects: bool | None = None,
    ) -> None:
        self._registry = registry
        self._models = BoundedValues(known=contract_models(contract), limit=max_models)
        self._routes = BoundedValues(known=contract_routes(contract), limit=_MAX_ROUTES)
        self._small = BoundedValues(limit=_MAX_SMALL)
        if metric_objects is None:
            metric_objects = multiprocess_mode()
        bounded = {"models": self._models, "routes": self._routes, "small": self._small}
        self._calls: CallCollector | CallMetricObjects
        if metric_objects:
            self._calls = CallMetricObjects(registry, **bounded)
        else:
            self._calls = CallCollector(**bounded)
            registry.register(self._calls)
        self.metric_objects = metric_objects

        # Rare events (client decisions, sink errors): ordinary metric objects.
        events = {family.name: family for family in EVENT_FAMILIES}
        self.retry = self._counter(events["llm_retry"])
        self.retry_success = self._counter(events["llm_retry_success"])
        self.fallback_activation = self._counter(events["llm_fallback_activation"])
        self.budget_refusal = self._counter(events["llm_budget_refusal"])
        self.deadline_exhausted = self._counter(events["llm_deadline_exhausted"])
        breaker = events["llm_circuit_breaker_state"]
        self.breaker_state = Gauge(
            breaker.name, breaker.documentation, labelnames=breaker.labelnames, registry=registry
        )
        self.sink_errors = self._counter(events["llm_telemetry_sink_errors"])

    def _counter(self, family: MetricFamily) -> Counter:
        return Counter(family.name, family.documentation, labelnames=family.labelnames,
                       registry=self._registry)  # fmt: skip

    @property
    def families(self) -> tuple[MetricFamily, ...]:
        """Every family the sink registers (name, HELP, type, labels, buckets), in order."""
        return (*CALL_FAMILIES, *EVENT_FAMILIES)

    @property
    def family_names(self) -> tuple[str, ...]:
        """The exposed family names (counters with their ``_total``), in registration order."""
        return tuple(family.exposed for family in self.families)

    # -- TelemetrySink ----------------------------------------------------------------------

    def handle_exchange(self, exchange: Exchange, labels: CallLabels) -> None:
        """Meter one HTTP call."""
        self._calls.handle_exchange(exchange, labels)

    def handle_event(self, event: ClientEvent, labels: CallLabels) -> None:
        """Count one client decision."""
        provider, endpoint = labels.provider, labels.endpoint
        model = self._models(event.model)
        match event:
            case RetryDecided():
                self.retry.labels(
                    provider, endpoint, model, self._routes(event.route), event.category,
                    event.decision,
                ).inc()  # fmt: skip
            case RetrySucceeded():
                self.retry_success.labels(
                    provider, endpoint, model, self._routes(event.route)
                ).inc()
            case FallbackActivated():
                self.fallback_activation.labels(
                    provider, endpoint, model, self._routes(event.from_route),
                    self._routes(event.to_route), event.category,
                ).inc()  # fmt: skip
            case BudgetRefusal():
                self.budget_refusal.labels(
                    provider, endpoint, model, self._small(event.reason)
                ).inc()
            case DeadlineExhausted():
                self.deadline_exhausted.labels(
                    provider, endpoint, model, self._routes(event.route)
                ).inc()
            case BreakerChanged():
                self.breaker_state.labels(provider, endpoint, self._routes(event.route)).set(
                    BREAKER_STATES.index(event.after)
                )

    def count_sink_error(self, sink: str, labels: CallLabels) -> None:
        """Count one error of a telemetry sink (``Telemetry`` calls this for every sink)."""
        self.sink_errors.labels(labels.provider, labels.endpoint, self._small(sink)).inc()
