"""A stream's usage chunk is read by its own typed decoder (``decode_usage_chunk``).

Its counts are checked as a body's are (``_fast_usage``); whatever that way declines (a count
that is no 64-bit non-negative integer, a member of another type, a member the chunk's types
do not know) goes the general way, which reports it. Either way the result is the same: each
case below is compared with the general way alone, tapped and not.
"""

import gc

import orjson
import pytest

from chatcontract.wire import StreamAssembler, StreamParser, StreamResult
from chatcontract.wire import stream as stream_module
from chatcontract.wire._chunk import UsageChunk, decode_usage_chunk

_TAPPED = pytest.mark.parametrize("tapped", [False, True], ids=["assembler", "tapped"])


def _chunk(content: str) -> bytes:
    return orjson.dumps({"id": "c", "model": "m", "created": 1, "choices": [{"index": 0, "delta": {"content": content}}]})  # fmt: skip


def _usage_chunk(usage: object, **top: object) -> bytes:
    doc: dict[str, object] = {"id": "c", "model": "m", "created": 1, "choices": []}
    doc.update(top)
    doc["usage"] = usage
    return orjson.dumps(doc)


_FINISH = orjson.dumps({"id": "c", "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})  # fmt: skip
_DETAILS = {"cached_tokens": 2, "audio_tokens": None}
_COUNTS = {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}


def _feed(payloads: list[bytes], *, tapped: bool) -> tuple[StreamResult, list[bytes] | None]:
    parser = StreamParser(expect_usage=True)
    taken = parser.tap() if tapped else None
    for payload in payloads:  # one event a read: the usage chunk goes one by one
        parser.feed(b"data: " + payload + b"\n\n", now=1.0)
    return parser.close(now=2.0), taken


def _walked(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    walked: list[int] = []
    general = StreamAssembler._take

    def counting(self: StreamAssembler, doc: dict, n: int, now: float | None) -> None:  # type: ignore[type-arg]
        walked.append(n)
        general(self, doc, n, now)

    monkeypatch.setattr(StreamAssembler, "_take", counting)
    return walked


def _general_way(payloads: list[bytes], *, tapped: bool) -> tuple[StreamResult, list[bytes] | None]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(stream_module, "decode_usage_chunk", lambda raw: None)
        return _feed(payloads, tapped=tapped)


@_TAPPED
@pytest.mark.parametrize(
    "usage",
    [
        _COUNTS
        | {"prompt_tokens_details": _DETAILS, "completion_tokens_details": {"reasoning_tokens": 0}},
        _COUNTS,
        {},
        {"prompt_tokens": None, "completion_tokens": 3, "total_tokens": None},
        {"total_tokens": 8, "completion_tokens": 3, "prompt_tokens": 5},  # another order
        _COUNTS | {"cost": 7},  # another member: a count like the others
        _COUNTS | {"reasoning_tokens": 4},
        _COUNTS | {"prompt_tokens_details": {"cached_tokens": -3}},  # neither way checks details
    ],
    ids=[
        "details",
        "counts",
        "empty",
        "null-counts",
        "other-order",
        "other-member",
        "other-tokens",
        "negative-detail",
    ],
)
def test_a_usage_chunk_of_counts_is_read_the_typed_way(monkeypatch, tapped, usage):
    payloads = [_chunk("a"), _chunk("b"), _FINISH, _usage_chunk(usage), b"[DONE]"]
    expected = _general_way(payloads, tapped=tapped)
    walked = _walked(monkeypatch)
    assert _feed(payloads, tapped=tapped) == expected
    assert walked == []
    result, taken = expected
    assert result.usage is not None and dict(result.usage.details) == {
        name: value for name, value in usage.items() if name not in _COUNTS
    }
    if tapped:
        assert taken == payloads[:-1]


@_TAPPED
@pytest.mark.parametrize(
    "usage",
    [
        _COUNTS | {"prompt_tokens": -1},  # typed, but the counts check declines it
        _COUNTS | {"completion_tokens": 2**63},  # past 64 bits signed
        _COUNTS | {"total_tokens": 8.0},
        _COUNTS | {"cost": 0.25},
        _COUNTS | {"reasoning_tokens": "4"},
        _COUNTS | {"prompt_tokens_details": {"cached_tokens": {"nested": 1}}},
        _COUNTS | {"reasoning_tokens": None, "audio_tokens": {"x": 1}},
        [1, 2],
    ],
    ids=[
        "negative",
        "past-64-bits",
        "float-count",
        "float-member",
        "string-tokens",
        "nested-object",
        "object-tokens",
        "array",
    ],
)
def test_a_usage_chunk_the_typed_way_declines_is_walked_to_the_same_result(
    monkeypatch, tapped, usage
):
    payloads = [_chunk("a"), _FINISH, _usage_chunk(usage), b"[DONE]"]
    expected = _general_way(payloads, tapped=tapped)
    walked = _walked(monkeypatch)
    assert _feed(payloads, tapped=tapped) == expected
    assert walked == [2]


@_TAPPED
def test_a_usage_chunk_with_a_member_the_chunk_does_not_know_is_walked(monkeypatch, tapped):
    payloads = [_chunk("a"), _FINISH, _usage_chunk(_COUNTS, x_provider="p"), b"[DONE]"]
    expected = _general_way(payloads, tapped=tapped)
    walked = _walked(monkeypatch)
    assert _feed(payloads, tapped=tapped) == expected
    assert walked == [2]
    assert expected[0].usage is not None and expected[0].usage.total_tokens == 8


@_TAPPED
def test_a_usage_chunk_with_a_choice_is_assembled_as_any_chunk(monkeypatch, tapped):
    # LiteLLM's: the usage on a chunk whose choice carries nothing, or the last text
    with_choice = _usage_chunk(_COUNTS, choices=[{"index": 0, "delta": {"content": "z"}, "finish_reason": "stop"}])  # fmt: skip
    payloads = [_chunk("a"), with_choice, b"[DONE]"]
    expected = _general_way(payloads, tapped=tapped)
    walked = _walked(monkeypatch)
    assert _feed(payloads, tapped=tapped) == expected
    assert walked == []
    result = expected[0]
    assert (result.content, result.finish_reason, result.chunk_count) == ("az", "stop", 2)


@_TAPPED
@pytest.mark.parametrize(("after", "tried"), [(7, True), (8, False)], ids=["seven", "eight"])
def test_a_usage_chunk_starts_the_refusal_count_again(monkeypatch, tapped, after, tried):
    odd = orjson.dumps({"id": "c", "choices": [{"index": 0, "delta": {"content": "o"}}], "x": 1})
    seen: list[bool] = []
    single = stream_module.decode_chunk

    def counting(raw: bytes) -> object:
        chunk = single(raw)
        seen.append(chunk is not None)
        return chunk

    monkeypatch.setattr(stream_module, "decode_chunk", counting)
    payloads = [odd] * 7 + [_usage_chunk(_COUNTS)] + [odd] * after + [_chunk("c")]
    result, _ = _feed(payloads, tapped=tapped)
    # seven refusals, the usage chunk taken: the count starts again from there (seven more
    # are not eight in a row, "c" is tried; eight are, and nothing is tried any more)
    assert seen == [False] * (7 + after) + ([True] if tried else [])
    assert result.content == "o" * (7 + after) + "c"


def test_the_usage_decoder_refuses_what_is_no_usage_chunk():
    assert decode_usage_chunk(_chunk("a")) is None  # no usage member
    assert decode_usage_chunk(_usage_chunk(None)) is None
    assert decode_usage_chunk(b'{"usage":{}') is None  # cut
    assert decode_usage_chunk(b"\xff") is None
    chunk = decode_usage_chunk(_usage_chunk(_COUNTS, system_fingerprint="fp"))
    assert isinstance(chunk, UsageChunk)
    assert (chunk.id, chunk.system_fingerprint, chunk.usage) == ("c", "fp", _COUNTS)


def test_a_decoded_usage_chunk_is_not_tracked_by_the_garbage_collector():
    # gc=False: it holds strings, numbers, dicts of them and chunk structs, never a cycle
    chunk = decode_usage_chunk(_usage_chunk(_COUNTS | {"prompt_tokens_details": _DETAILS}))
    assert chunk is not None and not gc.is_tracked(chunk)
