"""The positive path: canary, repeated canary, streaming, and their parity."""

from __future__ import annotations

from collections import Counter
from typing import Any

from chatcontract.failures import Failure

from .context import CheckContext
from .outcome import Outcome, describe, evidence_of


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
            observed=describe(exchange),
            failure=exchange.failure,
            evidence=evidence_of(exchange),
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
            evidence=evidence_of(exchange),
        )
    return Outcome(
        status="pass", expected=expected, observed=observed, evidence=evidence_of(exchange)
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
    evidence = evidence_of(exchange)
    response = exchange.response
    if response is not None:
        evidence.update(verdict=response.stream_verdict, chunks=response.chunk_count)
    if exchange.timings.ttft_ms is not None:
        evidence["ttft_ms"] = round(exchange.timings.ttft_ms, 1)
    if not exchange.ok:
        return Outcome(
            status="fail",
            expected=expected,
            observed=describe(exchange),
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
