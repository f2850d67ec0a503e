"""docs/metrics.md lists every family the package can register, with the code's types and labels.

Three registries are built as the package builds them: the telemetry sink's (``PrometheusSink``,
what an application exposes), the probe service's (``create_probe_app``: ``ProbeMetrics``
plus the sink), the usage ledger's (``LedgerMetrics``) and the gateway's (``GatewayMetrics``,
``SupervisorMetrics``). Family names are collected from the registries; types and labels from the
metric objects (the sink's from its ``families``). Both directions are checked: nothing undocumented, nothing documented that no
code registers.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from chatcontract.contract import load_preset
from chatcontract.gateway import GatewayState
from chatcontract.gateway.metrics import GatewayMetrics, SupervisorMetrics
from chatcontract.probe import ProbeMetrics, ProbeStore, create_probe_app
from chatcontract.telemetry import LedgerMetrics, PrometheusSink

DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
_HEADING = re.compile(r"^### `([a-z_]+)`\s*$")
_ROW = re.compile(r"^\| (counter|histogram|gauge) \| [^|]+ \| ([^|]+) \|\s*$")


def _documented() -> dict[str, tuple[str, tuple[str, ...]] | None]:
    """{family: (type, labels)} from the headings and the table row under each."""
    families: dict[str, tuple[str, tuple[str, ...]] | None] = {}
    current = None
    for line in DOC.read_text(encoding="utf-8").splitlines():
        heading = _HEADING.match(line)
        if heading:
            current = heading.group(1)
            families[current] = None
            continue
        row = _ROW.match(line)
        if row and current and families[current] is None:
            labels = tuple(label.strip() for label in row.group(2).split(","))
            families[current] = (row.group(1), labels)
    return families


def _exposed(name: str, kind: str) -> str:
    return name + "_total" if kind == "counter" else name


def _collected(registry: CollectorRegistry) -> set[str]:
    """The family names a scrape of ``registry`` exposes (counters with ``_total``)."""
    return {_exposed(family.name, family.type) for family in registry.collect()}


def _declared(*owners: Any) -> dict[str, tuple[str, tuple[str, ...]]]:
    """{exposed family name: (type, labels)} of the metric objects the owners hold (a
    ``PrometheusSink`` lists its families: the per-call ones are not metric objects)."""
    families = {}
    for owner in owners:
        if isinstance(owner, PrometheusSink):
            for family in owner.families:
                families[family.exposed] = (family.type, family.labelnames)
            continue
        for name, metric in vars(owner).items():
            if name.startswith("_") or not hasattr(metric, "_labelnames"):
                continue
            kind = metric._type
            families[_exposed(metric._name, kind)] = (kind, tuple(metric._labelnames))
    return families


def _sink_registry() -> tuple[CollectorRegistry, PrometheusSink]:
    registry = CollectorRegistry()
    return registry, PrometheusSink(registry)


def _probe_registry() -> tuple[CollectorRegistry, ProbeMetrics]:
    """The registry of the probe service's app (an in-memory store: nothing is written)."""
    registry = CollectorRegistry()
    with ProbeStore.open(":memory:") as store:
        app = create_probe_app(
            store=store, registry=registry, clock=time.time, contract=load_preset("cometapi")
        )
    metrics: ProbeMetrics = app.state.metrics
    return registry, metrics


def _gateway_registry() -> tuple[CollectorRegistry, GatewayMetrics, SupervisorMetrics]:
    """The gateway's own families (its admin port serves them next to the sink's)."""
    registry = CollectorRegistry()
    state = GatewayState(load_preset("cometapi"), environ={"COMETAPI_KEY": "sk-unused"})
    return registry, GatewayMetrics(registry, state), SupervisorMetrics(registry, "cometapi")


def _registered() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Every family the package registers, with its type and labels."""
    sink_registry, sink = _sink_registry()
    registry, metrics = _probe_registry()
    ledger_registry = CollectorRegistry()
    ledger = LedgerMetrics(ledger_registry, provider="cometapi")
    gateway_registry, gateway, supervisor = _gateway_registry()
    declared = _declared(sink, metrics, ledger, gateway, supervisor, *metrics.telemetry.sinks)
    collected = (
        _collected(sink_registry)
        | _collected(registry)
        | _collected(ledger_registry)
        | _collected(gateway_registry)
    )
    if collected != set(declared):  # something registered aside from the objects held
        raise AssertionError(f"collected and declared families differ: {collected ^ set(declared)}")
    return declared


REGISTERED = _registered()


def test_the_probe_registry_holds_the_sink_families_and_its_own() -> None:
    sink_registry, _sink = _sink_registry()
    probe = _collected(_probe_registry()[0])
    assert _collected(sink_registry) < probe
    assert {"probe_success", "probe_store_writable", "llm_contract_drift_total"} <= probe


def test_every_registered_family_is_documented() -> None:
    assert set(REGISTERED) - set(_documented()) == set()


def test_every_documented_family_is_registered() -> None:
    assert set(_documented()) - set(REGISTERED) == set()


@pytest.mark.parametrize("family", sorted(REGISTERED), ids=str)
def test_documented_type_and_labels_match_the_code(family: str) -> None:
    assert _documented()[family] == REGISTERED[family]


def test_the_sink_lists_what_it_registers() -> None:
    registry, sink = _sink_registry()
    collected = {_exposed(family.name, family.type): family.type for family in registry.collect()}
    assert collected == {family.exposed: family.type for family in sink.families}
    assert sink.family_names == tuple(collected)  # in registration order
