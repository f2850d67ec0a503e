"""``StreamReader.forward`` (the gateway's read of a stream: payloads forwarded, no delta
built) leaves the reader and the attempt's watch exactly as ``step`` does, read by read, and
says when to stop."""

from __future__ import annotations

import itertools

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatcontract.client._guard import AttemptWatch
from chatcontract.client._stream import StreamReader
from chatcontract.wire import StreamParser


def _event(delta: dict[str, object], finish: str | None = None) -> bytes:
    doc = {"id": "c", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
    return b"data: " + orjson.dumps(doc) + b"\n\n"


_TOOL = {"index": 0, "id": "t1", "type": "function", "function": {"name": "f", "arguments": ""}}
_EVENTS = [
    _event({"role": "assistant", "content": ""}),
    _event({"content": "hi"}),
    _event({"content": ""}),
    _event({"reasoning_content": "hmm"}),
    _event({"tool_calls": [_TOOL]}),
    _event({"tool_calls": [{"index": 0, "function": {"arguments": '{"a"'}}]}),
    _event({"tool_calls": [{"index": 1, "id": "t2", "function": {"name": "g"}}]}),
    _event({}, "stop"),
    b": PING\n\n",
]


class _Clock:
    def __init__(self) -> None:
        self._ticks = itertools.count()

    def __call__(self) -> float:
        return float(next(self._ticks))


def _readers() -> tuple[StreamParser, StreamReader, AttemptWatch]:
    parser = StreamParser()
    reader = StreamReader(parser)
    watch = AttemptWatch(clock=_Clock(), budget_s=60.0, first_token_s=10.0, idle_s=10.0)
    return parser, reader, watch


def _state(reader: StreamReader, watch: AttemptWatch) -> tuple[object, ...]:
    return (reader.delivered, watch.token_seen, watch.last_data_at)


def test_a_new_tool_call_without_text_is_delivered():
    parser, reader, watch = _readers()
    parser.feed(_EVENTS[4])
    assert reader.forward(watch) is False
    assert reader.delivered and watch.token_seen


def test_an_empty_content_delta_delivers_nothing():
    parser, reader, watch = _readers()
    parser.feed(_EVENTS[0] + _EVENTS[2])
    assert reader.forward(watch) is False
    assert not reader.delivered and not watch.token_seen


_ERROR_EVENT = b'data: {"error": {"message": "overloaded", "type": "server_error"}}\n\n'
_MALFORMED = b"data: {not json\n\n"


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.lists(st.sampled_from([*_EVENTS, _ERROR_EVENT, _MALFORMED]), max_size=3), max_size=8
    )
)
def test_forward_leaves_the_reader_and_watch_as_step_does_and_counts_pings_and_stops(reads):
    stepped, forwarded = _readers(), _readers()
    for read in reads:
        data = b"".join(read)
        stepped[0].feed(data)
        forwarded[0].feed(data)
        stepped[1].step(stepped[2])
        stop = forwarded[1].forward(forwarded[2])
        assert _state(*forwarded[1:]) == _state(*stepped[1:])
        if not forwarded[1].delivered:  # until text is delivered, both marks move alike
            assert forwarded[1].take() == stepped[1].take() is None
        assert forwarded[1].pings == forwarded[1].ping_count == stepped[1].ping_count
        assert stop is (forwarded[1].early_verdict is not None)


def test_forward_stops_at_an_in_band_error():
    parser, reader, watch = _readers()
    parser.feed(_EVENTS[1])
    assert reader.forward(watch) is False
    parser.feed(_ERROR_EVENT)
    assert reader.forward(watch) is True


@pytest.mark.parametrize(
    ("reads", "delivered"),
    [
        ([_EVENTS[0], _EVENTS[1].rstrip(b"\n")], True),  # the first text lost its blank line
        ([_EVENTS[0], _EVENTS[2].rstrip(b"\n")], False),  # no text at all
        ([_EVENTS[1], _EVENTS[3].rstrip(b"\n")], True),  # delivered before the end
        ([], False),
    ],
    ids=["first-text-at-close", "no-text", "delivered-before", "empty"],
)
def test_forwarded_last_delivers_as_last_does(reads, delivered):
    ended = []
    for end in ("last", "forwarded_last"):
        parser, reader, watch = _readers()
        for read in reads:
            parser.feed(read)
            reader.forward(watch)
        parser.close()
        getattr(reader, end)()
        ended.append(reader.delivered)
    assert ended == [delivered, delivered]
