"""classify_stream: each stream verdict, the usage the contract asked for, then the semantics."""

import json
from dataclasses import replace

import pytest

from chatcontract.contract import ErrorTable, Streaming, load_preset
from chatcontract.failures import classify_stream
from chatcontract.wire import parse_stream

COMET = load_preset("cometapi")
NO_USAGE = replace(COMET, streaming=Streaming(used=True, include_usage=False, require_done=True))
USAGE = {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}


def chunk(delta=None, finish=None, **extra):
    body = {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "gpt-4.1-nano",
        "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}],
        **extra,
    }
    return b"data: " + json.dumps(body).encode() + b"\n\n"


def usage_chunk(usage=USAGE):
    body = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "choices": [], "usage": usage}
    return b"data: " + json.dumps(body).encode() + b"\n\n"


DONE = b"data: [DONE]\n\n"
START = chunk({"role": "assistant", "content": "po"}) + chunk({"content": "ng"})
COMPLETE = START + chunk(finish="stop") + usage_chunk() + DONE


def verdict_of(body, *, contract=COMET, stalled=False, **kwargs):
    result = parse_stream([body], contract=contract, stalled=stalled)
    return classify_stream(result, contract=contract, **kwargs)


def test_a_complete_stream_is_a_success():
    assert verdict_of(COMPLETE) is None


@pytest.mark.parametrize(
    ("body", "stalled", "kind", "category", "code", "retry"),
    [
        (START, False, "parser", "contract", "stream_cut", "fallback"),
        (START + DONE, False, "parser", "contract", "stream_truncated", "fallback"),
        (
            START + chunk(finish="stop") + usage_chunk(),
            False,
            "parser",
            "contract",
            "stream_no_done",
            "fallback",
        ),
        (START, True, "transport", "timeout", "stream_stalled", "retry"),
        (
            START + b"data: {not json\n\n" + DONE,
            False,
            "parser",
            "contract",
            "malformed_chunk",
            "fallback",
        ),
    ],
    ids=["cut", "truncated", "no-done", "stalled", "malformed"],
)
def test_each_failing_verdict_has_its_row(body, stalled, kind, category, code, retry):
    failure = verdict_of(body, stalled=stalled, status=200)
    assert (failure.kind, failure.category, failure.code, failure.retry) == (
        kind,
        category,
        code,
        retry,
    )
    assert failure.status == 200


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("stream_cut", "the stream closed mid-answer: no finish_reason, no [DONE]"),
        ("stream_truncated", "[DONE] arrived without any finish_reason: the answer is incomplete"),
        ("stream_no_done", "finish_reason seen but the stream closed without [DONE]"),
        ("stream_stalled", "no stream data within the idle limit"),
        ("malformed_chunk", "a stream chunk is not valid JSON or has the wrong shape"),
    ],
    ids=["cut", "truncated", "no-done", "stalled", "malformed"],
)
def test_each_verdict_says_what_happened(code, message):
    bodies = {
        "stream_cut": (START, False),
        "stream_truncated": (START + DONE, False),
        "stream_no_done": (START + chunk(finish="stop") + usage_chunk(), False),
        "stream_stalled": (START, True),
        "malformed_chunk": (START + b"data: {not json\n\n", False),
    }
    body, stalled = bodies[code]
    assert verdict_of(body, stalled=stalled).message == message


def test_an_in_band_error_event_is_an_api_error_classified_by_the_rules():
    error = b'data: {"error":{"message":"no available channel (request id: r1)","code":"model_not_found"}}\n\n'
    failure = verdict_of(START + error, status=200)
    assert (failure.kind, failure.category, failure.code) == (
        "api_error",
        "model",
        "model_not_found",
    )
    assert failure.request_id == "r1"


def test_missing_usage_is_a_usage_failure_only_when_the_contract_asks_for_it():
    body = START + chunk(finish="stop") + DONE
    failure = verdict_of(body)
    assert (failure.kind, failure.category, failure.code) == ("parser", "usage", "missing_usage")
    assert failure.message == (
        "the request asked for a usage chunk (stream_options.include_usage) but none arrived"
    )
    assert verdict_of(body, contract=NO_USAGE) is None


def test_a_complete_stream_still_gets_the_semantic_checks():
    empty = chunk({"role": "assistant"}) + chunk(finish="stop") + usage_chunk() + DONE
    failure = verdict_of(empty)
    assert (failure.kind, failure.category, failure.code) == (
        "semantic",
        "content",
        "empty_content",
    )
    over = verdict_of(COMPLETE, max_tokens=1)
    assert (over.category, over.code) == ("usage", "usage_exceeds_max_tokens")
    assert verdict_of(COMPLETE, max_tokens=2) is None


def test_secrets_are_redacted_from_stream_failures():
    error = b'data: {"error":{"message":"bad key sk-secret-123456789","code":"oops"}}\n\n'
    failure = verdict_of(START + error, secrets=("sk-secret-123456789",))
    assert "sk-secret" not in failure.message


def test_the_default_contract_is_the_cometapi_preset():
    result = parse_stream([START + chunk(finish="stop") + DONE], contract=COMET)
    assert classify_stream(result).code == "missing_usage"


def test_an_in_band_stream_error_no_rule_names_is_upstream_not_a_status_fallback():
    bare = replace(COMET, errors=ErrorTable(rules=()))
    error = b'data: {"error":{"message":"overloaded","code":"busy"}}\n\n'
    failure = verdict_of(START + error, contract=bare, status=200)
    assert (failure.kind, failure.category, failure.code) == ("api_error", "upstream", "busy")


def test_the_default_status_of_a_stream_is_200():
    result = parse_stream([START], contract=COMET)
    assert classify_stream(result, contract=COMET).status == 200


AFTER_DONE = COMPLETE + chunk({"content": "late"})


def test_data_after_done_on_a_sound_answer_is_its_own_tolerated_failure():
    failure = verdict_of(AFTER_DONE)
    assert (failure.kind, failure.category, failure.code) == (
        "parser",
        "contract",
        "data_after_done",
    )
    assert "after [DONE]" in failure.message
    assert failure.retry == "fallback"  # the contract category's decision: validate judges it


@pytest.mark.parametrize(
    ("body", "code"),
    [
        # the stream's own verdict first
        (START + DONE + chunk({"content": "late"}), "stream_truncated"),
        # then the usage the request asked for
        (START + chunk(finish="stop") + DONE + usage_chunk(), "missing_usage"),
        # then the answer itself: an empty one is not rescued by its framing
        (chunk(finish="stop") + usage_chunk() + DONE + chunk({"content": "x"}), "empty_content"),
    ],
)
def test_data_after_done_names_the_stream_only_when_nothing_else_is_wrong(body, code):
    assert verdict_of(body).code == code


def test_only_data_after_done_is_named_so_not_any_violation_of_a_complete_stream():
    # An absurd ``retry:`` field is recorded on a complete stream, and judged by validate only.
    body = b"retry: 99999999999999\n\n" + COMPLETE
    assert [v.kind.value for v in parse_stream([body]).violations] == ["invalid_field"]
    assert verdict_of(body) is None
    assert verdict_of(body + chunk({"content": "late"})).code == "data_after_done"
