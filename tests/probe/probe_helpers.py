"""Helpers shared by the probe tests: a fake clock, targets on the simulator, stored rows."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from chatcontract.contract import Contract, dump, load_preset
from chatcontract.probe import Prober, ProbeRun
from chatcontract.simulator import SimulatorServer
from chatcontract.target import Target

#: The stored identity of simulated runs of the preset's model (``make_run``'s default).
SIMULATED_KEY = "simulated model=gpt-4.1-nano"
#: The stored identity of the cometapi preset's real endpoint and model.
PRESET_KEY = "https://api.cometapi.com/v1 model=gpt-4.1-nano"

#: 2026-03-01 23:58:00 UTC: two minutes before a UTC midnight.
NEAR_MIDNIGHT = dt.datetime(2026, 3, 1, 23, 58, tzinfo=dt.UTC).timestamp()


class FakeClock:
    """Epoch seconds that only move when a test says so."""

    def __init__(self, now: float = NEAR_MIDNIGHT) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


def contract_for(server: SimulatorServer, **changes: Any) -> Contract:
    """The cometapi preset pointed at ``server``, with top-level fields changed."""
    preset = load_preset("cometapi")
    endpoint = dataclasses.replace(preset.endpoint, base_url=server.base_url)
    return dataclasses.replace(preset, endpoint=endpoint, **changes)


def target_for(
    server: SimulatorServer,
    *,
    contract: Contract | None = None,
    scenario: str | None = None,
    simulated: bool = True,
) -> Target:
    """A Target on ``server``; ``scenario`` travels as the per-request simulator header."""
    chosen = contract or contract_for(server)
    return Target(
        contract=chosen,
        contract_path=None,
        secret=server.api_key,
        secret_source="test key",
        model=chosen.model,
        simulated=simulated,
        scenario=scenario,
    )


ProberFactory = Callable[..., Prober]


# The probe process's own series carry the contract's provider (the alert rules filter on it).
_PROVIDER_LABELLED = (
    "probe_success",
    "probe_last_success_timestamp_seconds",
    "probe_paused",
    "llm_contract_drift_total",
    "llm_contract_review_due_timestamp_seconds",
    "llm_validation_last_verdict",
    "llm_validation_last_timestamp_seconds",
    "probe_store_writable",
    "probe_store_write_errors_total",
)


def sample_value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    if name in _PROVIDER_LABELLED:
        labels.setdefault("provider", "cometapi")
    return registry.get_sample_value(name, labels or None)


def make_run(
    at: float, *, probe: str = "non_streaming", ok: bool = True, **fields: Any
) -> ProbeRun:
    """A stored-run value with plausible defaults (a short, successful completion)."""
    values: dict[str, Any] = {
        "run_id": uuid.uuid4().hex,
        "execution_id": uuid.uuid4().hex,
        "started_at": at,
        "probe": probe,
        "route": "primary",
        "attempt": 1,
        "ok": ok,
        "status": 200,
        "total_ms": 12.5,
        "prompt_size": "short",
        "requested_model": "gpt-4.1-nano",
        "response_model": "gpt-4.1-nano-2025-04-14",
        "finish_reason": "stop",
        "usage_present": True,
        "usage_expected": True,
        "schema_valid": True,
        "shape_paths": ("$:object", "id:string"),
        "fingerprint": "00000000000000aa",
        "target": SIMULATED_KEY,
    }
    values.update(fields)
    return ProbeRun(**values)


def write_real_contract(path: Path, server: SimulatorServer, **changes: Any) -> Contract:
    """A contract file whose endpoint is ``server``: with its key set, commands see a *real*
    (not simulated) target, as they would a provider's endpoint."""
    contract = contract_for(server, **changes)
    path.write_text(dump(contract), encoding="utf-8")
    return contract


def real_key(server: SimulatorServer, model: str = "gpt-4.1-nano") -> str:
    """The stored identity of ``server`` probed as a real endpoint."""
    return f"{server.base_url.rstrip('/')} model={model}"
