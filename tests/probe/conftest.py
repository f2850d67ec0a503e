"""Fixtures for the probe tests: a fake clock, a store in tmp_path, probers on the simulator."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from probe_helpers import FakeClock, ProberFactory
from prometheus_client import CollectorRegistry

from chatcontract.probe import ProbeMetrics, Prober, ProberOptions, ProbeStore
from chatcontract.target import Target


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ProbeStore]:
    with ProbeStore.open(tmp_path / "probe.db") as opened:
        yield opened


@pytest.fixture
def make_prober(store: ProbeStore, clock: FakeClock) -> Iterator[ProberFactory]:
    """``make_prober(target, **options)``: a Prober on the test store; closed after the test."""
    made: list[Prober] = []

    def make(
        target: Target, *, registry: CollectorRegistry | None = None, **options: Any
    ) -> Prober:
        options.setdefault("last_validate_path", None)
        metrics = ProbeMetrics(registry or CollectorRegistry(), contract=target.contract)
        baseline = options.pop("baseline", None)
        prober = Prober(
            target=target,
            store=store,
            metrics=metrics,
            clock=clock,
            options=ProberOptions(**options),
            baseline=baseline,
        )
        made.append(prober)
        return prober

    yield make
    for prober in made:
        prober.close()
