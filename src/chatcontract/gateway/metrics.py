"""The gateway's own Prometheus families, and the merge of several workers' scrapes into one.

``GatewayMetrics`` adds to a registry (next to ``PrometheusSink``'s ``llm_*`` families) gauges
read from a ``GatewayState`` at scrape time, so the chat path pays nothing for them.
``SupervisorMetrics`` is the ``--workers`` parent's (workers alive, restarts). ``merge`` adds
up what every worker exposes: counters and histograms are summed, the in-flight and queue
gauges too, any other gauge takes the largest value (a breaker open in one worker reads open;
the shared budget and kill switch read the same everywhere).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector

from .state import GatewayState

__all__ = ["SUMMED_GAUGES", "GatewayMetrics", "SupervisorMetrics", "exposition", "merge"]

#: Gauges that add up across workers (any other gauge takes the largest worker value).
SUMMED_GAUGES = frozenset({"llm_gateway_in_flight_requests", "llm_gateway_queued_requests"})


class GatewayMetrics:
    """Gauges of one gateway process, read from ``state`` on each scrape.

    Args:
        registry: where they are registered (the one ``PrometheusSink`` uses).
        state: the process's gateway state.
    """

    def __init__(self, registry: CollectorRegistry, state: GatewayState) -> None:
        provider = state.contract.provider
        labels = ("provider",)
        self.in_flight = Gauge(
            "llm_gateway_in_flight_requests",
            "Chat requests the gateway is serving now (summed over workers).",
            labels,
            registry=registry,
        )
        self.queued = Gauge(
            "llm_gateway_queued_requests",
            "Chat requests waiting before their next attempt (backoff or retry-after).",
            labels,
            registry=registry,
        )
        self.kill_switch = Gauge(
            "llm_gateway_kill_switch",
            "1 while the kill switch is on (admin port or the contract's variable).",
            labels,
            registry=registry,
        )
        self.ready = Gauge(
            "llm_gateway_ready",
            "1 while at least one route is not held open by its breaker (/readyz).",
            labels,
            registry=registry,
        )
        self.budget_spent = Gauge(
            "llm_gateway_budget_spent_usd",
            "USD the budget guard counted in the last 24 hours (shared by workers).",
            labels,
            registry=registry,
        )
        self.in_flight.labels(provider).set_function(lambda: state.in_flight)
        self.queued.labels(provider).set_function(lambda: state.queued)
        self.kill_switch.labels(provider).set_function(lambda: float(state.kill_switch_on()))
        self.ready.labels(provider).set_function(lambda: float(state.ready()))
        self.budget_spent.labels(provider).set_function(state.guard.spent_today)


class SupervisorMetrics:
    """The ``--workers`` parent's families."""

    def __init__(self, registry: CollectorRegistry, provider: str) -> None:
        self.workers = Gauge(
            "llm_gateway_workers",
            "Worker processes alive (--workers).",
            ("provider",),
            registry=registry,
        )
        self.restarts = Counter(
            "llm_gateway_worker_restarts",
            "Worker processes that ended unexpectedly and were started again.",
            ("provider",),
            registry=registry,
        )
        self.alive = self.workers.labels(provider)
        self.restarted = self.restarts.labels(provider)


def merge(expositions: Iterable[str]) -> list[Metric]:
    """The families of several text expositions, added up (see the module docstring)."""
    families: dict[str, Metric] = {}
    values: dict[str, dict[tuple[str, tuple[tuple[str, str], ...]], float]] = {}
    for text in expositions:
        for family in text_string_to_metric_families(text):
            if family.name not in families:
                families[family.name] = Metric(family.name, family.documentation, family.type)
                values[family.name] = {}
            found = values[family.name]
            summed = family.type != "gauge" or family.name in SUMMED_GAUGES
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                if key not in found:
                    found[key] = sample.value
                elif sample.name.endswith("_created"):
                    found[key] = min(found[key], sample.value)
                elif summed:
                    found[key] += sample.value
                else:
                    found[key] = max(found[key], sample.value)
    for name, metric in families.items():
        for (sample_name, labels), value in values[name].items():
            metric.add_sample(sample_name, dict(labels), value)
    return list(families.values())


def exposition(families: Sequence[Metric]) -> bytes:
    """``families`` in the Prometheus text format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(families))
    return generate_latest(registry)


class _Families(Collector):
    def __init__(self, families: Sequence[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        yield from self._families
