"""The checks: one small function each, registered in run order with a stable id.

Each function takes the ``CheckContext`` and returns an ``Outcome`` (status, expected,
observed, failure, evidence); the runner times it and turns it into a ``CheckResult``.
"""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx2

from chatcontract.contract import lint_document, read_document
from chatcontract.failures import Failure
from chatcontract.transport import Exchange

from .context import CheckContext
from .model import CheckStatus

__all__ = ["CHECKS", "CheckSpec", "Outcome", "check_ids"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What a check function returns."""

    status: CheckStatus
    expected: str
    observed: str
    failure: Failure | None = None
    evidence: dict[str, Any] = field(default_factory=dict)


CheckFn = Callable[[CheckContext], Outcome]


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckSpec:
    """A registered check: id, title, whether it gates the deploy, and when it runs."""

    id: str
    title: str
    fn: CheckFn
    required: bool = True
    negative: bool = False  # sends an invalid request: staging-only unless --allow-negative
    opt_in: bool = False  # runs only when named with --check


def _evidence(exchange: Exchange) -> dict[str, Any]:
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


def _describe(exchange: Exchange) -> str:
    failure = exchange.failure
    status = exchange.response.status if exchange.response is not None else None
    if failure is None:
        return f"HTTP {status}, contract held"
    where = f"HTTP {failure.status}" if failure.status is not None else "no HTTP response"
    return f"{where}: {failure.kind}/{failure.category}/{failure.code}: {failure.message}"


# -- positive path ---------------------------------------------------------------------------


def check_canary(ctx: CheckContext) -> Outcome:
    exchange = ctx.send()
    ctx.shared["canary"] = exchange
    expected = (
        "2xx JSON, every consumed response path present, non-empty assistant content, "
        "request id, response id, model and usage captured"
    )
    response = exchange.response
    if exchange.failure is not None or response is None:
        return Outcome(
            status="fail",
            expected=expected,
            observed=_describe(exchange),
            failure=exchange.failure,
            evidence=_evidence(exchange),
        )
    missing = [
        name
        for name, value in (
            ("response id", response.response_id),
            ("model", response.model),
            ("usage", response.usage),
        )
        if not value
    ]
    observed = (
        f"HTTP {response.status} in {exchange.timings.total_ms:.0f} ms, model {response.model}, "
        f"{response.content_chars} chars of content"
    )
    if exchange.request_id is None:
        observed += "; no request id header (the provider sent none)"
    if missing:
        return Outcome(
            status="fail",
            expected=expected,
            observed=f"{observed}; not captured: {', '.join(missing)}",
            evidence=_evidence(exchange),
        )
    return Outcome(
        status="pass", expected=expected, observed=observed, evidence=_evidence(exchange)
    )


def check_canary_repeat(ctx: CheckContext) -> Outcome:
    runs = ctx.options.canary_runs
    codes: Counter[str] = Counter()
    fingerprints: Counter[str] = Counter()
    first_failure: Failure | None = None
    passed = 0
    for index in range(runs):
        exchange = ctx.send()
        ctx.progress("canary_repeat", index + 1, runs)
        failure = exchange.failure
        if failure is None:
            passed += 1
        else:
            codes[f"{failure.kind}/{failure.category}/{failure.code}"] += 1
            first_failure = first_failure or failure
        if exchange.response is not None and exchange.response.shape_fingerprint:
            fingerprints[exchange.response.shape_fingerprint] += 1
    expected = f"{runs}/{runs} responses parse against the contract"
    observed = f"{passed}/{runs} parsed"
    if codes:
        observed += "; failures: " + ", ".join(f"{code} x{n}" for code, n in codes.most_common())
    evidence = {
        "runs": runs,
        "passed": passed,
        "failures": dict(codes),
        "distinct_shapes": len(fingerprints),
    }
    return Outcome(
        status="pass" if passed == runs else "fail",
        expected=expected,
        observed=observed,
        failure=first_failure,
        evidence=evidence,
    )


def check_streaming(ctx: CheckContext) -> Outcome:
    streaming = ctx.target.contract.streaming
    overrides: dict[str, Any] = {"stream": True}
    if streaming.include_usage:
        overrides["stream_options"] = {"include_usage": True}
    exchange = ctx.send(ctx.fixture(**overrides))
    ctx.shared["stream"] = exchange
    done = "then [DONE]" if streaming.require_done else "([DONE] optional)"
    usage = ", a usage chunk" if streaming.include_usage else ""
    expected = (
        f"SSE framing, chunk shape, a finish_reason {done}{usage}, non-empty assembled content, "
        "time to first token recorded"
    )
    evidence = _evidence(exchange)
    response = exchange.response
    if response is not None:
        evidence.update(verdict=response.stream_verdict, chunks=response.chunk_count)
    if exchange.timings.ttft_ms is not None:
        evidence["ttft_ms"] = round(exchange.timings.ttft_ms, 1)
    if not exchange.ok:
        return Outcome(
            status="fail",
            expected=expected,
            observed=_describe(exchange),
            failure=exchange.failure,
            evidence=evidence,
        )
    if response is None or response.stream_verdict is None:
        return Outcome(
            status="fail",
            expected=expected,
            observed=f"not a stream: content type {response.content_type if response else None}",
            evidence=evidence,
        )
    if exchange.timings.ttft_ms is None:
        return Outcome(
            status="fail", expected=expected, observed="no token arrived", evidence=evidence
        )
    observed = (
        f"{response.chunk_count} chunks, verdict {response.stream_verdict}, finish_reason "
        f"{response.finish_reason}, TTFT {exchange.timings.ttft_ms:.0f} ms"
    )
    return Outcome(status="pass", expected=expected, observed=observed, evidence=evidence)


_FINISH_CLASSES = {
    "stop": "complete",
    "tool_calls": "complete",
    "function_call": "complete",
    "length": "length",
    "content_filter": "filtered",
}


def check_stream_parity(ctx: CheckContext) -> Outcome:
    if "canary" not in ctx.shared:
        check_canary(ctx)
    if "stream" not in ctx.shared:
        check_streaming(ctx)
    canary, stream = ctx.shared["canary"], ctx.shared["stream"]
    expected = "streaming and non-streaming agree on the finish_reason class and usage presence"
    if not canary.ok or not stream.ok:
        which = "non-streaming" if not canary.ok else "streaming"
        return Outcome(
            status="fail",
            expected=expected,
            observed=f"cannot compare: the {which} call failed",
            failure=canary.failure or stream.failure,
        )
    a, b = canary.response, stream.response
    diffs = []
    class_a = _FINISH_CLASSES.get(a.finish_reason or "", a.finish_reason)
    class_b = _FINISH_CLASSES.get(b.finish_reason or "", b.finish_reason)
    if class_a != class_b:
        diffs.append(f"finish_reason {a.finish_reason!r} vs {b.finish_reason!r}")
    if ctx.target.contract.streaming.include_usage and (a.usage is None) != (b.usage is None):
        diffs.append(
            f"usage {'present' if a.usage else 'absent'} vs {'present' if b.usage else 'absent'}"
        )
    evidence = {
        "non_streaming": {"finish_reason": a.finish_reason, "usage": a.usage is not None},
        "streaming": {"finish_reason": b.finish_reason, "usage": b.usage is not None},
    }
    if diffs:
        return Outcome(
            status="fail", expected=expected, observed="; ".join(diffs), evidence=evidence
        )
    return Outcome(
        status="pass",
        expected=expected,
        observed=f"both {class_a}, usage {'in both' if a.usage else 'in neither'}",
        evidence=evidence,
    )


# -- negative paths --------------------------------------------------------------------------


def _expect_category(
    ctx: CheckContext,
    exchange: Any,
    *,
    categories: Sequence[str],
    expected: str,
    documented: dict[tuple[int, str], str] | None = None,
) -> Outcome:
    failure = exchange.failure
    evidence = _evidence(exchange)
    if failure is None:
        return Outcome(
            status="fail",
            expected=expected,
            observed=f"HTTP {exchange.response.status}: the request was accepted",
            evidence=evidence,
        )
    evidence["classification"] = f"{failure.kind}/{failure.category}/{failure.code}"
    if failure.category not in categories:
        return Outcome(
            status="fail",
            expected=expected,
            observed=_describe(exchange),
            failure=failure,
            evidence=evidence,
        )
    if failure.retry != "none":
        return Outcome(
            status="fail",
            expected=expected,
            observed=f"{_describe(exchange)}; but the decision is {failure.retry!r}",
            failure=failure,
            evidence=evidence,
        )
    observed = f"HTTP {failure.status} {failure.category}/{failure.code}, not retried"
    note = (documented or {}).get((failure.status or 0, failure.code))
    if note:
        observed += f" ({note})"
    return Outcome(status="pass", expected=expected, observed=observed, evidence=evidence)


def check_missing_auth(ctx: CheckContext) -> Outcome:
    exchange = ctx.send(headers=ctx.headers(auth=None))
    return _expect_category(
        ctx,
        exchange,
        categories=("auth",),
        expected="category auth (not a parser failure), not retried",
    )


def check_invalid_auth(ctx: CheckContext) -> Outcome:
    exchange = ctx.send(headers=ctx.headers(auth="sk-chatcontract-invalid-key-0000000000"))
    return _expect_category(
        ctx,
        exchange,
        categories=("auth",),
        expected="category auth (not a parser failure), not retried",
    )


_DOCUMENTED = {
    (500, "invalid_request"): "CometAPI answers a missing field with 500 invalid_request: "
    "the documented contract",
    (503, "model_not_found"): "CometAPI answers an unknown model with 503 model_not_found: "
    "the documented contract",
}


def check_malformed_request(ctx: CheckContext) -> Outcome:
    body = ctx.fixture()
    removed = next(
        (name for name in ctx.target.contract.request.required if name != "model"), "messages"
    )
    body.pop(removed, None)
    exchange = ctx.send(body)
    outcome = _expect_category(
        ctx,
        exchange,
        categories=("validation",),
        documented=_DOCUMENTED,
        expected=f"required field {removed!r} removed: category validation, not retried",
    )
    outcome.evidence["removed_field"] = removed
    return outcome


def check_malformed_json(ctx: CheckContext) -> Outcome:
    exchange = ctx.send(content=b'{"model": "x", "messages": [')
    outcome = _expect_category(
        ctx,
        exchange,
        categories=("validation", "auth"),
        expected="a body that is not JSON: category validation (or auth, if the gateway checks "
        "the key first), not retried",
    )
    failure = exchange.failure
    if outcome.status == "pass" and failure is not None and failure.category == "auth":
        return Outcome(
            status="pass",
            expected=outcome.expected,
            observed=outcome.observed + " (the gateway checks auth before the body)",
            evidence=outcome.evidence,
        )
    return outcome


def check_unsupported_model(ctx: CheckContext) -> Outcome:
    exchange = ctx.send(ctx.fixture(model="chatcontract-no-such-model-0"))
    return _expect_category(
        ctx,
        exchange,
        categories=("model",),
        documented=_DOCUMENTED,
        expected="category model, not retried",
    )


def check_client_timeout(ctx: CheckContext) -> Outcome:
    canary = ctx.shared.get("canary")
    normal_ms = canary.timings.total_ms if canary is not None and canary.ok else None
    deadline_ms = ctx.options.timeout_deadline_ms
    if deadline_ms is None:
        deadline_ms = (
            50.0
            if ctx.target.simulated or normal_ms is None
            else max(1.0, min(100.0, normal_ms / 20))
        )
    tolerance_ms = 150.0 + deadline_ms * 0.5
    # Against the simulator, make the upstream slow so "far below normal latency" holds.
    headers = ctx.headers(scenario="slow", delay_ms=3000) if ctx.target.simulated else ctx.headers()
    started = time.perf_counter()
    exchange = ctx.send(headers=headers, timeout=httpx2.Timeout(deadline_ms / 1000))
    elapsed_ms = (time.perf_counter() - started) * 1000
    expected = (
        f"a {deadline_ms:.0f} ms deadline ends the call within "
        f"{deadline_ms + tolerance_ms:.0f} ms, "
        "classified transport/timeout"
    )
    evidence = {
        "deadline_ms": round(deadline_ms, 1),
        "elapsed_ms": round(elapsed_ms, 1),
        "normal_latency_ms": None if normal_ms is None else round(normal_ms, 1),
    }
    failure = exchange.failure
    if failure is None:
        return Outcome(
            status="fail",
            expected=expected,
            observed=f"the call completed in {elapsed_ms:.0f} ms: the deadline did not fire",
            evidence=evidence,
        )
    if (failure.kind, failure.category) != ("transport", "timeout"):
        return Outcome(
            status="fail",
            expected=expected,
            observed=_describe(exchange),
            failure=failure,
            evidence=evidence,
        )
    if elapsed_ms > deadline_ms + tolerance_ms:
        return Outcome(
            status="fail",
            expected=expected,
            observed=f"timed out after {elapsed_ms:.0f} ms: later than the deadline",
            failure=failure,
            evidence=evidence,
        )
    return Outcome(
        status="pass",
        expected=expected,
        observed=f"ended after {elapsed_ms:.0f} ms as transport/timeout/{failure.code}",
        evidence=evidence,
    )


# -- usage, latency ---------------------------------------------------------------------------


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


# -- hygiene ----------------------------------------------------------------------------------


def check_redaction(ctx: CheckContext) -> Outcome:
    produced = json.dumps(
        {
            "exchanges": [e.to_dict() for e in ctx.exchanges],
            "results": ctx.shared.get("results_so_far", []),
        },
        default=str,
    )
    secret = ctx.target.secret
    leaks = []
    if secret and secret in produced:
        leaks.append("the API key")
    if ctx.marker in produced:
        leaks.append("prompt text (the run's marker)")
    expected = "neither the API key nor any prompt text in events, evidence or the report"
    evidence = {"bytes_scanned": len(produced), "exchanges": len(ctx.exchanges)}
    if leaks:
        return Outcome(
            status="fail",
            expected=expected,
            observed="found " + " and ".join(leaks),
            evidence=evidence,
        )
    return Outcome(
        status="pass",
        expected=expected,
        observed=f"clean: {len(ctx.exchanges)} exchanges, {len(produced)} bytes scanned",
        evidence=evidence,
    )


def check_contract_lint(ctx: CheckContext) -> Outcome:
    expected = "an owner, a review within 90 days, a reference URL, no secret in the file"
    path = ctx.target.contract_path
    if path is None:
        return Outcome(
            status="warn",
            expected=expected,
            observed="no contract file: the built-in cometapi preset was used; "
            "write one with 'chatcontract init'",
        )
    findings = lint_document(read_document(path))
    if not findings:
        return Outcome(status="pass", expected=expected, observed="no findings")
    return Outcome(
        status="warn",
        expected=expected,
        observed="; ".join(f.message for f in findings),
        evidence={"findings": [str(f) for f in findings]},
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


CHECKS: tuple[CheckSpec, ...] = (
    CheckSpec(id="canary", title="Positive canary", fn=check_canary),
    CheckSpec(id="canary_repeat", title="Repeated parser canary", fn=check_canary_repeat),
    CheckSpec(id="streaming", title="Streaming parser", fn=check_streaming),
    CheckSpec(id="stream_parity", title="Streaming / non-streaming parity", fn=check_stream_parity),
    CheckSpec(
        id="missing_auth",
        title="Missing auth is classified auth",
        fn=check_missing_auth,
        negative=True,
    ),
    CheckSpec(
        id="invalid_auth",
        title="Invalid auth is classified auth",
        fn=check_invalid_auth,
        negative=True,
    ),
    CheckSpec(
        id="malformed_request",
        title="Malformed request is classified validation",
        fn=check_malformed_request,
        negative=True,
    ),
    CheckSpec(
        id="malformed_json",
        title="Malformed JSON is classified validation",
        fn=check_malformed_json,
        negative=True,
    ),
    CheckSpec(
        id="unsupported_model",
        title="Unsupported model is classified model",
        fn=check_unsupported_model,
        negative=True,
    ),
    CheckSpec(
        id="client_timeout",
        title="Client deadline fires and is classified",
        fn=check_client_timeout,
    ),
    CheckSpec(id="usage_consistency", title="Usage consistency", fn=check_usage_consistency),
    CheckSpec(
        id="latency_by_prompt_size",
        title="Latency by prompt size",
        fn=check_latency_by_prompt_size,
        required=False,
    ),
    CheckSpec(
        id="contract_lint", title="Contract file hygiene", fn=check_contract_lint, required=False
    ),
    CheckSpec(
        id="rate_limit_burst",
        title="Small rate-limit burst",
        fn=check_rate_limit_burst,
        required=False,
        opt_in=True,
    ),
    CheckSpec(id="redaction", title="No secret or prompt text in the output", fn=check_redaction),
)


def check_ids() -> tuple[str, ...]:
    """Every check id, in run order."""
    return tuple(spec.id for spec in CHECKS)
