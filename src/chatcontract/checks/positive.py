"""The positive path: canary, repeated canary, streaming, and their parity."""

from __future__ import annotations

import dataclasses
from collections import Counter
from typing import Any

from chatcontract.exchange import Exchange
from chatcontract.failures import Failure, Silence, make_failure, silence_failure

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

#: What a note says when a second answer settled what a sampled first one left open.
_SAMPLED = "a sampled model can stop at once; the answer with text was judged"


def _empty_answer(exchange: Exchange) -> bool:
    """An answer that ended but carried no text (a sampled model can stop at once)."""
    failure = exchange.failure
    if failure is not None and not is_usage_failure(failure):
        return failure.category == "content"
    response = exchange.response
    return (
        response is not None
        and response.stream_verdict is not None
        and exchange.timings.ttft_ms is None
    )


#: Sends of one check's request while its answers carry no text (a sampled model can stop at
#: once now and then; an endpoint that never answers with text does so every time).
EMPTY_TRIES = 3


def _send_until_text(
    ctx: CheckContext, body: dict[str, Any] | None, notes: Notes
) -> tuple[Exchange, tuple[Exchange, ...], float]:
    """Send; while the answer carries no text, send again (at most ``EMPTY_TRIES`` in all) and
    judge the last one, with a note saying how many were empty.

    Returns the Exchange to judge, the 429s met on the way, and the seconds waited for them.
    """
    limited: tuple[Exchange, ...] = ()
    waited = 0.0
    empty = 0
    for _ in range(EMPTY_TRIES):
        patient = ctx.send_patiently(body)
        limited, waited = limited + patient.limited, waited + patient.waited_s
        exchange = patient.exchange
        if not _empty_answer(exchange):
            break
        empty += 1
    if empty == EMPTY_TRIES:
        notes.add(f"{EMPTY_TRIES} answers in a row carried no text")
    elif empty:
        notes.add(f"{empty} of {empty + 1} answers carried no text ({_SAMPLED})")
    return exchange, limited, waited


def check_canary(ctx: CheckContext) -> Outcome:
    notes = Notes()
    exchange, limited, waited = _send_until_text(ctx, None, notes)
    ctx.shared["canary"] = exchange
    fields = ctx.target.contract.policy.usage_fields
    notes.add(rate_limit_note(limited, waited))
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
    late = _late_head(ctx, exchange, expected, notes)
    if late is not None:
        return late
    return Outcome(
        status="pass",
        expected=expected,
        observed=observed,
        evidence=evidence_of(exchange),
        notes=notes.as_tuple(),
    )


def _waited_ms(exchange: Exchange) -> float | None:
    """How long the answer's head took once the request was on its way: the time to the
    first byte less resolving, connecting and the TLS handshake (``ChatClient``'s
    ``first_byte_ms`` is a read timeout, which starts after them)."""
    timings = exchange.timings
    if timings.ttfb_ms is None:
        return None
    setup = sum(ms for ms in (timings.dns_ms, timings.connect_ms, timings.tls_ms) if ms)
    return timings.ttfb_ms - setup


def _late_head(
    ctx: CheckContext, exchange: Exchange, expected: str, notes: Notes
) -> Outcome | None:
    """The canary's failing outcome when the answer's head came later than
    ``policy.timeouts.first_byte_ms``: the canary reads it within the call's deadline, but
    ``ChatClient`` (and the gateway) give up on such a call at that limit and never see the
    answer; None when it came in time."""
    first_byte_ms = ctx.target.contract.policy.timeouts.first_byte_ms
    waited = _waited_ms(exchange)
    response = exchange.response
    if waited is None or waited <= first_byte_ms or response is None:
        return None
    failure = _silence(exchange, "first_byte", first_byte_ms, response.status)
    return Outcome(
        status="fail",
        expected=f"{expected}, the response head within policy.timeouts.first_byte_ms",
        observed=f"the response head came after {waited:.0f} ms, above "
        f"policy.timeouts.first_byte_ms ({first_byte_ms} ms): a client under this "
        "contract gives up on the call (first_byte_timeout)",
        failure=failure,
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
    elif passed == 0:
        canary = _as_the_canary(ctx, [code.split("/")[:2] for code in codes])
        if canary is not None:
            status, first_failure = "skip", None
            observed = f"cannot judge: {observed}, as the canary's request ({canary}): {_ITS}"
            evidence["canary"] = canary
    return Outcome(
        status=status,
        expected=expected,
        observed=observed,
        failure=first_failure,
        evidence=evidence,
        notes=notes.as_tuple(),
    )


#: Why a check that fails as the canary did is skipped: one defect, one red check.
_ITS = "the endpoint answers every request this way, which the canary judges"


def _as_the_canary(ctx: CheckContext, failed: list[list[str]]) -> str | None:
    """The canary's classification when it ran in this run and failed as every one of
    ``failed`` (``[kind, category]`` each) did; None otherwise. A check alone in its run, or
    failing otherwise than the canary, stays red."""
    canary: Exchange | None = ctx.shared.get("canary")
    failure = None if canary is None else canary.failure
    if failure is None or is_usage_failure(failure) or not failed:
        return None
    if any(pair != [failure.kind, failure.category] for pair in failed):
        return None
    return f"{failure.kind}/{failure.category}/{failure.code}"


def _stream_body(ctx: CheckContext) -> dict[str, Any]:
    """The fixture as a stream, asking for the usage chunk when the contract does."""
    overrides: dict[str, Any] = {"stream": True}
    if ctx.target.contract.streaming.include_usage:
        overrides["stream_options"] = {"include_usage": True}
    return ctx.fixture(**overrides)


def check_streaming(ctx: CheckContext) -> Outcome:
    streaming = ctx.target.contract.streaming
    notes = Notes()
    exchange, limited, waited = _send_until_text(ctx, _stream_body(ctx), notes)
    ctx.shared["stream"] = exchange
    notes.add(rate_limit_note(limited, waited))
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
        canary = _as_the_canary(ctx, [[failure.kind, failure.category]])
        if canary is not None:
            evidence["canary"] = canary
            return Outcome(
                status="skip",
                expected=expected,
                observed=f"cannot judge: {describe(exchange)}, as the canary's request "
                f"({canary}): {_ITS}",
                evidence=evidence,
                notes=notes.as_tuple(),
            )
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
            observed="the stream ended without a content token (an empty answer)",
            failure=make_failure(
                kind="semantic",
                category="content",
                code="empty_content",
                message="the stream ended without a content token",
                status=response.status,
                request_id=exchange.request_id,
            ),
            evidence=evidence,
            notes=notes.as_tuple(),
        )
    first_token_ms = ctx.target.contract.policy.timeouts.first_token_ms
    if exchange.timings.ttft_ms > first_token_ms:
        # Keep-alives held the socket busy, so no read timed out; ChatClient's first-token
        # timer ignores them (as the contract says) and would have given up on this stream.
        return Outcome(
            status="fail",
            expected=expected,
            observed=f"the first content token came after {exchange.timings.ttft_ms:.0f} ms, "
            f"above policy.timeouts.first_token_ms ({first_token_ms} ms): a client under this "
            "contract gives up on the stream (first_token_timeout)",
            failure=_silence(exchange, "first_token", first_token_ms, response.status),
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


#: Finish reasons by what they mean for the caller. ``length`` is a normal end like ``stop``:
#: whether a sampled answer reaches ``max_tokens`` is chance, not a difference between the two
#: modes (``usage_consistency`` judges tokens against ``max_tokens``).
_FINISH_CLASSES = {
    "stop": "complete",
    "tool_calls": "complete",
    "function_call": "complete",
    "length": "complete",
    "content_filter": "filtered",
}


def _presence(exchange: Exchange) -> str:
    response = exchange.response
    return "present" if response is not None and response.usage is not None else "absent"


def _reason(exchange: Exchange) -> str | None:
    return None if exchange.response is None else exchange.response.finish_reason


def _finish_class(exchange: Exchange) -> str | None:
    reason = _reason(exchange)
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
            "finish_reason": _reason(canary),
            "usage": usage_a == "present",
        },
        "streaming": {
            "finish_reason": _reason(stream),
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
        first = f"finish_reason {_reason(canary)!r} vs {_reason(stream)!r} ({class_a} vs {class_b})"
        # A sampled answer may stop or hit max_tokens by chance: a second pair decides.
        again_a = ctx.send_patiently().exchange
        again_b = ctx.send_patiently(_stream_body(ctx)).exchange
        evidence["second_pair"] = {
            "non_streaming": _reason(again_a),
            "streaming": _reason(again_b),
        }
        if _finish_class(again_a) == _finish_class(again_b) is not None:
            notes.add(f"a first pair differed ({first}); a second pair agreed ({_SAMPLED})")
            return Outcome(
                status="pass",
                expected=expected,
                observed=f"both {_finish_class(again_a)} in a second pair, {usage_words}",
                evidence=evidence,
                notes=notes.as_tuple(),
            )
        second = f"{_reason(again_a)!r} vs {_reason(again_b)!r}"
        return Outcome(
            status="fail",
            expected=expected,
            observed=f"{first}, and {second} in a second pair; {usage_words}",
            evidence=evidence,
            notes=notes.as_tuple(),
        )
    if _reason(canary) != _reason(stream):
        notes.add(
            f"finish_reason {_reason(canary)!r} vs {_reason(stream)!r}: both normal ends (whether "
            "a sampled answer reaches max_tokens is chance)"
        )
    return Outcome(
        status="pass",
        expected=expected,
        observed=f"both {class_a}, {usage_words}",
        evidence=evidence,
        notes=notes.as_tuple(),
    )


def _silence(exchange: Exchange, limit: Silence, limit_ms: int, status: int) -> Failure:
    """``silence_failure`` (ChatClient's name for the limit that ran out) with the answer's
    status and request id."""
    return dataclasses.replace(
        silence_failure(limit, limit_ms), status=status, request_id=exchange.request_id
    )
