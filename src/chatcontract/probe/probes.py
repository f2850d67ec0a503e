"""The probe kinds: what each one sends and what it must observe to pass.

Every probe goes through the validation suite's ``CheckContext``: the header
``X-Request-Source: synthetic-contract-probe``, the contract's minimal fixture (a short fixed
prompt, no user data) and the contract's probe token cap (``policy.probe.max_tokens``, 64 by
default so reasoning models are not cut before they answer).

==================  =====================================================================
``non_streaming``   the fixture; the contract must hold (``short``, or ``large`` with a
                    synthetic filler message every few cycles, for latency by prompt size)
``streaming``       the fixture streamed as the application streams (``include_usage`` as
                    the contract says); the stream must complete
``usage_capture``   streamed with ``stream_options.include_usage``; the usage chunk must
                    arrive with every usage field the contract names, consistent
``timeout_boundary``  the fixture with the contract's ``first_byte_ms`` as read timeout; it
                    must answer within that budget (ttfb is recorded against it)
``invalid_request``   a required field removed; it must fail as ``validation``, not retried
                    (staging contracts only: it is a deliberate bad request)
==================  =====================================================================
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx2
import orjson

from chatcontract.checks.clauses import clause_failure, is_usage_failure
from chatcontract.checks.context import CheckContext
from chatcontract.checks.measure import usage_problems
from chatcontract.contract import Contract
from chatcontract.exchange import Exchange
from chatcontract.failures import Failure

from .cost import estimate_prompt_tokens
from .records import PROBE_KINDS, ProbeKind

__all__ = ["LARGE_FILLER", "ProbeRequest", "build_request", "judge", "kinds_for"]

#: The large prompt: synthetic filler (about 7 KB), never user data.
LARGE_FILLER = (
    "This paragraph is synthetic filler sent by a chatcontract probe to measure latency by "
    "prompt size; it carries no user data and asks for nothing. "
) * 50


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeRequest:
    """One probe request: the body, its deadline, and what the verdict needs to know."""

    probe: ProbeKind
    body: dict[str, Any]
    max_tokens: int
    prompt_size: str | None = None
    timeout: httpx2.Timeout | None = None
    usage_expected: bool = False
    budget_ms: float | None = None
    removed_field: str | None = None
    prompt_tokens_estimate: int = field(default=1)


def kinds_for(contract: Contract, only: Sequence[ProbeKind] | None = None) -> tuple[ProbeKind, ...]:
    """The probe kinds a contract allows, in run order (``only`` narrows them).

    Streaming probes need ``streaming.used``; ``usage_capture`` also ``include_usage``;
    ``invalid_request`` only runs against a contract that says ``environment: staging``.
    """
    allowed: list[ProbeKind] = ["non_streaming"]
    if contract.streaming.used:
        allowed.append("streaming")
        if contract.streaming.include_usage:
            allowed.append("usage_capture")
    allowed.append("timeout_boundary")
    if contract.environment == "staging":
        allowed.append("invalid_request")
    chosen = [kind for kind in PROBE_KINDS if kind in allowed]
    if only is not None:
        chosen = [kind for kind in chosen if kind in only]
    return tuple(chosen)


def _capped_fixture(ctx: CheckContext, cap: int) -> dict[str, Any]:
    body = ctx.fixture()
    key = "max_completion_tokens" if "max_completion_tokens" in body else "max_tokens"
    body[key] = cap
    return body


def build_request(kind: ProbeKind, ctx: CheckContext, *, large: bool = False) -> ProbeRequest:
    """The request a probe kind sends through ``ctx`` (its target's model and fixture)."""
    contract = ctx.target.contract
    cap = contract.policy.probe.max_tokens
    body = _capped_fixture(ctx, cap)
    prompt_size: str | None = "short"
    timeout = None
    usage_expected = True
    budget_ms = None
    removed = None
    if kind == "non_streaming" and large:
        body["messages"].insert(1, {"role": "user", "content": LARGE_FILLER})
        prompt_size = "large"
    elif kind == "streaming":
        body["stream"] = True
        usage_expected = contract.streaming.include_usage
        if usage_expected:
            body["stream_options"] = {"include_usage": True}
    elif kind == "usage_capture":
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    elif kind == "timeout_boundary":
        timeouts = contract.policy.timeouts
        budget_ms = float(timeouts.first_byte_ms)
        timeout = httpx2.Timeout(
            timeouts.total_ms / 1000,
            connect=timeouts.connect_ms / 1000,
            read=timeouts.first_byte_ms / 1000,
        )
    elif kind == "invalid_request":
        removed = next((name for name in contract.request.required if name != "model"), "messages")
        body.pop(removed, None)
        prompt_size = None
        usage_expected = False
    return ProbeRequest(
        probe=kind,
        body=body,
        max_tokens=cap,
        prompt_size=prompt_size,
        timeout=timeout,
        usage_expected=usage_expected,
        budget_ms=budget_ms,
        removed_field=removed,
        prompt_tokens_estimate=estimate_prompt_tokens(len(orjson.dumps(body))),
    )


def judge(request: ProbeRequest, exchange: Exchange, contract: Contract) -> Failure | None:
    """The probe's verdict: ``None`` when it passed, else the failure it observed."""
    if request.probe == "invalid_request":
        return _judge_invalid(request, exchange, contract)
    failure = exchange.failure
    # One clause per probe: usage (missing, inconsistent, over max_tokens) is usage_capture's;
    # the other probes pass a call whose only problem is its usage.
    if failure is not None and not (is_usage_failure(failure) and request.probe != "usage_capture"):
        return failure
    response = exchange.response
    if request.probe == "usage_capture" and response is not None:
        problems = usage_problems(
            response.usage, fields=contract.policy.usage_fields, max_tokens=request.max_tokens
        )
        if problems:
            missing = response.usage is None
            return clause_failure(
                contract,
                kind="parser" if missing else "semantic",
                category="usage",
                code="missing_usage" if missing else "usage_incomplete",
                message="include_usage was requested but no usage chunk arrived"
                if missing
                else "; ".join(problems),
                exchange=exchange,
            )
    if request.probe == "timeout_boundary" and request.budget_ms is not None:
        ttfb = exchange.timings.ttfb_ms
        if ttfb is None or ttfb > request.budget_ms:
            seen = "no first byte" if ttfb is None else f"first byte after {ttfb:.0f} ms"
            return clause_failure(
                contract,
                kind="semantic",
                category="timeout",
                code="first_byte_over_budget",
                message=f"{seen}; the contract's first_byte_ms is {request.budget_ms:.0f}",
                exchange=exchange,
            )
    return None


def _judge_invalid(request: ProbeRequest, exchange: Exchange, contract: Contract) -> Failure | None:
    failure = exchange.failure
    if failure is None:
        status = exchange.response.status if exchange.response is not None else None
        return clause_failure(
            contract,
            kind="semantic",
            category="contract",
            code="invalid_request_accepted",
            message=f"a request without {request.removed_field!r} was accepted (HTTP {status}); "
            "the contract expects category validation",
            exchange=exchange,
        )
    if failure.category == "validation" and failure.retry == "none":
        return None
    return failure
