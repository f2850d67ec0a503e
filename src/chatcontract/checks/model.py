"""Check results and the validation report, as frozen data with a stable JSON form."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from chatcontract.failures import Failure

__all__ = ["REPORT_KEYS", "CheckResult", "CheckStatus", "Report", "TargetInfo"]

CheckStatus = Literal["pass", "fail", "warn", "skip"]

#: Top-level keys of the JSON report, in order.
REPORT_KEYS = (
    "chatcontract_version",
    "contract",
    "target",
    "started_at",
    "duration_ms",
    "verdict",
    "summary",
    "checks",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckResult:
    """One check's outcome: what it expected, what it observed, and the failure if any.

    ``evidence`` holds redacted facts (status codes, request ids, timings, fingerprints),
    never a prompt, a completion or a secret. ``notes`` are what the check saw on the way that
    is not its clause (usage over ``max_tokens``, no request id, a 429 honoured): they never
    change its status; the check that owns that clause counts them.
    """

    id: str
    title: str
    status: CheckStatus
    required: bool
    duration_ms: float
    expected: str
    observed: str
    failure: Failure | None = None
    evidence: Mapping[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "status": self.status,
            "required": self.required,
            "duration_ms": round(self.duration_ms, 1),
            "expected": self.expected,
            "observed": self.observed,
            "failure": None if self.failure is None else self.failure.to_dict(),
            "evidence": dict(self.evidence),
            "notes": list(self.notes),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class TargetInfo:
    """What the suite ran against."""

    base_url: str
    simulated: bool
    model: str
    scenario: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    """A validation run: the contract, the target, every check, the verdict."""

    version: str
    contract_name: str
    provider: str
    contract_path: str | None
    reviewed_on: str | None
    owner: str
    target: TargetInfo
    started_at: str
    duration_ms: float
    checks: tuple[CheckResult, ...]
    notes: tuple[str, ...] = ()

    @property
    def verdict(self) -> Literal["pass", "fail"]:
        """``fail`` when a required check failed; warnings and skips do not fail a run."""
        failed = any(c.status == "fail" and c.required for c in self.checks)
        return "fail" if failed else "pass"

    @property
    def summary(self) -> dict[str, int]:
        counts = {"passed": 0, "failed": 0, "warned": 0, "skipped": 0}
        names = {"pass": "passed", "fail": "failed", "warn": "warned", "skip": "skipped"}
        for check in self.checks:
            counts[names[check.status]] += 1
        return counts

    @property
    def exit_code(self) -> int:
        return 0 if self.verdict == "pass" else 1

    def to_dict(self) -> dict[str, Any]:
        """The JSON report: exactly ``REPORT_KEYS`` at the top."""
        return {
            "chatcontract_version": self.version,
            "contract": {
                "name": self.contract_name,
                "provider": self.provider,
                "path": self.contract_path,
                "reviewed_on": self.reviewed_on,
                "owner": self.owner,
            },
            "target": {
                "base_url": self.target.base_url,
                "simulated": self.target.simulated,
                "model": self.target.model,
            },
            "started_at": self.started_at,
            "duration_ms": round(self.duration_ms, 1),
            "verdict": self.verdict,
            "summary": self.summary,
            "checks": [check.to_dict() for check in self.checks],
        }
