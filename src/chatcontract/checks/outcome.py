"""What a check returns, and how checks describe an Exchange in a report (redacted)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chatcontract.exchange import Exchange
from chatcontract.failures import Failure

from .model import CheckStatus

__all__ = ["Outcome", "describe", "evidence_of"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What a check function returns.

    ``failure`` is the failure of the check's own clause (for a negative check: in the
    expected category, so its owner and first action are the clause's); ``notes`` are what
    the check saw that belongs to another clause.
    """

    status: CheckStatus
    expected: str
    observed: str
    failure: Failure | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


def evidence_of(exchange: Exchange) -> dict[str, Any]:
    """Redacted facts of one Exchange for a report."""
    response = exchange.response
    facts: dict[str, Any] = {
        "status": None if response is None else response.status,
        "request_id": exchange.request_id,
        "total_ms": round(exchange.timings.total_ms, 1),
    }
    if exchange.timings.ttfb_ms is not None:
        facts["ttfb_ms"] = round(exchange.timings.ttfb_ms, 1)
    if response is not None:
        if response.response_id:
            facts["response_id"] = response.response_id
        if response.model:
            facts["model"] = response.model
        if response.usage is not None:
            facts["usage"] = {
                "prompt_tokens": response.usage.prompt_tokens,
                "completion_tokens": response.usage.completion_tokens,
                "total_tokens": response.usage.total_tokens,
            }
        if response.shape_fingerprint:
            facts["shape_fingerprint"] = response.shape_fingerprint
    return facts


def describe(exchange: Exchange) -> str:
    """One line: the status and the classification. A failure raised after the head came (the
    body stalled, or the deadline cut it) carries no status of its own: the head's is shown,
    as "no HTTP response" would be untrue."""
    failure = exchange.failure
    status = exchange.response.status if exchange.response is not None else None
    if failure is None:
        return f"HTTP {status}, contract held"
    if failure.status is not None:
        status = failure.status
    where = f"HTTP {status}" if status is not None else "no HTTP response"
    return f"{where}: {failure.kind}/{failure.category}/{failure.code}: {failure.message}"
