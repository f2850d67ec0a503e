"""classify(): the public entry point takes str or bytes, and reads a captured SSE stream."""

import json
from dataclasses import replace

import pytest

from chatcontract.contract import Streaming, load_preset
from chatcontract.failures import classify

COMET = load_preset("cometapi")
E5 = '{"error":{"code":"model_not_found","message":"no available channel for group default and model x (distributor) (request id: 2026RID)","type":"comet_api_error"}}'
SSE = {"content-type": "text/event-stream; charset=utf-8"}


def chunk(delta, finish=None):
    body = {
        "id": "c",
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }
    return "data: " + json.dumps(body) + "\n\n"


USAGE = 'data: {"id":"c","model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}\n\n'
PARTIAL = chunk({"role": "assistant", "content": "po"})
COMPLETE = PARTIAL + chunk({"content": "ng"}, "stop") + USAGE + "data: [DONE]\n\n"


@pytest.mark.parametrize("body", [E5, E5.encode()], ids=["str", "bytes"])
def test_the_body_may_be_str_or_bytes(body):
    failure = classify(503, {}, body, contract=COMET)
    assert (failure.category, failure.code, failure.request_id) == (
        "model",
        "model_not_found",
        "2026RID",
    )


def test_a_non_ascii_str_body_is_read_as_utf8():
    body = '{"error":{"type":"comet_api_error","message":"model x has not been priced yet…"}}'
    assert classify(400, {}, body, contract=COMET).message.endswith("yet…")


@pytest.mark.parametrize("body", [COMPLETE, COMPLETE.encode()], ids=["str", "bytes"])
def test_a_complete_captured_stream_is_a_success(body):
    assert classify(200, SSE, body, contract=COMET) is None


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (PARTIAL, "stream_cut"),
        (PARTIAL + "data: [DONE]\n\n", "stream_truncated"),
        (PARTIAL + chunk({}, "stop") + USAGE, "stream_no_done"),
    ],
    ids=["cut", "truncated", "no-done"],
)
def test_a_broken_captured_stream_gets_its_stream_code(body, code):
    failure = classify(200, {**SSE, "x-request-id": "rid-s"}, body, contract=COMET)
    assert (failure.kind, failure.category, failure.code) == ("parser", "contract", code)
    assert failure.request_id == "rid-s"


def test_stream_true_reads_a_stream_without_the_header_and_false_ignores_the_header():
    assert classify(200, {}, PARTIAL, contract=COMET, stream=True).code == "stream_cut"
    assert classify(200, {}, COMPLETE, contract=COMET, stream=True) is None
    not_json = classify(200, SSE, COMPLETE, contract=COMET, stream=False)
    assert (not_json.kind, not_json.code) == ("parser", "invalid_json")


def test_a_stream_failure_uses_the_semantic_checks_and_max_tokens():
    assert classify(200, SSE, COMPLETE, contract=COMET, max_tokens=0).code == (
        "usage_exceeds_max_tokens"
    )


def test_an_error_status_with_a_stream_header_is_still_an_error_body():
    failure = classify(503, SSE, E5, contract=COMET)
    assert failure.category == "model"


def test_the_default_contract_applies_to_streams_too():
    assert classify(200, SSE, PARTIAL).code == "stream_cut"
    assert classify(200, {"Content-Type": "TEXT/EVENT-STREAM"}, PARTIAL).code == "stream_cut"
    assert classify(200, {"content-type": "text/event-streamx"}, PARTIAL).kind == "parser"


@pytest.mark.parametrize(
    ("status", "streamed"),
    [(199, False), (200, True), (299, True), (300, False)],
    ids=["199", "200", "299", "300"],
)
def test_only_a_2xx_body_is_read_as_a_stream(status, streamed):
    failure = classify(status, SSE, COMPLETE, contract=COMET)
    assert (failure is None) is streamed


def test_a_stream_is_judged_by_what_its_request_asked():
    without_usage = PARTIAL + chunk({"content": "ng"}, "stop") + "data: [DONE]\n\n"
    assert classify(200, SSE, without_usage, contract=COMET) is None
    failure = classify(200, SSE, without_usage, contract=COMET, usage_asked=True)
    assert failure.code == "missing_usage"


def test_a_stream_is_judged_by_the_given_contract_not_the_default():
    no_done = PARTIAL + chunk({"content": "ng"}, "stop")
    lenient = replace(
        COMET, streaming=Streaming(used=True, include_usage=False, require_done=False)
    )
    assert classify(200, SSE, no_done, contract=lenient) is None
    assert classify(200, SSE, no_done, contract=COMET) is not None
