"""The rows the probe store keeps: one per probe call, validation run, drift event.

Rows hold facts, never text from either side of the conversation: no prompt, no completion,
no secret. Each row's ``target`` is the :class:`~chatcontract.identity.TargetIdentity` key of
the endpoint it came from (None: written before targets were recorded). A probe run is built
from the call's ``Exchange`` with :meth:`ProbeRun.from_exchange`.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass, field
from typing import Literal

from chatcontract.drift import response_shape
from chatcontract.exchange import Exchange
from chatcontract.failures import Failure

__all__ = [
    "PROBE_KINDS",
    "PROMPT_SIZES",
    "DriftEvent",
    "ProbeKind",
    "ProbeRun",
    "ValidationRun",
    "shape_digest",
]

ProbeKind = Literal[
    "non_streaming", "streaming", "usage_capture", "timeout_boundary", "invalid_request"
]

#: Every probe kind, in the order a cycle runs them.
PROBE_KINDS: tuple[ProbeKind, ...] = (
    "non_streaming",
    "streaming",
    "usage_capture",
    "timeout_boundary",
    "invalid_request",
)

#: Prompt size labels for latency.
PROMPT_SIZES: tuple[str, ...] = ("short", "large")


def shape_digest(paths: tuple[str, ...]) -> str | None:
    """16 hex digits of a shape (the algorithm of ``wire.shape_fingerprint``); None if empty."""
    if not paths:
        return None
    return hashlib.sha256("\n".join(paths).encode()).hexdigest()[:16]


def _new_id() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeRun:
    """One probe call as stored: what was asked (shape only), what came back, what it cost.

    ``ok`` is the probe's verdict; ``kind``/``category``/``code`` are the verdict's failure
    when it failed, or the observed classification when a failure was expected
    (``invalid_request``).
    """

    run_id: str
    execution_id: str
    started_at: float
    probe: str
    route: str
    attempt: int
    ok: bool
    kind: str | None = None
    category: str | None = None
    code: str | None = None
    status: int | None = None
    retry_decision: str | None = None
    total_ms: float | None = None
    ttfb_ms: float | None = None
    ttft_ms: float | None = None
    budget_ms: float | None = None
    prompt_size: str | None = None
    requested_model: str | None = None
    response_model: str | None = None
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    usage_present: bool = False
    usage_expected: bool = False
    cost_usd: float = 0.0
    cost_estimated: bool = False
    schema_valid: bool | None = None
    stream: bool = False
    stream_verdict: str | None = None
    fingerprint: str | None = None
    shape_paths: tuple[str, ...] = ()
    request_id: str | None = None
    target: str | None = None

    @property
    def hour_bucket(self) -> int:
        """Whole hours since the epoch: the timeline's group."""
        return int(self.started_at // 3600)

    @classmethod
    def from_exchange(
        cls,
        exchange: Exchange,
        *,
        probe: str,
        started_at: float,
        ok: bool,
        failure: Failure | None,
        execution_id: str,
        prompt_size: str | None = None,
        usage_expected: bool = False,
        cost_usd: float = 0.0,
        cost_estimated: bool = False,
        budget_ms: float | None = None,
        target: str | None = None,
    ) -> ProbeRun:
        """A row from an Exchange and the probe's verdict (``failure`` is the verdict's)."""
        response = exchange.response
        classified = failure if failure is not None else exchange.failure
        usage = None if response is None else response.usage
        status = None if response is None else response.status
        two_xx = status is not None and 200 <= status < 300
        in_band = two_xx and exchange.failure is not None and exchange.failure.kind == "api_error"
        schema_valid: bool | None = None
        if two_xx:
            schema_valid = not in_band and not (
                exchange.failure is not None and exchange.failure.kind == "parser"
            )
        paths = response_shape(exchange)
        return cls(
            run_id=_new_id(),
            execution_id=execution_id,
            started_at=started_at,
            probe=probe,
            route=exchange.route,
            attempt=exchange.attempt,
            ok=ok,
            kind=None if classified is None else classified.kind,
            category=None if classified is None else classified.category,
            code=None if classified is None else classified.code,
            status=status if status is not None else (None if failure is None else failure.status),
            retry_decision=None if classified is None else classified.retry,
            total_ms=exchange.timings.total_ms,
            ttfb_ms=exchange.timings.ttfb_ms,
            ttft_ms=exchange.timings.ttft_ms,
            budget_ms=budget_ms,
            prompt_size=prompt_size,
            requested_model=exchange.request.model,
            response_model=None if response is None else response.model,
            finish_reason=None if response is None else response.finish_reason,
            prompt_tokens=None if usage is None else usage.prompt_tokens,
            completion_tokens=None if usage is None else usage.completion_tokens,
            total_tokens=None if usage is None else usage.total_tokens,
            usage_present=usage is not None,
            usage_expected=usage_expected and two_xx and not in_band,
            cost_usd=cost_usd,
            cost_estimated=cost_estimated,
            schema_valid=schema_valid,
            stream=exchange.request.stream,
            stream_verdict=None if response is None else response.stream_verdict,
            fingerprint=shape_digest(paths),
            shape_paths=paths,
            request_id=exchange.request_id,
            target=target,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ValidationRun:
    """A ``chatcontract validate`` run as stored (the report JSON kept whole)."""

    run_id: str
    at: float
    verdict: str
    passed: int
    failed: int
    warned: int
    skipped: int
    report_json: str
    target: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DriftEvent:
    """A difference from the accepted baseline, stored once per ``key``."""

    at: float
    kind: str
    detail: str
    key: str
    probe: str | None = None
    target: str | None = None
    event_id: str = field(default_factory=_new_id)
