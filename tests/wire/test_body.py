"""The typed body decoder takes only what the general way's fast path reads the same."""

import json

import orjson
import pytest

from chatcontract.contract.model import ResponseSpec
from chatcontract.wire import parse_completion
from chatcontract.wire._body import decode_body
from chatcontract.wire.completion import _fast_completion, _parse_document_slowly


def _doc(**changes: object) -> dict[str, object]:
    doc: dict[str, object] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "hi", "refusal": None,
                            "annotations": []},
                "logprobs": None,
                "finish_reason": "stop",
            }
        ],
        "usage": {
            "prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": None},
        },
        "service_tier": "default",
        "system_fingerprint": "fp",
    }  # fmt: skip
    doc.update(changes)
    return doc


def _raw(**changes: object) -> bytes:
    return json.dumps(_doc(**changes)).encode()  # any int, unlike orjson


def _message(**changes: object) -> list[dict[str, object]]:
    return [{"message": {"content": "hi", **changes}, "finish_reason": "stop"}]


def test_the_common_body_is_decoded_to_the_values_of_the_fast_path():
    raw = _raw()
    assert decode_body(raw) is not None
    assert parse_completion(raw).completion == _fast_completion(orjson.loads(raw))[0]


@pytest.mark.parametrize(
    "raw",
    [
        _raw(x=1),
        _raw(error={"message": "boom"}),
        _raw(choices=[]),
        _raw(choices=_message() * 2),
        _raw(choices=_message(tool_calls=[])),
        _raw(choices=_message(tool_calls=[None])),
        _raw(choices=_message(tool_calls=[{"id": "c"}])),
        _raw(choices=_message(annotations=[{"type": "url_citation"}])),
        _raw(choices=_message(audio=None)),
        _raw(choices=[{"message": {"content": None}, "finish_reason": "stop"}]),
        _raw(choices=[{"message": {"content": "hi"}, "finish_reason": None}]),
        _raw(created=1.0),
        _raw(created=True),
        _raw(created=2**63),
        _raw(model=None),
        _raw(usage={"prompt_tokens": 1.5}),
        _raw(usage={"prompt_tokens": 2**64}),
        _raw(usage={"latency_checkpoint": "x"}),
        _raw(usage={"details": {"deep": {"x": 1}}}),
        _raw(usage=[]),
        b'{"id": "a", "created": ' + b"9" * 10_000 + b"}",
        _raw()[:-1] + b', "x": ' + b"9" * 10_000 + b"}",
        _raw()[:-1] + b', "x": 1e400}',
        b'{"id": "\xff"}',
        b"",
    ],
    ids=[
        "unknown-member", "error", "no-choice", "two-choices", "tool-calls-empty",
        "tool-calls-null", "tool-calls", "annotations", "unknown-message-member",
        "content-null", "finish-null", "created-float", "created-bool", "created-over-int64",
        "model-null", "usage-float", "usage-over-u64", "usage-string", "usage-nested",
        "usage-array", "10000-digits", "10000-digit-member", "overflowing-member",
        "invalid-utf8", "empty",
    ],
)  # fmt: skip
def test_anything_else_gives_the_result_of_the_general_way(raw):
    result = parse_completion(raw)
    if decode_body(raw) is None:
        try:
            doc = orjson.loads(raw)
        except orjson.JSONDecodeError:
            assert result.completion is None
            return
        if isinstance(doc, dict) and "error" not in doc:
            assert result == _parse_document_slowly(doc, ResponseSpec().required_paths)
    else:  # taken only where the fast path agrees
        assert result.completion == _fast_completion(orjson.loads(raw))[0]


def test_a_repeated_member_reads_as_orjson_reads_it():
    raw = _raw()[:-1] + b', "model": "later"}'
    assert parse_completion(raw).completion.model == orjson.loads(raw)["model"] == "later"


@pytest.mark.parametrize(
    ("raw", "taken"),
    [
        (_raw(choices=_message()), True),
        (_raw(choices=[]), False),
        (_raw(choices=_message() * 2), False),
        (_raw(choices=_message(tool_calls=[])), True),
        (_raw(choices=_message(tool_calls=None)), True),
        (_raw(choices=_message(tool_calls=[None])), False),
        (_raw(choices=_message(annotations=[])), True),
        (_raw(choices=_message(annotations=None)), True),
        (_raw(choices=_message(annotations=[None])), False),
        (_raw(choices=_message(annotations=[{"type": "url_citation"}])), False),
    ],
    ids=[
        "one-choice", "no-choice", "two-choices", "tool-calls-empty", "tool-calls-null",
        "a-null-tool-call", "annotations-empty", "annotations-null", "a-null-annotation",
        "an-annotation",
    ],
)  # fmt: skip
def test_the_typed_decoder_takes_exactly_one_choice_without_tool_calls_or_annotations(raw, taken):
    assert (decode_body(raw) is not None) is taken
