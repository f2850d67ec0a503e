"""Deadlines and interruptions, proven through the local fault relay on any endpoint.

A healthy endpoint cannot be asked to be slow or to break a stream, and a deadline "far below
normal latency" does not exist on a server that answers in a millisecond. So these checks put
``FaultRelay`` (``127.0.0.1``) in front of the real endpoint for the length of the check: the
real request is sent, and the relay holds the answer, stalls the stream after its first event,
or cuts it there. What is judged is the client side: does the deadline fire, in time, and is
each interruption classified for what it is (never a truncated answer taken as complete).
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx2
import orjson

from chatcontract.exchange import Exchange
from chatcontract.transport.relay import Fault, FaultRelay, RelayRecord

from .context import MAX_DEADLINE_MS, MIN_DEADLINE_MS, CheckContext, read_kept
from .outcome import Outcome, describe, evidence_of

__all__ = [
    "DEFAULT_DEADLINE_MS",
    "MAX_DEADLINE_MS",
    "MIN_DEADLINE_MS",
    "check_client_timeout",
    "check_stream_interruption",
]

#: The client deadline tried when ``--timeout-deadline-ms`` is not given. The relay holds the
#: answer, so any value works on any endpoint; a small one keeps the check quick.
DEFAULT_DEADLINE_MS = 250.0
_MAX_IDLE_MS = 30_000.0
_RELEASE_MARGIN_MS = 1_000.0

# How a cut stream may be classified: the dropped connection (``transport/network``), or the
# parser's verdict on a stream that ended mid-answer (``parser/contract/stream_cut``).
_CUT_CLASSES = {("transport", "network")}
_CUT_CODES = {("parser", "contract", "stream_cut")}


def _tolerance_ms(deadline_ms: float) -> float:
    """How late a deadline may end a call: scheduling noise plus a share of the deadline."""
    return 150.0 + deadline_ms * 0.5


def _deadline_ms(ctx: CheckContext) -> float:
    chosen = ctx.options.timeout_deadline_ms
    return DEFAULT_DEADLINE_MS if chosen is None else float(chosen)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Relayed:
    """One request sent through the relay: its Exchange, when it ended, what the relay did."""

    exchange: Exchange
    elapsed_ms: float
    ended_at: float
    record: RelayRecord | None


def _open_relay(ctx: CheckContext) -> FaultRelay:
    total_s = ctx.target.contract.policy.timeouts.total_ms / 1000
    return FaultRelay(ctx.target.base_url, upstream_timeout_s=min(600.0, total_s))


def _send_via(
    ctx: CheckContext,
    relay: FaultRelay,
    *,
    fault: Fault,
    body: Mapping[str, Any] | None = None,
    release_ms: float | None = None,
    timeout: httpx2.Timeout | None = None,
) -> _Relayed:
    """Send the contract's request through ``relay`` with ``fault`` staged on its answer."""
    request_id = uuid.uuid4().hex
    headers = {
        **ctx.headers(),
        **relay.control(fault=fault, request_id=request_id, release_ms=release_ms),
    }
    count = len(ctx.exchanges)
    request = ctx.client.build_request(
        ctx.target.contract.endpoint.method,
        relay.url_for(ctx.target.contract.endpoint.url),
        content=orjson.dumps(dict(body if body is not None else ctx.fixture())),
        headers=headers,
        timeout=timeout if timeout is not None else httpx2.USE_CLIENT_DEFAULT,
    )
    started = time.perf_counter()
    with contextlib.suppress(httpx2.HTTPError):  # the transport recorded its classification
        read_kept(ctx.client.send(request, stream=True))
    ended = time.perf_counter()
    if len(ctx.exchanges) == count:  # pragma: no cover - the transport always records
        raise RuntimeError("the instrumented transport recorded no Exchange")
    return _Relayed(
        exchange=ctx.exchanges[-1],
        elapsed_ms=(ended - started) * 1000,
        ended_at=ended,
        record=relay.record(request_id),
    )


def _relay_facts(record: RelayRecord | None) -> dict[str, Any]:
    if record is None:
        return {"reached_relay": False}
    return {
        "fault": record.fault,
        "staged": record.staged,
        "released": record.released,
        "client_left": record.client_left,
        "upstream_status": record.upstream_status,
        "upstream_content_type": record.upstream_content_type,
        "upstream_error": record.upstream_error,
    }


def _classification(exchange: Exchange) -> str | None:
    failure = exchange.failure
    return None if failure is None else f"{failure.kind}/{failure.category}/{failure.code}"


# -- client_timeout ----------------------------------------------------------------------------


def check_client_timeout(ctx: CheckContext) -> Outcome:
    """The client's deadline fires while the relay holds a healthy endpoint's answer."""
    deadline_ms = _deadline_ms(ctx)
    tolerance_ms = _tolerance_ms(deadline_ms)
    release_ms = deadline_ms + tolerance_ms + _RELEASE_MARGIN_MS
    expected = (
        f"with the answer held by the local relay, a {deadline_ms:.0f} ms deadline ends the "
        f"call within {deadline_ms + tolerance_ms:.0f} ms, classified transport/timeout"
    )
    with _open_relay(ctx) as relay:
        sent = _send_via(
            ctx,
            relay,
            fault="hold",
            release_ms=release_ms,
            timeout=httpx2.Timeout(deadline_ms / 1000),
        )
    exchange, elapsed_ms = sent.exchange, sent.elapsed_ms
    evidence: dict[str, Any] = {
        "deadline_ms": round(deadline_ms, 1),
        "tolerance_ms": round(tolerance_ms, 1),
        "elapsed_ms": round(elapsed_ms, 1),
        "classification": _classification(exchange),
        "relay": _relay_facts(sent.record),
    }
    failure = exchange.failure
    if failure is None:
        held = (
            f"; the relay held the answer {release_ms:.0f} ms, then released it"
            if sent.record is not None and sent.record.released
            else ""
        )
        return Outcome(
            status="fail",
            expected=expected,
            observed=f"the call completed after {elapsed_ms:.0f} ms: the deadline did not "
            f"fire{held}",
            evidence=evidence,
        )
    if (failure.kind, failure.category) != ("transport", "timeout"):
        return Outcome(
            status="fail",
            expected=expected,
            observed=f"the held call ended as {describe(exchange)}, not as a timeout",
            failure=failure,
            evidence=evidence,
        )
    if elapsed_ms > deadline_ms + tolerance_ms:
        return Outcome(
            status="fail",
            expected=expected,
            observed=f"timed out after {elapsed_ms:.0f} ms: {elapsed_ms - deadline_ms:.0f} ms "
            f"later than the {deadline_ms:.0f} ms deadline",
            failure=failure,
            evidence=evidence,
        )
    return Outcome(
        status="pass",
        expected=expected,
        observed=f"the held call ended after {elapsed_ms:.0f} ms as "
        f"transport/timeout/{failure.code}",
        evidence=evidence,
    )


# -- stream_interruption -----------------------------------------------------------------------


def _stream_body(ctx: CheckContext) -> dict[str, Any]:
    overrides: dict[str, Any] = {"stream": True}
    if ctx.target.contract.streaming.include_usage:
        overrides["stream_options"] = {"include_usage": True}
    return ctx.fixture(**overrides)


def _not_staged(name: str, sent: _Relayed) -> str:
    record, exchange = sent.record, sent.exchange
    if record is None:
        return f"the {name} request did not reach the relay ({describe(exchange)})"
    if record.upstream_error is not None:
        return f"the relay could not reach the endpoint for the {name} ({record.upstream_error})"
    if record.upstream_status is not None and (
        record.upstream_status >= 300 or record.upstream_content_type != "text/event-stream"
    ):
        return (
            f"the endpoint answered the {name} request with HTTP {record.upstream_status} "
            f"{record.upstream_content_type or 'without a content type'}: no SSE event to "
            "stage it on (the streaming check judges that answer)"
        )
    if record.events_forwarded == 0:
        return (
            f"no SSE event reached the client before its deadline on the {name} request "
            "(raise --timeout-deadline-ms above the endpoint's time to first event)"
        )
    return f"the {name} could not be staged"


#: Stream verdicts the answer's own content decides, whatever happens to the connection: a
#: chunk that is not JSON, or an in-band error event (``api_error``), ahead of the interruption.
_CONTENT_CODES = {("parser", "contract", "malformed_chunk")}


def _broken_before(name: str, sent: _Relayed) -> str | None:
    """Why the interruption cannot be judged when the stream's content broke the contract
    before it (the relay cuts or stalls after a whole event, so that breakage is the
    endpoint's): the streaming check names that defect, this check is not a second red."""
    failure = sent.exchange.failure
    if failure is None:
        return None
    if (failure.kind, failure.category, failure.code) in _CONTENT_CODES or (
        failure.kind == "api_error"
    ):
        return (
            f"the {name} request's stream broke the contract before the interruption "
            f"({_classification(sent.exchange)}; the streaming check judges that answer)"
        )
    return None


def _judge_cut(sent: _Relayed) -> str | None:
    """None when the cut stream was classified as a dropped stream; else what went wrong."""
    failure = sent.exchange.failure
    if failure is None:
        return "the cut stream was reported as a success: a truncated answer taken as complete"
    if (failure.kind, failure.category) in _CUT_CLASSES or (
        (failure.kind, failure.category, failure.code) in _CUT_CODES
    ):
        return None
    return f"the cut stream was classified {_classification(sent.exchange)}, not as a drop"


def _judge_stall(sent: _Relayed, idle_ms: float) -> str | None:
    """None when the stalled stream ended at its idle deadline as a timeout."""
    failure = sent.exchange.failure
    record = sent.record
    if failure is None:
        return (
            "the stalled stream waited until the relay let it go and completed: "
            "no idle deadline fired"
        )
    if failure.category != "timeout":
        return f"the stalled stream was classified {_classification(sent.exchange)}, not timeout"
    if record is not None and record.staged_at is not None:
        after_ms = (sent.ended_at - record.staged_at) * 1000
        if after_ms > idle_ms + _tolerance_ms(idle_ms):
            return (
                f"the stalled stream timed out {after_ms:.0f} ms after the stall began: "
                f"later than its {idle_ms:.0f} ms idle deadline"
            )
    return None


def _idle_deadline_ms(ctx: CheckContext, cut: _Relayed) -> float:
    """The stalled request's read deadline: above the time to the first event, which the cut
    request just measured (the cut happens right after that event)."""
    floor = _deadline_ms(ctx)
    if cut.record is not None and cut.record.staged:
        first_event_ms = cut.elapsed_ms
    else:
        first_event_ms = ctx.target.contract.policy.timeouts.first_token_ms / 4
    # Three times the measured wait, plus a margin: the next stream's first event may be slower.
    return min(_MAX_IDLE_MS, max(floor, 3 * first_event_ms + 500.0))


def check_stream_interruption(ctx: CheckContext) -> Outcome:
    """The endpoint's real stream, cut and then stalled by the relay after its first event."""
    if not ctx.target.contract.streaming.used:
        return Outcome(
            status="skip", expected="-", observed="skipped: the contract says streaming is not used"
        )
    expected = (
        "a stream cut after its first event is classified as a dropped stream "
        "(transport/network or parser/contract/stream_cut), a stream stalled after its first "
        "event ends at its idle deadline as a timeout; neither is a success"
    )
    body = _stream_body(ctx)
    with _open_relay(ctx) as relay:
        cut = _send_via(ctx, relay, fault="cut", body=body)
        idle_ms = _idle_deadline_ms(ctx, cut)
        connect_s = ctx.target.contract.policy.timeouts.connect_ms / 1000
        stall = _send_via(
            ctx,
            relay,
            fault="stall",
            body=body,
            release_ms=idle_ms + _tolerance_ms(idle_ms) + _RELEASE_MARGIN_MS,
            timeout=httpx2.Timeout(idle_ms / 1000, connect=connect_s),
        )
    evidence: dict[str, Any] = {
        "cut": {
            **evidence_of(cut.exchange),
            "classification": _classification(cut.exchange),
            "relay": _relay_facts(cut.record),
        },
        "stall": {
            **evidence_of(stall.exchange),
            "classification": _classification(stall.exchange),
            "idle_deadline_ms": round(idle_ms, 1),
            "relay": _relay_facts(stall.record),
        },
    }
    problems: list[tuple[str, Exchange]] = []
    unstaged: list[str] = []
    for name, sent, problem in (
        ("cut", cut, _judge_cut(cut)),
        ("stall", stall, _judge_stall(stall, idle_ms)),
    ):
        broken = _broken_before(name, sent)
        if sent.record is None or not sent.record.staged:
            unstaged.append(_not_staged(name, sent))
        elif broken is not None:
            unstaged.append(broken)
        elif problem is not None:
            problems.append((problem, sent.exchange))
    if problems:
        return Outcome(
            status="fail",
            expected=expected,
            observed="; ".join(text for text, _ in problems),
            failure=problems[0][1].failure,
            evidence=evidence,
        )
    if unstaged:
        return Outcome(
            status="skip",
            expected=expected,
            observed="could not stage the interruption: " + "; ".join(unstaged),
            evidence=evidence,
        )
    return Outcome(
        status="pass",
        expected=expected,
        observed=f"the cut stream ended as {_classification(cut.exchange)}; the stalled stream "
        f"as {_classification(stall.exchange)} at its {idle_ms:.0f} ms idle deadline",
        evidence=evidence,
    )
