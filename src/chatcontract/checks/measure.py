"""Measurements: usage consistency, latency by prompt size, a small rate-limit burst."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from typing import Any

from chatcontract.failures import Failure

from .context import CheckContext
from .outcome import Outcome


def usage_problems(usage: Any, *, fields: Sequence[str], max_tokens: int | None) -> list[str]:
    """What is wrong with one usage object, against the contract's usage fields."""
    if usage is None:
        return ["usage missing"]
    problems = [f"{name} missing" for name in fields if getattr(usage, name) is None]
    prompt, completion, total = usage.prompt_tokens, usage.completion_tokens, usage.total_tokens
    problems += [
        f"{name} negative"
        for name, value in (
            ("prompt_tokens", prompt),
            ("completion_tokens", completion),
            ("total_tokens", total),
        )
        if value is not None and value < 0
    ]
    if prompt is not None and total is not None and total < prompt:
        problems.append(f"total_tokens {total} < prompt_tokens {prompt}")
    if None not in (prompt, completion, total) and total != prompt + completion:
        problems.append(f"total_tokens {total} != {prompt} + {completion}")
    if max_tokens is not None and completion is not None and completion > max_tokens:
        problems.append(f"completion_tokens {completion} > max_tokens {max_tokens}")
    return problems


def check_usage_consistency(ctx: CheckContext) -> Outcome:
    contract = ctx.target.contract
    sampled = [e for e in ctx.exchanges if e.ok and e.response is not None]
    if not sampled:
        sampled = [ctx.send()]
    expected = (
        f"usage present ({', '.join(contract.policy.usage_fields)}), non-negative, total >= "
        "prompt, total = prompt + completion, completion <= max_tokens"
    )
    problems: Counter[str] = Counter()
    checked = 0
    for exchange in sampled:
        if exchange.response is None or not 200 <= exchange.response.status < 300:
            continue
        if exchange.request.stream and not contract.streaming.include_usage:
            continue
        checked += 1
        for problem in usage_problems(
            exchange.response.usage,
            fields=contract.policy.usage_fields,
            max_tokens=exchange.request.max_tokens,
        ):
            problems[problem] += 1
    evidence = {"responses_checked": checked, "problems": dict(problems)}
    if checked == 0:
        return Outcome(
            status="fail",
            expected=expected,
            observed="no successful response to check",
            evidence=evidence,
        )
    if problems:
        return Outcome(
            status="fail",
            expected=expected,
            observed=f"{sum(problems.values())} problem(s) in {checked} responses: "
            + ", ".join(f"{p} x{n}" for p, n in problems.most_common(3)),
            evidence=evidence,
        )
    return Outcome(
        status="pass",
        expected=expected,
        observed=f"consistent in {checked}/{checked} responses",
        evidence=evidence,
    )


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    rank = max(0, math.ceil(q * len(ordered)) - 1)
    return ordered[rank]


_FILLER = (
    "This paragraph is synthetic filler used to measure latency by prompt size; "
    "it carries no user data and asks for nothing. "
)


def check_latency_by_prompt_size(ctx: CheckContext) -> Outcome:
    samples = ctx.options.latency_samples
    budget = ctx.target.contract.policy.timeouts
    sizes = {"short": "", "large": _FILLER * 60}
    stats: dict[str, dict[str, float]] = {}
    failures: list[Failure] = []
    done = 0
    for label, filler in sizes.items():
        latencies = []
        for _ in range(samples):
            body = ctx.fixture()
            if filler:
                body["messages"].insert(1, {"role": "user", "content": filler})
            exchange = ctx.send(body)
            done += 1
            ctx.progress("latency_by_prompt_size", done, samples * len(sizes))
            if exchange.ok:
                latencies.append(exchange.timings.total_ms)
            elif exchange.failure is not None:
                failures.append(exchange.failure)
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
        return Outcome(
            status="warn",
            expected=expected,
            observed=f"{observed}; {len(failures)} sample(s) failed",
            failure=failures[0],
            evidence=evidence,
        )
    over = [k for k, v in stats.items() if v["p95_ms"] > budget.total_ms]
    if over or not stats:
        return Outcome(
            status="warn",
            expected=expected,
            observed=f"{observed}; above budget: {', '.join(over) or 'all'}",
            evidence=evidence,
        )
    return Outcome(status="pass", expected=expected, observed=observed, evidence=evidence)


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
