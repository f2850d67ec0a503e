"""Each check judges its own clause: unit tests through an in-process transport.

Covers what the misbehaving servers do not reach cheaply: retry-after bounds, stream parity
when a side failed, the wording of every kind of wrong answer to a negative request.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import httpx2
import orjson
import pytest
from check_targets import context_against, target_of, with_deadline_ms

from chatcontract.checks.clauses import Notes, is_usage_failure, usage_problems
from chatcontract.checks.context import CheckContext, SuiteOptions
from chatcontract.checks.suite import CHECKS
from chatcontract.contract import load_preset
from chatcontract.failures import make_failure

MODEL = "m"


def _body(*, content: str = "pong", finish: str = "stop", completion: int = 2) -> dict:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": MODEL,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content},
                "finish_reason": finish,
            }
        ],
        "usage": {
            "prompt_tokens": 5,
            "completion_tokens": completion,
            "total_tokens": 5 + completion,
        },
    }


def _stream(*, finish: str | None = "stop", usage: bool = True, done: bool = True) -> bytes:
    chunks = [
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": MODEL,
            "choices": [{"index": 0, "delta": {"content": "pong"}, "finish_reason": None}],
        },
    ]
    if finish is not None:
        chunks.append(
            {
                "id": "c",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": MODEL,
                "choices": [{"index": 0, "delta": {}, "finish_reason": finish}],
            }
        )
    if usage:
        chunks.append(
            {
                "id": "c",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": MODEL,
                "choices": [],
                "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
            }
        )
    text = b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks)
    return text + (b"data: [DONE]\n\n" if done else b"")


def _context(
    handler: Callable[[httpx2.Request], httpx2.Response],
    *,
    timeouts: dict[str, int] | None = None,
    **retry,
) -> CheckContext:
    contract = load_preset("openai")
    policy = contract.policy
    if retry:
        policy = replace(policy, retry=replace(policy.retry, **retry))
    if timeouts:
        policy = replace(policy, timeouts=replace(policy.timeouts, **timeouts))
    target = target_of(replace(contract, policy=policy), model=MODEL)
    return CheckContext.open(
        target, SuiteOptions(canary_runs=3), inner=httpx2.MockTransport(handler)
    )


def _run_check(ctx: CheckContext, check: str):
    try:
        return next(spec for spec in CHECKS if spec.id == check).fn(ctx)
    finally:
        ctx.close()


def _ok(request: httpx2.Request) -> httpx2.Response:
    if orjson.loads(request.content).get("stream"):
        return httpx2.Response(
            200, content=_stream(), headers={"content-type": "text/event-stream"}
        )
    return httpx2.Response(200, json=_body(), headers={"x-request-id": "r1"})


def _first_then_ok(response: httpx2.Response) -> Callable[[httpx2.Request], httpx2.Response]:
    """``response`` to the first request (a negative check's), good answers to the rest (the
    contract's valid request, the control a wrong answer is compared with)."""
    calls: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        calls.append(request)
        return response if len(calls) == 1 else _ok(request)

    return handler


# ------------------------------------------------------------------------------- retry-after


def _limited_then_ok(plan: list[dict[str, str] | None]):
    """Answer call n with a 429 carrying ``plan[n]`` as headers (``None``: a good answer)."""
    calls = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        calls.append(request)
        index = len(calls) - 1
        if index < len(plan) and plan[index] is not None:
            body = {"error": {"message": "slow down"}}
            return httpx2.Response(429, json=body, headers=plan[index])
        return _ok(request)

    return handler, calls


def test_a_429_with_retry_after_is_waited_for_and_sent_again():
    handler, calls = _limited_then_ok([{"retry-after": "2"}])
    ctx = _context(handler)
    waits: list[float] = []
    ctx.sleep = waits.append
    patient = ctx.send_patiently()
    ctx.close()
    assert waits == [2.0]
    assert len(calls) == 2
    assert patient.exchange.ok
    assert len(patient.limited) == 1
    assert patient.waited_s == 2.0


def test_a_retry_after_beyond_the_contracts_cap_waits_only_the_cap():
    handler, _calls = _limited_then_ok([{"retry-after": "3600"}])
    ctx = _context(handler, retry_after_cap_ms=1_500)
    waits: list[float] = []
    ctx.sleep = waits.append
    assert ctx.send_patiently().exchange.ok
    ctx.close()
    assert waits == [1.5]


def test_the_runs_wait_budget_bounds_every_wait_together():
    handler, calls = _limited_then_ok([{"retry-after": "4"}, None, {"retry-after": "4"}])
    ctx = _context(handler)
    ctx.wait_budget_s = 6.0
    waits: list[float] = []
    ctx.sleep = waits.append
    first, second = ctx.send_patiently(), ctx.send_patiently()
    ctx.close()
    assert first.exchange.ok
    assert waits == [4.0]  # the second wait would have gone over the run's budget
    assert second.exchange.failure is not None
    assert second.exchange.failure.category == "rate_limit"
    assert len(calls) == 3


def test_a_429_without_a_hint_is_not_retried():
    handler, calls = _limited_then_ok([{}])
    ctx = _context(handler)
    ctx.sleep = lambda _s: pytest.fail("nothing asked to wait")
    patient = ctx.send_patiently()
    ctx.close()
    assert len(calls) == 1
    assert patient.exchange.failure.category == "rate_limit"
    assert patient.limited == ()


def test_canary_repeat_counts_a_429_as_a_note_not_a_parse_failure():
    handler, _calls = _limited_then_ok([{"retry-after-ms": "5"}, None, {}])
    ctx = _context(handler, max_attempts=1)
    ctx.sleep = lambda _s: None
    outcome = _run_check(ctx, "canary_repeat")
    assert outcome.status == "pass", outcome.observed
    assert outcome.observed == "2/2 parsed (1 rate-limited, not judged)"
    assert outcome.evidence["failures"] == {}
    assert outcome.notes == (
        "1 x HTTP 429 rate limited; waited 0.0 s as retry-after asked",
        "HTTP 429 rate limited without a retry-after to honour: not judged",
    )


def test_canary_repeat_still_fails_for_a_broken_answer():
    calls = []

    def handler(request):
        calls.append(1)
        if len(calls) == 2:
            return httpx2.Response(200, json={"id": "x", "object": "chat.completion"})
        return _ok(request)

    outcome = _run_check(_context(handler), "canary_repeat")
    assert outcome.status == "fail"
    assert outcome.observed.startswith("2/3 parsed; failures: parser/contract/")


# ------------------------------------------------------------------------------ stream parity


@pytest.mark.parametrize(
    ("non_stream", "stream", "status", "words"),
    [
        (_body(), _stream(), "pass", "both complete, usage in both"),
        (
            _body(),
            _stream(usage=False),
            "pass",
            "usage present in non-streaming, absent in streaming",
        ),
        (_body(finish="content_filter"), _stream(), "fail", "'content_filter' vs 'stop'"),
        (_body(finish="length"), _stream(), "pass", "both complete"),
        (_body(content=""), _stream(), "pass", "both complete, usage in both"),
        (_body(completion=99), _stream(), "pass", "both complete, usage in both"),
        (
            _body(),
            _stream(finish=None, usage=False, done=False),
            "skip",
            "cannot compare finish reasons: the streaming call gave no complete answer "
            "(streaming counts it); usage present in non-streaming, absent in streaming",
        ),
    ],
    ids=[
        "agree",
        "stream-without-usage",
        "filtered-in-one-mode",
        "length-is-a-normal-end",
        "empty-canary",
        "usage-over-max",
        "stream-cut",
    ],
)
def test_stream_parity_reports_what_differs_even_when_a_side_failed_elsewhere(
    non_stream, stream, status, words
):
    def handler(request):
        if orjson.loads(request.content).get("stream"):
            return httpx2.Response(
                200, content=stream, headers={"content-type": "text/event-stream"}
            )
        return httpx2.Response(200, json=non_stream)

    outcome = _run_check(_context(handler), "stream_parity")
    assert outcome.status == status
    assert words in outcome.observed
    if "absent" in words:
        assert "in both" not in outcome.observed
        assert outcome.notes[0].endswith("(usage_consistency judges usage presence)")


# --------------------------------------------------------------------------- negative checks


@pytest.mark.parametrize(
    ("response", "check", "observed", "kind"),
    [
        (
            httpx2.Response(200, json=_body(content="", completion=99)),
            "unsupported_model",
            "an unknown model was accepted (HTTP 200)",
            "semantic",
        ),
        (
            httpx2.Response(400, json={"error": {"message": "bad", "type": "None", "code": "400"}}),
            "missing_auth",
            "a request without the key got HTTP 400, not an auth error",
            "api_error",
        ),
        (
            httpx2.Response(503, text="upstream down"),
            "malformed_request",
            "a request without 'messages' got HTTP 503, not a validation error",
            "http",
        ),
        (
            httpx2.Response(
                200, json={"error": {"message": "no such model", "type": "x", "code": "weird"}}
            ),
            "unsupported_model",
            "an unknown model got HTTP 200 weird, not a model error",
            "api_error",
        ),
    ],
    ids=["accepted-whatever-the-body", "rewritten-code", "plain-text-5xx", "in-band-error"],
)
def test_a_negative_check_names_the_wrong_answer_in_its_clauses_words(
    response, check, observed, kind
):
    outcome = _run_check(_context(_first_then_ok(response)), check)
    assert outcome.status == "fail"
    assert outcome.observed.startswith(observed), outcome.observed
    expected_category = {"unsupported_model": "model", "missing_auth": "auth"}.get(
        check, "validation"
    )
    assert outcome.failure.category == expected_category
    assert outcome.failure.kind == kind
    assert outcome.failure.message == outcome.observed


def test_an_accepted_negative_request_notes_its_usage_and_other_defects():
    response = httpx2.Response(200, json=_body(content="", completion=99))
    outcome = _run_check(_context(lambda _r: response), "missing_auth")
    assert outcome.notes == (
        "usage: completion_tokens 99 > max_tokens 16 (usage_consistency counts it)",
        "the answer also failed semantic/content/empty_content: the assistant content is empty",
    )


def test_a_negative_check_without_an_http_answer_says_so():
    calls = []

    def refuse_the_first(request):
        calls.append(request)
        if len(calls) == 1:
            raise httpx2.ConnectError("connection refused", request=request)
        return _ok(request)  # the valid request (the control) is answered

    outcome = _run_check(_context(refuse_the_first), "invalid_auth")
    assert outcome.status == "fail"
    assert outcome.observed.startswith(
        "a wrong key got no HTTP answer, not an auth error (classified transport/network/"
    )
    assert outcome.failure.category == "auth"
    assert outcome.failure.owner == "secrets"


# ------------------------------------------------------------------------------ the helpers


@pytest.mark.parametrize(
    ("failure", "usage_owned"),
    [
        (make_failure(kind="semantic", category="usage", code="usage_mismatch", message="x"), True),
        (
            make_failure(
                kind="parser", category="contract", code="missing_usage", message="$.usage: missing"
            ),
            True,
        ),
        (
            make_failure(
                kind="parser",
                category="contract",
                code="missing_usage",
                message="$.usage: missing (+2 more)",
            ),
            False,
        ),
        (
            make_failure(kind="semantic", category="content", code="empty_content", message="x"),
            False,
        ),
        (None, False),
    ],
    ids=["usage", "only-usage-missing", "usage-and-more-missing", "content", "none"],
)
def test_is_usage_failure_claims_only_the_usage_clause(failure, usage_owned):
    assert is_usage_failure(failure) is usage_owned


def test_usage_problems_names_each_inconsistency():
    class Usage:
        prompt_tokens, completion_tokens, total_tokens = 10, 20, 5

    assert usage_problems(Usage(), fields=("prompt_tokens",), max_tokens=16) == [
        "total_tokens 5 < prompt_tokens 10",
        "total_tokens 5 != 10 + 20",
        "completion_tokens 20 > max_tokens 16",
    ]


def test_notes_are_counted_in_first_seen_order():
    notes = Notes()
    notes.extend(["b", None, "a", "b", ""])
    assert notes.as_tuple() == ("b (x2)", "a")


# ------------------------------------------------------------- sampled answers: judged twice


def _answers(non_stream: list[dict], stream: list[bytes]):
    """A handler answering calls in order from each list (the last one repeats)."""
    calls = {"plain": 0, "stream": 0}

    def handler(request):
        if orjson.loads(request.content).get("stream"):
            index = min(calls["stream"], len(stream) - 1)
            calls["stream"] += 1
            return httpx2.Response(
                200, content=stream[index], headers={"content-type": "text/event-stream"}
            )
        index = min(calls["plain"], len(non_stream) - 1)
        calls["plain"] += 1
        return httpx2.Response(200, json=non_stream[index], headers={"x-request-id": "r1"})

    return handler, calls


def test_stream_parity_fails_when_the_modes_disagree_twice():
    handler, calls = _answers([_body(finish="content_filter")], [_stream()])
    outcome = _run_check(_context(handler), "stream_parity")
    assert outcome.status == "fail"
    assert outcome.observed.startswith(
        "finish_reason 'content_filter' vs 'stop' (filtered vs complete), and 'content_filter' "
        "vs 'stop' in a "
        "second pair"
    )
    assert calls == {"plain": 2, "stream": 2}


def test_stream_parity_passes_with_a_note_when_a_second_pair_agrees():
    handler, calls = _answers([_body(finish="content_filter"), _body()], [_stream()])
    outcome = _run_check(_context(handler), "stream_parity")
    assert calls == {"plain": 2, "stream": 2}
    assert outcome.status == "pass"
    assert outcome.observed.startswith("both complete in a second pair")
    assert any(note.startswith("a first pair differed") for note in outcome.notes)
    assert outcome.evidence["second_pair"] == {"non_streaming": "stop", "streaming": "stop"}


def test_stream_parity_sends_no_second_pair_when_the_modes_agree():
    handler, calls = _answers([_body()], [_stream()])
    assert _run_check(_context(handler), "stream_parity").status == "pass"
    assert calls == {"plain": 1, "stream": 1}


@pytest.mark.parametrize(
    ("bodies", "status", "note", "sends"),
    [
        ([_body(content=""), _body()], "pass", "1 of 2 answers carried no text", 2),
        ([_body(content=""), _body(content=""), _body()], "pass", "2 of 3 answers", 3),
        ([_body(content="")], "fail", "3 answers in a row carried no text", 3),
    ],
    ids=["empty-once", "empty-twice", "always-empty"],
)
def test_an_empty_canary_answer_is_sent_again(bodies, status, note, sends):
    handler, calls = _answers(bodies, [_stream()])
    outcome = _run_check(_context(handler), "canary")
    assert outcome.status == status
    assert any(n.startswith(note) for n in outcome.notes)
    assert calls["plain"] == sends


def _empty_stream(*, usage_chunk: bool = True) -> bytes:
    chunk = {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": MODEL,
        "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}],
    }
    usage = {
        **chunk,
        "choices": [],
        "usage": {"prompt_tokens": 5, "completion_tokens": 0, "total_tokens": 5},
    }
    chunks = (chunk, usage) if usage_chunk else (chunk,)
    return b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"


@pytest.mark.parametrize(
    ("streams", "status", "note", "sends"),
    [
        ([_empty_stream(), _stream()], "pass", "1 of 2 answers carried no text", 2),
        (
            [_empty_stream(usage_chunk=False), _stream()],
            "pass",
            "1 of 2 answers carried no text",
            2,
        ),
        ([_empty_stream()], "fail", "3 answers in a row carried no text", 3),
    ],
    ids=["empty-once", "empty-once-without-usage", "always-empty"],
)
def test_an_empty_stream_is_sent_again(streams, status, note, sends):
    handler, calls = _answers([_body()], streams)
    outcome = _run_check(_context(handler), "streaming")
    assert outcome.status == status, outcome.observed
    assert any(n.startswith(note) for n in outcome.notes)
    assert calls["stream"] == sends
    if status == "fail":
        assert outcome.failure is not None
        assert (outcome.failure.category, outcome.failure.code) == ("content", "empty_content")


def test_a_canary_without_a_request_id_passes_with_a_note():
    def handler(request):
        return httpx2.Response(200, json=_body())

    outcome = _run_check(_context(handler), "canary")
    assert outcome.status == "pass"
    assert any(note.startswith("no request id") for note in outcome.notes)


# ------------------------------------------------------------------- the run's call deadline


def test_a_server_dripping_its_headers_cannot_outlive_the_contracts_total_budget():
    from raw_servers import dripping_head

    contract = with_deadline_ms(load_preset("openai"), 1000)
    with context_against(dripping_head(0.1, header_bytes=600), contract) as (ctx, _):
        started = time.monotonic()
        exchange = ctx.send(ctx.fixture())
    # 600 header bytes at 0.1 s each would take a minute; each read alone is quick.
    assert time.monotonic() - started < 1.0 + 1.5
    assert exchange.failure is not None
    assert (exchange.failure.kind, exchange.failure.category) == ("transport", "timeout")


def test_a_length_against_stop_difference_is_a_note_not_a_failure():
    handler, calls = _answers([_body(finish="length")], [_stream()])
    outcome = _run_check(_context(handler), "stream_parity")
    assert outcome.status == "pass"
    assert calls == {"plain": 1, "stream": 1}  # no second pair needed
    assert any(
        note.startswith("finish_reason 'length' vs 'stop': both normal ends")
        for note in outcome.notes
    )


# -- a stream judged under the contract's silence limits, as ChatClient reads one -------------


def test_a_streamed_request_reads_under_chatclients_stream_read_limit():
    seen: dict[str, dict] = {}

    def handler(request: httpx2.Request) -> httpx2.Response:
        kind = "stream" if orjson.loads(request.content).get("stream") else "complete"
        seen[kind] = request.extensions["timeout"]
        return _ok(request)

    ctx = _context(
        handler, timeouts={"first_byte_ms": 4000, "first_token_ms": 3000, "total_ms": 20000}
    )
    try:
        ctx.send()
        ctx.send({**ctx.fixture(), "stream": True})
    finally:
        ctx.close()
    assert ctx.target.contract.policy.timeouts.stream_read_ms == 3000
    assert seen["stream"]["read"] == 3.0  # each silent gap: ChatClient's socket read limit
    assert seen["stream"]["connect"] == ctx.target.contract.policy.timeouts.connect_ms / 1000
    assert seen["complete"]["read"] == 20.0  # a whole answer: the call's deadline, as before


def _late_stream(delay_s: float, pings: int) -> Callable[[httpx2.Request], httpx2.Response]:
    """Answers a stream whose first content comes after ``delay_s``, keep-alive comments
    before it (a whole answer at once)."""

    def body():
        for _ in range(pings):
            time.sleep(delay_s / pings)
            yield b": keep-alive\n\n"
        yield _stream()

    def handler(request: httpx2.Request) -> httpx2.Response:
        if orjson.loads(request.content).get("stream"):
            return httpx2.Response(
                200, content=body(), headers={"content-type": "text/event-stream"}
            )
        return _ok(request)

    return handler


def test_a_first_token_later_than_the_contract_allows_fails_streaming_though_pings_kept_it_alive():
    ctx = _context(_late_stream(0.3, 3), timeouts={"first_token_ms": 100})
    outcome = _run_check(ctx, "streaming")
    assert outcome.status == "fail", outcome.observed
    assert outcome.failure is not None
    assert (outcome.failure.kind, outcome.failure.category, outcome.failure.code) == (
        "transport",
        "timeout",
        "first_token_timeout",
    )
    # Cut when the limit passed, as ChatClient cuts it: keep-alives do not reset it.
    assert "first_token_ms (100 ms)" in outcome.observed


def test_a_first_token_within_the_contracts_limit_passes_streaming():
    ctx = _context(_late_stream(0.03, 1), timeouts={"first_token_ms": 5000})
    assert _run_check(ctx, "streaming").status == "pass"


@pytest.mark.parametrize(("delay_s", "status"), [(1.0, "fail"), (0.0, "pass")])
def test_a_canary_whose_head_comes_after_first_byte_ms_fails_as_chatclient_would(
    delay_s: float, status: str
):
    from raw_servers import late_answer

    # ChatClient gives up on this call at first_byte_ms; the canary waits total_ms for it.
    contract = load_preset("openai")
    limits = replace(contract.policy.timeouts, first_byte_ms=300, total_ms=20000)
    contract = replace(contract, policy=replace(contract.policy, timeouts=limits))
    with context_against(late_answer(delay_s), contract) as (ctx, _):
        outcome = next(spec for spec in CHECKS if spec.id == "canary").fn(ctx)
    assert outcome.status == status, outcome.observed
    if status == "fail":
        assert outcome.failure is not None
        assert outcome.failure.code == "first_byte_timeout"
        assert "above policy.timeouts.first_byte_ms (300 ms)" in outcome.observed


# A stream judged under ChatClient's limits, against a server that relays a slow model as
# LiteLLM does (head and role chunk at once, the tokens later): the first-token limit until
# content starts, idle_ms after it, each silence named for the limit that ran out.


def _streaming_against(
    before: list[bytes], after: list[bytes], quiet_s: float, **timeouts: int
) -> Any:
    from raw_servers import quiet_between

    contract = load_preset("openai")
    limits = replace(contract.policy.timeouts, total_ms=20000, **timeouts)
    contract = replace(contract, policy=replace(contract.policy, timeouts=limits))
    with context_against(quiet_between(before, after, quiet_s=quiet_s), contract) as (ctx, _):
        return next(spec for spec in CHECKS if spec.id == "streaming").fn(ctx)


def _timeout_code(outcome: Any) -> tuple[str, str, str]:
    assert outcome.failure is not None, outcome.observed
    return outcome.failure.kind, outcome.failure.category, outcome.failure.code


def test_a_pause_mid_answer_within_idle_ms_passes_streaming_though_longer_than_first_token_ms():
    from raw_servers import STREAM_EVENTS

    # ChatClient reads this stream to its end: once content started, only idle_ms bounds a gap.
    outcome = _streaming_against(
        STREAM_EVENTS[:3],
        STREAM_EVENTS[3:],
        1.0,
        first_byte_ms=300,
        first_token_ms=300,
        idle_ms=5000,
    )
    assert outcome.status == "pass", outcome.observed


def test_a_pause_mid_answer_longer_than_idle_ms_fails_streaming_as_stream_stalled():
    from raw_servers import STREAM_EVENTS

    # ChatClient cuts this stream at idle_ms, however long its first-token limit.
    outcome = _streaming_against(
        STREAM_EVENTS[:3],
        STREAM_EVENTS[3:],
        3.0,
        first_byte_ms=5000,
        first_token_ms=5000,
        idle_ms=300,
    )
    assert outcome.status == "fail", outcome.observed
    assert _timeout_code(outcome) == ("transport", "timeout", "stream_stalled")
    assert "idle_ms once content had started (300 ms)" in outcome.observed


def test_a_first_token_late_after_the_role_chunk_fails_streaming_as_first_token_timeout():
    from raw_servers import STREAM_EVENTS

    outcome = _streaming_against(
        STREAM_EVENTS[:1],
        STREAM_EVENTS[1:],
        3.0,
        first_byte_ms=300,
        first_token_ms=300,
        idle_ms=5000,
    )
    assert outcome.status == "fail", outcome.observed
    assert _timeout_code(outcome) == ("transport", "timeout", "first_token_timeout")
    assert "first_token_ms (300 ms)" in outcome.observed


@pytest.mark.parametrize(
    ("first_byte_ms", "first_token_ms", "code"),
    [(300, 300, "first_byte_timeout"), (5000, 300, "first_token_timeout")],
)
def test_a_stream_whose_head_never_came_is_named_as_chatclient_names_it(
    first_byte_ms: int, first_token_ms: int, code: str
):
    from raw_servers import STREAM_EVENTS

    outcome = _streaming_against(
        [], STREAM_EVENTS, 3.0, first_byte_ms=first_byte_ms, first_token_ms=first_token_ms
    )
    assert outcome.status == "fail", outcome.observed
    assert _timeout_code(outcome) == ("transport", "timeout", code)


# -- one defect of the whole endpoint, one red check: the canary's ---------------------------


def _run_in_order(ctx: CheckContext, *checks: str) -> dict[str, Any]:
    try:
        return {check: next(s for s in CHECKS if s.id == check).fn(ctx) for check in checks}
    finally:
        ctx.close()


def _bad_gateway(request: httpx2.Request) -> httpx2.Response:
    return httpx2.Response(502, text="<html><title>502 Bad Gateway</title></html>")


def test_a_failure_every_request_gets_is_red_once_on_the_canary():
    outcomes = _run_in_order(_context(_bad_gateway), "canary", "canary_repeat", "streaming")
    assert outcomes["canary"].status == "fail"
    for check in ("canary_repeat", "streaming"):
        outcome = outcomes[check]
        assert outcome.status == "skip", (check, outcome.observed)
        assert outcome.failure is None
        assert outcome.observed.startswith("cannot judge: ")
        assert outcome.observed.endswith(
            "the endpoint answers every request this way, which the canary judges"
        )
        assert outcome.evidence["canary"] == "http/upstream/server_error"


@pytest.mark.parametrize("check", ["canary_repeat", "streaming"])
def test_without_the_canary_in_the_run_the_same_failure_stays_red(check):
    assert _run_in_order(_context(_bad_gateway), check)[check].status == "fail"


def test_a_stream_failing_otherwise_than_the_canary_stays_red():
    def handler(request: httpx2.Request) -> httpx2.Response:
        if orjson.loads(request.content).get("stream"):
            return httpx2.Response(200, content=b"data: {not json}\n\n",
                                   headers={"content-type": "text/event-stream"})  # fmt: skip
        return _bad_gateway(request)

    outcomes = _run_in_order(_context(handler), "canary", "streaming")
    assert outcomes["streaming"].status == "fail"
    assert outcomes["streaming"].failure is not None
    assert outcomes["streaming"].failure.code == "malformed_chunk"


def test_repeats_failing_only_in_part_as_the_canary_stay_red():
    answers = iter([_bad_gateway, _bad_gateway, _ok, _bad_gateway])

    def handler(request: httpx2.Request) -> httpx2.Response:
        return next(answers)(request)

    outcomes = _run_in_order(_context(handler), "canary", "canary_repeat")
    assert outcomes["canary_repeat"].status == "fail"


def test_a_canary_that_passed_leaves_a_failing_stream_red():
    def handler(request: httpx2.Request) -> httpx2.Response:
        if orjson.loads(request.content).get("stream"):
            return _bad_gateway(request)
        return _ok(request)

    outcomes = _run_in_order(_context(handler), "canary", "streaming")
    assert outcomes["canary"].status == "pass"
    assert outcomes["streaming"].status == "fail"
