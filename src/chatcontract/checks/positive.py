"""The positive path: canary, repeated canary, streaming, and their parity."""

from __future__ import annotations

from collections import Counter
from typing import Any

from chatcontract.exchange import Exchange
from chatcontract.failures import Failure

from .clauses import (
    USAGE_CHECK,
    Notes,
    answered,
    is_usage_failure,
    other_clause_note,
    rate_limit_note,
    usage_note,
)
from .context import CheckContext
from .model import CheckStatus
from .outcome import Outcome, describe, evidence_of


def check_canary(ctx: CheckContext) -> Outcome:
    patient = ctx.send_patiently()
    exchange = patient.exchange
    ctx.shared["canary"] = exchange
    fields = ctx.target.contract.policy.usage_fields
    notes = Notes()
    notes.add(rate_limit_note(patient.limited, patient.waited_s))
    expected = (
        "2xx JSON, every consumed response path present, non-empty assistant content, "
        "response id and model captured"
    )
    response = exchange.response
    failure = exchange.failure
    notes.add(usage_note(exchange, fields=fields))
    if response is None or (failure is not None and not is_usage_failure(failure)):
        return Outcome(
            status="fail",
            expected=expected,
            observed=describe(exchange),
            failure=failure,
            evidence=evidence_of(exchange),
            notes=notes.as_tuple(),
        )
    missing = [
        name
        for name, value in (("response id", response.response_id), ("model", response.model))
        if not value
    ]
    observed = (
        f"HTTP {response.status} in {exchange.timings.total_ms:.0f} ms, model {response.model}, "
        f"{response.content_chars} chars of content"
    )
    if exchange.request_id is None:
        notes.add("no request id: the provider sent no request id header or message suffix")
    if missing:
        return Outcome(
            status="fail",
            expected=expected,
            observed=f"{observed}; not captured: {', '.join(missing)}",
            evidence=evidence_of(exchange),
            notes=notes.as_tuple(),
        )
    return Outcome(
        status="pass",
        expected=expected,
        observed=observed,
        evidence=evidence_of(exchange),
        notes=notes.as_tuple(),
    )


def check_canary_repeat(ctx: CheckContext) -> Outcome:
    """The parser holds over repeated answers; a 429 (``retry-after`` honoured) is a note."""
    runs = ctx.options.canary_runs
    fields = ctx.target.contract.policy.usage_fields
    codes: Counter[str] = Counter()
    fingerprints: Counter[str] = Counter()
    first_failure: Failure | None = None
    passed = 0
    limited = 0
    notes = Notes()
    for index in range(runs):
        patient = ctx.send_patiently()
        exchange = patient.exchange
        notes.add(rate_limit_note(patient.limited, patient.waited_s))
        ctx.progress("canary_repeat", index + 1, runs)
        failure = exchange.failure
        if exchange.response is not None and exchange.response.shape_fingerprint:
            fingerprints[exchange.response.shape_fingerprint] += 1
        if failure is not None and failure.category == "rate_limit":
            limited += 1
            notes.add(
                f"HTTP {failure.status} rate limited again after waiting as retry-after asked: "
                "not judged"
                if patient.limited
                else f"HTTP {failure.status} rate limited without a retry-after to honour: "
                "not judged"
            )
        elif failure is None or is_usage_failure(failure) or failure.category == "content":
            passed += 1
            notes.add(usage_note(exchange, fields=fields))
            notes.add(other_clause_note(exchange))
        else:
            codes[f"{failure.kind}/{failure.category}/{failure.code}"] += 1
            first_failure = first_failure or failure
    judged = runs - limited
    expected = f"{runs}/{runs} responses parse against the contract"
    observed = f"{passed}/{judged} parsed"
    if limited:
        observed += f" ({limited} rate-limited, not judged)"
    if codes:
        observed += "; failures: " + ", ".join(f"{code} x{n}" for code, n in codes.most_common())
    evidence = {
        "runs": runs,
        "passed": passed,
        "rate_limited": limited,
        "failures": dict(codes),
        "distinct_shapes": len(fingerprints),
    }
    status: CheckStatus = "pass" if passed == judged else "fail"
    if judged == 0:
        status, observed = "warn", f"every one of {runs} requests was rate-limited: nothing judged"
    return Outcome(
        status=status,
        expected=expected,
        observed=observed,
        failure=first_failure,
        evidence=evidence,
        notes=notes.as_tuple(),
    )


def check_streaming(ctx: CheckContext) -> Outcome:
    streaming = ctx.target.contract.streaming
    overrides: dict[str, Any] = {"stream": True}
    if streaming.include_usage:
        overrides["stream_options"] = {"include_usage": True}
    patient = ctx.send_patiently(ctx.fixture(**overrides))
    exchange = patient.exchange
    ctx.shared["stream"] = exchange
    notes = Notes()
    notes.add(rate_limit_note(patient.limited, patient.waited_s))
    notes.add(usage_note(exchange, fields=ctx.target.contract.policy.usage_fields))
    done = "then [DONE]" if streaming.require_done else "([DONE] optional)"
    expected = (
        f"SSE framing, chunk shape, a finish_reason {done}, non-empty assembled content, "
        "time to first token recorded"
    )
    evidence = evidence_of(exchange)
    response = exchange.response
    if response is not None:
        evidence.update(verdict=response.stream_verdict, chunks=response.chunk_count)
    if exchange.timings.ttft_ms is not None:
        evidence["ttft_ms"] = round(exchange.timings.ttft_ms, 1)
    failure = exchange.failure
    if failure is not None and not is_usage_failure(failure):
        return Outcome(
            status="fail",
            expected=expected,
            observed=describe(exchange),
            failure=failure,
            evidence=evidence,
            notes=notes.as_tuple(),
        )
    if response is None or response.stream_verdict is None:
        return Outcome(
            status="fail",
            expected=expected,
            observed=f"not a stream: content type {response.content_type if response else None}",
            evidence=evidence,
            notes=notes.as_tuple(),
        )
    if exchange.timings.ttft_ms is None:
        return Outcome(
            status="fail",
            expected=expected,
            observed="no token arrived",
            evidence=evidence,
            notes=notes.as_tuple(),
        )
    observed = (
        f"{response.chunk_count} chunks, verdict {response.stream_verdict}, finish_reason "
        f"{response.finish_reason}, TTFT {exchange.timings.ttft_ms:.0f} ms"
    )
    return Outcome(
        status="pass",
        expected=expected,
        observed=observed,
        evidence=evidence,
        notes=notes.as_tuple(),
    )


_FINISH_CLASSES = {
    "stop": "complete",
    "tool_calls": "complete",
    "function_call": "complete",
    "length": "length",
    "content_filter": "filtered",
}


def _presence(exchange: Exchange) -> str:
    response = exchange.response
    return "present" if response is not None and response.usage is not None else "absent"


def _finish_class(exchange: Exchange) -> str | None:
    response = exchange.response
    reason = None if response is None else response.finish_reason
    return None if reason is None else _FINISH_CLASSES.get(reason, reason)


def check_stream_parity(ctx: CheckContext) -> Outcome:
    """Streaming and non-streaming agree on the finish_reason class; usage presence is shown
    (``usage_consistency`` judges it) even when a side failed for another clause."""
    if "canary" not in ctx.shared:
        check_canary(ctx)
    if "stream" not in ctx.shared:
        check_streaming(ctx)
    canary: Exchange = ctx.shared["canary"]
    stream: Exchange = ctx.shared["stream"]
    expected = (
        "streaming and non-streaming agree on the finish_reason class; usage presence "
        "reported for both"
    )
    usage_a, usage_b = _presence(canary), _presence(stream)
    class_a, class_b = _finish_class(canary), _finish_class(stream)
    evidence = {
        "non_streaming": {
            "finish_reason": None if canary.response is None else canary.response.finish_reason,
            "usage": usage_a == "present",
        },
        "streaming": {
            "finish_reason": None if stream.response is None else stream.response.finish_reason,
            "usage": usage_b == "present",
        },
    }
    notes = Notes()
    usage_words = (
        f"usage {'in both' if usage_a == 'present' else 'in neither'}"
        if usage_a == usage_b
        else f"usage {usage_a} in non-streaming, {usage_b} in streaming"
    )
    if usage_a != usage_b:
        notes.add(f"{usage_words} ({USAGE_CHECK} judges usage presence)")
    unanswered = [
        name
        for name, exchange, finish in (
            ("non-streaming", canary, class_a),
            ("streaming", stream, class_b),
        )
        if finish is None and not answered(exchange)
    ]
    if unanswered:
        which = " and the ".join(unanswered)
        owners = " and ".join("canary" if n == "non-streaming" else "streaming" for n in unanswered)
        return Outcome(
            status="skip",
            expected=expected,
            observed=f"cannot compare finish reasons: the {which} call gave no complete answer "
            f"({owners} counts it); {usage_words}",
            evidence=evidence,
            notes=notes.as_tuple(),
        )
    if class_a != class_b:
        a = None if canary.response is None else canary.response.finish_reason
        b = None if stream.response is None else stream.response.finish_reason
        return Outcome(
            status="fail",
            expected=expected,
            observed=f"finish_reason {a!r} vs {b!r} ({class_a} vs {class_b}); {usage_words}",
            evidence=evidence,
            notes=notes.as_tuple(),
        )
    return Outcome(
        status="pass",
        expected=expected,
        observed=f"both {class_a}, {usage_words}",
        evidence=evidence,
        notes=notes.as_tuple(),
    )
