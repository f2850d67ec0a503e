"""The typed (fast) read of a request's facts gives what the general read gives, for any body."""

import orjson
import pytest
from msgspec.structs import replace

from chatcontract.transport import observer
from chatcontract.transport.observer import request_facts

URL = "http://127.0.0.1/v1/chat/completions?key=sk-abcdefghijkl"
TIMEOUT = {"connect": 5.0, "read": 600, "write": 600, "pool": None}

BODIES = {
    "sdk": b'{"model":"gpt-4.1-nano","messages":[{"role":"user","content":"Say hello."}]}',
    "full": orjson.dumps(
        {
            "model": "m",
            "messages": [
                {"role": "system", "content": "s"},
                {"role": "user", "content": [{"type": "text", "text": "caf\u00e9"}]},
                {"role": "assistant", "content": None, "tool_calls": []},
                {"role": "user", "content": "again"},
            ],
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": 64,
            "temperature": 0.2,
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}],
        }
    ),
    "max-completion-tokens-wins": b'{"max_tokens":5,"max_completion_tokens":7}',
    "max-completion-tokens-null": b'{"max_tokens":5,"max_completion_tokens":null}',
    "empty-object": b"{}",
    "nulls": b'{"model":null,"messages":null,"stream":null,"stream_options":null}',
    "model-not-a-string": b'{"model":1,"messages":[]}',
    "messages-not-a-list": b'{"model":"m","messages":{"role":"user"}}',
    "message-not-an-object": b'{"model":"m","messages":["user",{"role":"system"}]}',
    "role-not-a-string": b'{"model":"m","messages":[{"role":1},{"role":"user"}]}',
    "role-missing": b'{"model":"m","messages":[{"content":"x"},{"role":"user"}]}',
    "role-null": b'{"model":"m","messages":[{"role":null}]}',
    "role-repeated-key": b'{"messages":[{"role":"a","role":"b"}]}',
    "model-repeated-key": b'{"model":"a","model":"b"}',
    "repeated-key-of-two-types": b'{"model":1,"model":"b"}',
    "max-tokens-bool": b'{"max_tokens":true}',
    "max-tokens-float": b'{"max_tokens":100.0}',
    "max-tokens-string": b'{"max_tokens":"100"}',
    "max-tokens-negative": b'{"max_tokens":-5}',
    "max-tokens-beyond-64-bits": b'{"max_tokens":18446744073709551616}',
    "max-tokens-below-64-bits": b'{"max_tokens":-9223372036854775809}',
    "max-tokens-largest": b'{"max_tokens":18446744073709551615}',
    "stream-not-a-bool": b'{"stream":1}',
    "stream-false": b'{"stream":false}',
    "stream-options-not-an-object": b'{"stream":true,"stream_options":"include_usage"}',
    "include-usage-not-a-bool": b'{"stream_options":{"include_usage":"yes"}}',
    "include-usage-false": b'{"stream_options":{"include_usage":false}}',
    "a-list": b'[{"model":"m"}]',
    "a-string": b'"model"',
    "a-number": b"1",
    "null": b"null",
    "invalid-json": b'{"model":"m",',
    "trailing-bytes": b'{"model":"m"}x',
    "not-utf8-in-an-unread-field": b'{"model":"m","user":"\xff"}',
    "surrogate-bytes-in-an-unread-field": b'{"model":"m","user":"\xed\xa0\x80"}',
    "lone-surrogate-escape": b'{"model":"m","user":"\\ud800"}',
    "non-ascii-utf8": '{"model":"m\u00e9","messages":[{"role":"\u00fcser"}]}'.encode(),
    "whitespace": b' \n{ "model" : "m" }\n',
    "nan": b'{"model":"m","temperature":NaN}',
    "deep": b'{"model":"m","x":' + b"[" * 1010 + b"]" * 1010 + b"}",
    "too-deep": b'{"model":"m","x":' + b"[" * 1100 + b"]" * 1100 + b"}",
    "empty": b"",
}


@pytest.mark.parametrize("body", list(BODIES.values()), ids=list(BODIES))
def test_the_typed_read_gives_the_facts_the_general_read_gives(body):
    general = request_facts("POST", URL, body, {"x-request-source": "app"}, TIMEOUT)
    fast = request_facts("POST", URL, body, {"x-request-source": "app"}, TIMEOUT, fingerprint=False)
    assert fast == replace(general, shape_fingerprint=None)


class _CountingLoads:
    """Stands in for the ``orjson`` module in the observer: counts the general reads."""

    JSONDecodeError = orjson.JSONDecodeError

    def __init__(self) -> None:
        self.calls = 0

    def loads(self, content: bytes) -> object:
        self.calls += 1
        return orjson.loads(content)


@pytest.fixture
def general_reads(monkeypatch):
    counting = _CountingLoads()
    monkeypatch.setattr(observer, "orjson", counting)
    return counting


def test_a_body_of_the_expected_types_is_read_without_the_general_read(general_reads):
    facts = request_facts("POST", URL, BODIES["full"], {}, None, fingerprint=False)
    assert general_reads.calls == 0
    assert facts.model == "m" and facts.roles == ("assistant", "system", "user")
    assert facts.message_count == 4 and facts.max_tokens == 64 and facts.include_usage


@pytest.mark.parametrize(
    "name",
    [
        "model-not-a-string",
        "role-not-a-string",
        "message-not-an-object",
        "max-tokens-bool",
        "max-tokens-beyond-64-bits",
        "a-list",
        "invalid-json",
        "not-utf8-in-an-unread-field",
        "too-deep",
    ],
)
def test_a_body_the_typed_read_cannot_vouch_for_is_read_the_general_way(general_reads, name):
    request_facts("POST", URL, BODIES[name], {}, None, fingerprint=False)
    assert general_reads.calls == 1


def test_a_fingerprinted_request_is_read_the_general_way(general_reads):
    facts = request_facts("POST", URL, BODIES["sdk"], {}, None)
    assert general_reads.calls == 1
    assert facts.shape_fingerprint is not None


def test_a_number_beyond_a_double_in_an_unread_field_leaves_the_read_facts():
    """The one kept difference: orjson refuses such a body whole, the typed read does not."""
    body = b'{"model":"m","seed":1e400}'
    assert request_facts("POST", URL, body, {}, None).model is None
    assert request_facts("POST", URL, body, {}, None, fingerprint=False).model == "m"
