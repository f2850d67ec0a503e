"""A tapped stream (the gateway's pass-through) stops where it failed, whichever read brings
what follows: a faster transport hands several events over in one read, and the events after
a malformed chunk or an in-band error must neither be forwarded nor join the partial answer a
continuation starts from."""

from __future__ import annotations

import orjson
import pytest

from chatcontract.wire import StreamParser, StreamVerdict


def _event(text: str) -> bytes:
    chunk = {"id": "c1", "choices": [{"index": 0, "delta": {"content": text}}]}
    return b"data: " + orjson.dumps(chunk) + b"\n\n"


BEFORE = [_event("Here"), _event(" is")]
AFTER = [_event(" more"), _event(" text")]
FAILURES = [
    pytest.param(b'data: {"id": "c1", "choi\n\n', StreamVerdict.MALFORMED_CHUNK, id="malformed"),
    pytest.param(
        b'data: {"error": {"message": "overloaded", "type": "server_error"}}\n\n',
        StreamVerdict.INBAND_ERROR,
        id="in-band-error",
    ),
]


@pytest.mark.parametrize(("failure", "verdict"), FAILURES)
@pytest.mark.parametrize("reads", [1, 2], ids=["one-read", "read-by-read"])
def test_nothing_after_the_failure_is_tapped_or_assembled(failure, verdict, reads):
    parser = StreamParser()
    taken = parser.tap()
    events = [*BEFORE, failure, *AFTER]
    if reads == 1:
        parser.feed(b"".join(events))
    else:
        for event in events:
            parser.feed(event)
    assert [orjson.loads(item)["choices"][0]["delta"]["content"] for item in taken] == [
        "Here",
        " is",
    ]
    result = parser.snapshot()
    assert result.verdict is verdict
    assert result.content == "Here is"
