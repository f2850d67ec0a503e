"""Measurements: usage consistency, latency by prompt size, a small rate-limit burst."""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Sequence
from typing import Any

from chatcontract.exchange import Exchange
from chatcontract.failures import Failure, decision_for, make_failure

from .clauses import (
    Notes,
    answered,
    is_usage_failure,
    judged_for_usage,
    other_clause_note,
    rate_limit_note,
    usage_note,
    usage_problems,
)
from .context import CheckContext
from .outcome import Outcome, describe

__all__ = [
    "check_latency_by_prompt_size",
    "check_rate_limit_burst",
    "check_usage_consistency",
    "usage_problems",
]


def check_usage_consistency(ctx: CheckContext) -> Outcome:
    """Usage over every 2xx answer of the whole run, whichever check sent it.

    Failed answers (an empty content, a canary that failed for another clause) and the
    answers negative checks got count too: a usage defect is this check's clause alone.
    """
    contract = ctx.target.contract
    expected = (
        f"usage present ({', '.join(contract.policy.usage_fields)}), non-negative, total >= "
        "prompt, total = prompt + completion, completion <= max_tokens, in every 2xx answer "
        "of the run"
    )
    notes = Notes()
    # Whatever ran before, judge at least one answer of each mode the contract uses, so the
    # verdict does not depend on which checks came first.
    for body in _usage_samples_missing(ctx):
        patient = ctx.send_patiently(body)
        notes.add(rate_limit_note(patient.limited, patient.waited_s))
    sampled = [e for e in ctx.exchanges if judged_for_usage(e)]
    problems: Counter[str] = Counter()
    for exchange in sampled:
        response = exchange.response
        if response is None:  # pragma: no cover - judged_for_usage implies a response
            continue
        for problem in usage_problems(
            response.usage,
            fields=contract.policy.usage_fields,
            max_tokens=exchange.request.max_tokens,
        ):
            problems[problem] += 1
    checked = len(sampled)
    evidence = {"responses_checked": checked, "problems": dict(problems)}
    if checked == 0:
        last = ctx.exchanges[-1] if ctx.exchanges else None
        why = f": {describe(last)}" if last is not None else ""
        return Outcome(
            status="skip",
            expected=expected,
            observed=f"no 2xx answer to judge{why}",
            evidence=evidence,
            notes=notes.as_tuple(),
        )
    if problems:
        return Outcome(
            status="fail",
            expected=expected,
            observed=f"{sum(problems.values())} problem(s) in {checked} responses: "
            + ", ".join(f"{p} x{n}" for p, n in problems.most_common(3)),
            failure=_usage_failure(ctx, sampled, problems),
            evidence=evidence,
            notes=notes.as_tuple(),
        )
    return Outcome(
        status="pass",
        expected=expected,
        observed=f"consistent in {checked}/{checked} responses",
        evidence=evidence,
        notes=notes.as_tuple(),
    )


def _usage_samples_missing(ctx: CheckContext) -> list[dict[str, Any]]:
    """Requests to send so both modes are judged: a plain one, and a stream asking for usage
    when the contract streams with ``include_usage``."""
    judged = [e for e in ctx.exchanges if judged_for_usage(e)]
    bodies = []
    if not any(not e.request.stream for e in judged):
        bodies.append(ctx.fixture())
    streaming = ctx.target.contract.streaming
    if (
        streaming.used
        and streaming.include_usage
        and not any(e.request.stream and e.request.include_usage for e in judged)
    ):
        bodies.append(ctx.fixture(stream=True, stream_options={"include_usage": True}))
    return bodies


def _usage_failure(
    ctx: CheckContext, sampled: Sequence[Exchange], problems: Counter[str]
) -> Failure:
    """The usage clause's failure, in category ``usage`` (its owner and first action): the
    classifier's kind, code and message when an answer carried one, else the top problem."""
    table = ctx.target.contract.errors
    decision = decision_for("usage", retryable=table.retryable, non_retryable=table.non_retryable)
    for exchange in sampled:
        found = exchange.failure
        if found is not None and is_usage_failure(found):
            return make_failure(
                kind=found.kind,
                category="usage",
                code=found.code,
                message=found.message,
                status=found.status,
                request_id=found.request_id,
                decision=decision,
            )
    first = sampled[0]
    problem, _count = problems.most_common(1)[0]
    missing = problem == "usage missing"
    return make_failure(
        kind="parser" if missing else "semantic",
        category="usage",
        code="missing_usage" if missing else "usage_inconsistent",
        status=None if first.response is None else first.response.status,
        message=problem,
        request_id=first.request_id,
        decision=decision,
        secrets=(ctx.target.secret,),
    )


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    rank = max(0, math.ceil(q * len(ordered)) - 1)
    return ordered[rank]


_FILLER = (
    "This paragraph is synthetic filler used to measure latency by prompt size; "
    "it carries no user data and asks for nothing. "
)


_CONTEXT_WINDOW = re.compile(
    r"context.?length|context.?window|maximum context|too many tokens|prompt is too long", re.I
)


def _error_words(label: str, failure: Failure, head_status: int | None) -> str:
    """One failed sample in words: what the prompt of this size ran into (a failure after the
    head came, e.g. the deadline cutting the body, is shown with ``head_status``)."""
    status = failure.status if failure.status is not None else head_status
    where = f"HTTP {status}" if status is not None else "no HTTP answer"
    if failure.category == "context_length" or _CONTEXT_WINDOW.search(
        f"{failure.code} {failure.message}"
    ):
        return f"the {label} prompt exceeded the context window ({where} {failure.code})"
    message = failure.message if len(failure.message) <= 120 else failure.message[:119] + "…"
    return f"the {label} prompt failed: {where} {failure.category}/{failure.code}: {message}"


def check_latency_by_prompt_size(ctx: CheckContext) -> Outcome:
    samples = ctx.options.latency_samples
    budget = ctx.target.contract.policy.timeouts
    fields = ctx.target.contract.policy.usage_fields
    sizes = {"short": "", "large": _FILLER * 60}
    stats: dict[str, dict[str, float]] = {}
    failures: list[Failure] = []
    errors: Counter[str] = Counter()
    notes = Notes()
    done = 0
    for label, filler in sizes.items():
        latencies = []
        for _ in range(samples):
            body = ctx.fixture()
            if filler:
                body["messages"].insert(1, {"role": "user", "content": filler})
            patient = ctx.send_patiently(body)
            exchange = patient.exchange
            notes.add(rate_limit_note(patient.limited, patient.waited_s))
            done += 1
            ctx.progress("latency_by_prompt_size", done, samples * len(sizes))
            if answered(exchange):  # an answer, whatever another clause thinks of it
                latencies.append(exchange.timings.total_ms)
                notes.add(usage_note(exchange, fields=fields))
                notes.add(other_clause_note(exchange))
            elif exchange.failure is not None:
                failures.append(exchange.failure)
                head = None if exchange.response is None else exchange.response.status
                errors[_error_words(label, exchange.failure, head)] += 1
        if latencies:
            stats[label] = {
                "p50_ms": round(_percentile(latencies, 0.5), 1),
                "p95_ms": round(_percentile(latencies, 0.95), 1),
                "samples": len(latencies),
            }
    expected = f"{samples} samples per prompt size; p95 within the {budget.total_ms} ms budget"
    evidence: dict[str, Any] = {"by_size": stats}
    observed = (
        "; ".join(
            f"{k}: p50 {v['p50_ms']:.0f} ms, p95 {v['p95_ms']:.0f} ms" for k, v in stats.items()
        )
        or "no successful sample"
    )
    if failures:
        evidence["errors"] = dict(errors)
        named = "; ".join(f"{words} x{n}" for words, n in errors.most_common())
        return Outcome(
            status="warn",
            expected=expected,
            observed=f"{observed}; {len(failures)} sample(s) failed: {named}",
            failure=failures[0],
            evidence=evidence,
            notes=notes.as_tuple(),
        )
    over = [k for k, v in stats.items() if v["p95_ms"] > budget.total_ms]
    if over or not stats:
        return Outcome(
            status="warn",
            expected=expected,
            observed=f"{observed}; above budget: {', '.join(over) or 'all'}",
            evidence=evidence,
            notes=notes.as_tuple(),
        )
    return Outcome(
        status="pass",
        expected=expected,
        observed=observed,
        evidence=evidence,
        notes=notes.as_tuple(),
    )


def check_rate_limit_burst(ctx: CheckContext) -> Outcome:
    count = 10  # far below any documented limit; bounded by design
    statuses: Counter[int] = Counter()
    headers_seen: dict[str, str] = {}
    first_limited: Failure | None = None
    for index in range(count):
        exchange = ctx.send()
        ctx.progress("rate_limit_burst", index + 1, count)
        if exchange.response is not None:
            statuses[exchange.response.status] += 1
            headers_seen.update(exchange.response.rate_limit_headers)
        if exchange.failure is not None and exchange.failure.category in ("rate_limit", "quota"):
            first_limited = first_limited or exchange.failure
    expected = f"a burst of {count} requests: no 429, rate-limit headers recorded if sent"
    evidence = {
        "statuses": {str(k): v for k, v in statuses.items()},
        "rate_limit_headers": headers_seen,
    }
    header_note = (
        f"headers: {', '.join(sorted(headers_seen))}" if headers_seen else "no rate-limit headers"
    )
    if first_limited is not None:
        return Outcome(
            status="warn",
            expected=expected,
            observed=f"{statuses.get(429, 0)} x 429; {header_note}",
            failure=first_limited,
            evidence=evidence,
        )
    return Outcome(
        status="pass",
        expected=expected,
        observed=f"{count} requests, no 429; {header_note}",
        evidence=evidence,
    )
