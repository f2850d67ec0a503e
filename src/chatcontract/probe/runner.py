"""What a probe cycle takes and gives: options, per-probe outcomes, the cycle's result, the
target of a fallback route, and a validate report as a stored validation run.

The cycle itself is :class:`chatcontract.probe.prober.Prober`.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from chatcontract.contract import Auth, FallbackRoute
from chatcontract.drift import LAST_VALIDATE_PATH
from chatcontract.errors import ConfigError
from chatcontract.failures import Failure
from chatcontract.target import Target

from .cost import CostStatus
from .records import DriftEvent, ProbeKind, ProbeRun, ValidationRun

__all__ = [
    "CycleResult",
    "ProbeOutcome",
    "ProberOptions",
    "fallback_target",
    "validation_run",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class ProberOptions:
    """How the prober runs.

    Args:
        kinds: the probe kinds to run (default: every kind the contract allows).
        large_every: run an extra large-prompt ``non_streaming`` probe every N cycles
            (on the first cycle, then every N-th; 0 never).
        retention_days: history older than this is pruned.
        prune_every_s: how often the prune runs.
        baseline_path: the accepted baseline to compare with (re-read when it changes).
        last_validate_path: ``chatcontract validate``'s last report, ingested when it changes.
    """

    kinds: tuple[ProbeKind, ...] | None = None
    large_every: int = 5
    retention_days: float = 30.0
    prune_every_s: float = 3600.0
    baseline_path: str | None = None
    last_validate_path: str | None = LAST_VALIDATE_PATH

    def __post_init__(self) -> None:
        if self.large_every < 0:
            raise ConfigError("large_every must be >= 0 (0: never)")
        if not self.retention_days > 0:
            raise ConfigError("--retention-days must be > 0")
        if not self.prune_every_s > 0:
            raise ConfigError("prune_every_s must be > 0")


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeOutcome:
    """One probe kind's result in a cycle, with its resilience path."""

    probe: ProbeKind
    prompt_size: str | None
    ok: bool
    failure: Failure | None
    runs: tuple[ProbeRun, ...]
    retried: bool = False
    retry_ok: bool | None = None
    fallback_route: str | None = None
    fallback_ok: bool | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CycleResult:
    """What one cycle did."""

    at: float
    index: int
    outcomes: tuple[ProbeOutcome, ...]
    skipped: tuple[ProbeKind, ...]
    paused: bool
    drift: tuple[DriftEvent, ...]
    cost: CostStatus

    @property
    def ok(self) -> bool:
        """Every planned probe ran and passed."""
        return bool(self.outcomes) and not self.skipped and all(o.ok for o in self.outcomes)


def fallback_target(
    target: Target, route: FallbackRoute, environ: Mapping[str, str] | None = None
) -> Target | None:
    """The target of a fallback route, or None when it cannot be probed safely.

    Against the simulator every route stays on the simulator (answering ``ok``). Otherwise the
    route's ``auth_env`` gives its key; without one, the primary key is reused only on the
    primary's host, never sent to another host.
    """
    contract = target.contract
    model = route.model or target.model
    if target.simulated:
        return dataclasses.replace(target, model=model, scenario="ok")
    endpoint = contract.endpoint
    if route.base_url is not None:
        endpoint = dataclasses.replace(endpoint, base_url=route.base_url)
    secret, source = target.secret, target.secret_source
    if route.auth_env:
        auth = Auth(header=contract.auth.header, scheme=contract.auth.scheme, env=route.auth_env)
        found = auth.resolve(os.environ if environ is None else environ)
        if found is None:
            return None
        secret, source = found[1], f"${found[0]}"
    elif urlsplit(endpoint.base_url).hostname != urlsplit(contract.endpoint.base_url).hostname:
        return None
    return dataclasses.replace(
        target,
        contract=dataclasses.replace(contract, endpoint=endpoint),
        secret=secret,
        secret_source=source,
        model=model,
        scenario=None,
    )


def validation_run(
    report: Mapping[str, Any], *, fallback_at: float, target: str | None = None
) -> ValidationRun:
    """A stored validation run from a validate JSON report (identified by its content)."""
    text = json.dumps(report, sort_keys=True, default=str)
    summary = report.get("summary")
    counts: Mapping[str, Any] = summary if isinstance(summary, Mapping) else {}
    at = fallback_at
    started = report.get("started_at")
    if isinstance(started, str):
        try:
            at = dt.datetime.fromisoformat(started).timestamp()
        except ValueError:
            at = fallback_at
    verdict = report.get("verdict")

    def count(name: str) -> int:
        value = counts.get(name, 0)
        return value if isinstance(value, int) and not isinstance(value, bool) else 0

    return ValidationRun(
        run_id=hashlib.sha256(text.encode()).hexdigest()[:32],
        at=at,
        verdict=verdict if verdict in ("pass", "fail") else "fail",
        passed=count("passed"),
        failed=count("failed"),
        warned=count("warned"),
        skipped=count("skipped"),
        report_json=text,
        target=target,
    )
