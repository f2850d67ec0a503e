"""Negative checks name what the server answered, in its own terms."""

from __future__ import annotations

import asyncio
import contextlib

import httpx2
import pytest
from check_targets import context_against, target_of, with_deadline_ms

from chatcontract.checks.context import CheckContext, SuiteOptions
from chatcontract.checks.negative import check_missing_auth
from chatcontract.checks.suite import CHECKS
from chatcontract.contract import load_preset
from raw_servers import COMPLETION, RawServer, read_request_fields, response

NEGATIVE_CHECKS = [spec.id for spec in CHECKS if spec.negative]


async def _401_head_then_silence(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, server: RawServer
) -> None:
    """A request without the key gets a 401 head and never its body; a request with the key
    (the valid request a wrong answer is compared with) gets a good answer."""
    request = await read_request_fields(reader, server)
    if request is None:
        return
    if b"authorization" in request[0]:
        writer.write(response(200, COMPLETION))
        await writer.drain()
        return
    writer.write(
        b"HTTP/1.1 401 Unauthorized\r\ncontent-type: application/json\r\n"
        b"content-length: 100\r\n\r\n"
    )
    await writer.drain()
    with contextlib.suppress(TimeoutError):  # the body never comes; the client gives up
        await asyncio.wait_for(reader.read(1), timeout=10)


def test_a_401_whose_body_never_comes_is_not_called_an_answer():
    contract = with_deadline_ms(load_preset("openai"), 300)
    with context_against(_401_head_then_silence, contract) as (ctx, _):
        outcome = check_missing_auth(ctx)
    # The caller gets a timeout, not the 401 (so the verdict stands), and the report says why
    # instead of "got HTTP 401, not an auth error".
    assert outcome.status == "fail"
    assert outcome.observed.startswith(
        "a request without the key got HTTP 401 but not its body, not an auth error "
        "(classified transport/timeout/deadline"
    ), outcome.observed


def _mock_context(handler, options: SuiteOptions | None = None) -> CheckContext:
    options = SuiteOptions() if options is None else options
    target = target_of(load_preset("openai"))
    return CheckContext.open(target, options, inner=httpx2.MockTransport(handler))


@pytest.mark.parametrize(
    ("answer", "classified"),
    [
        (
            httpx2.Response(302, headers={"location": "http://203.0.113.7/v1/chat/completions"}),
            "http/endpoint/redirect",
        ),
        (httpx2.Response(503, text="upstream down"), "http/upstream/server_error"),
    ],
    ids=["redirect", "plain-text-5xx"],
)
@pytest.mark.parametrize("check", NEGATIVE_CHECKS)
def test_a_wrong_answer_every_request_gets_is_the_canarys_not_a_red_negative_check(
    check, answer, classified
):
    ctx = _mock_context(lambda _request: answer)
    try:
        outcome = next(spec for spec in CHECKS if spec.id == check).fn(ctx)
    finally:
        ctx.close()
    assert outcome.status == "skip", outcome.observed
    assert outcome.failure is None
    assert outcome.observed.startswith("cannot judge: ")
    assert outcome.observed.endswith(
        f"and so did the contract's valid request ({classified}): the endpoint answers every "
        "request this way, which the canary judges"
    )
    assert outcome.evidence["control"] == classified


def test_the_valid_request_is_sent_once_per_run_whichever_negative_check_needs_it():
    sent: list[httpx2.Request] = []

    def down(request: httpx2.Request) -> httpx2.Response:
        sent.append(request)
        return httpx2.Response(503, text="upstream down")

    ctx = _mock_context(down)
    try:
        outcomes = [
            next(spec for spec in CHECKS if spec.id == check).fn(ctx) for check in NEGATIVE_CHECKS
        ]
    finally:
        ctx.close()
    assert [outcome.status for outcome in outcomes] == ["skip"] * len(NEGATIVE_CHECKS)
    assert len(sent) == len(NEGATIVE_CHECKS) + 1  # each check's request, and one control


@pytest.mark.parametrize("check", NEGATIVE_CHECKS)
def test_without_the_canary_in_the_run_a_wrong_answer_every_request_gets_stays_red(check):
    # Skipped, the clause would let `validate --check missing_auth` pass an endpoint that
    # answers nothing: no other check of that run turns red for it.
    down = httpx2.Response(503, text="upstream down")
    ctx = _mock_context(lambda _request: down, SuiteOptions(only=(check,)))
    try:
        outcome = next(spec for spec in CHECKS if spec.id == check).fn(ctx)
    finally:
        ctx.close()
    assert outcome.status == "fail", outcome.observed
    assert outcome.failure is not None
    assert any(
        "the contract's valid request got the same (http/upstream/server_error)" in note
        and "run the canary" in note
        for note in outcome.notes
    ), outcome.notes


def test_with_the_canary_selected_a_wrong_answer_every_request_gets_is_skipped():
    down = httpx2.Response(503, text="upstream down")
    options = SuiteOptions(only=("canary", "missing_auth"))
    ctx = _mock_context(lambda _request: down, options)
    try:
        outcome = check_missing_auth(ctx)
    finally:
        ctx.close()
    assert outcome.status == "skip", outcome.observed
