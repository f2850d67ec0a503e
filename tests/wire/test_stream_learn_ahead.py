"""A read of several events looks for the chunk template before it is decoded.

A stream's first read often brings many events at once (a fast provider, a pass-through
proxy's upstream): before it is decoded, the template is looked for in its first payload,
else its second (the first chunk of an OpenAI-style stream carries only the role), so the
plain chunks of that very read go through it. What comes before the chunk it was learned from
is taken alone, as it would have been; the rest only when the stream is still on the typed
way. Results are those of one event per read, tapped or not.
"""

import orjson
import pytest

from chatcontract.wire import StreamParser, StreamResult
from chatcontract.wire import stream as stream_module
from chatcontract.wire._chunk import ChunkTemplate

_TAPPED = pytest.mark.parametrize("tapped", [False, True], ids=["assembler", "tapped"])
_ROLE = orjson.dumps(
    {"id": "c", "model": "m", "created": 1, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}
)  # fmt: skip
_FINISH = orjson.dumps(
    {"id": "c", "model": "m", "created": 1, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
)  # fmt: skip
_USAGE = orjson.dumps(
    {"id": "c", "model": "m", "created": 1, "choices": [],
     "usage": {"prompt_tokens": 1, "completion_tokens": 3, "total_tokens": 4}}
)  # fmt: skip
_DONE = b"[DONE]"


def _chunk(content: str, **top: object) -> bytes:
    doc: dict[str, object] = {"id": "c", "model": "m", "created": 1}
    doc["choices"] = [{"index": 0, "delta": {"content": content}}]
    doc.update(top)
    return orjson.dumps(doc)


def _odd(content: str = "o") -> bytes:
    """A good chunk the typed decoder refuses (an unknown member)."""
    return _chunk(content, x_cost=1)


def _events(*payloads: bytes) -> bytes:
    return b"".join(b"data: " + payload + b"\n\n" for payload in payloads)


def _feed(reads: list[bytes], *, tapped: bool) -> tuple[StreamResult, list[bytes] | None]:
    parser = StreamParser(expect_usage=True)
    taken = parser.tap() if tapped else None
    for read in reads:
        parser.feed(read, now=1.0)
    return parser.close(now=2.0), taken


def _both_ways(
    before: list[bytes], payloads: list[bytes], *, tapped: bool
) -> tuple[StreamResult, list[bytes] | None]:
    """``payloads`` in one read (after the reads ``before``), checked against one event a
    read: the same result and the same tap."""
    one_by_one = _feed(before + [_events(payload) for payload in payloads], tapped=tapped)
    at_once = _feed([*before, _events(*payloads)], tapped=tapped)
    assert at_once == one_by_one
    return at_once


class _Seen:
    """The payloads a template is looked for in, the template batches and the typed calls."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.learned: list[bytes] = []
        self.runs: list[int] = []  # payloads read through a template, per call
        self.typed = 0  # decode_chunk and decode_chunks calls
        learn, contents = stream_module.learn_template, ChunkTemplate.contents
        single, batch = stream_module.decode_chunk, stream_module.decode_chunks

        def learning(raw: bytes) -> object:
            self.learned.append(raw)
            return learn(raw)

        def through(template: ChunkTemplate, payloads: list[bytes]) -> object:
            texts = contents(template, payloads)
            if texts is not None:
                self.runs.append(len(payloads))
            return texts

        def typed(call):  # type: ignore[no-untyped-def]
            def counted(arg):  # type: ignore[no-untyped-def]
                self.typed += 1
                return call(arg)

            return counted

        monkeypatch.setattr(stream_module, "learn_template", learning)
        monkeypatch.setattr(ChunkTemplate, "contents", through)
        monkeypatch.setattr(stream_module, "decode_chunk", typed(single))
        monkeypatch.setattr(stream_module, "decode_chunks", typed(batch))


@_TAPPED
def test_a_first_read_goes_through_the_template_of_its_second_chunk(monkeypatch, tapped):
    seen = _Seen(monkeypatch)
    payloads = [_ROLE, *map(_chunk, "abc"), _FINISH, _USAGE, _DONE]
    result, taken = _feed([_events(*payloads)], tapped=tapped)
    assert seen.learned == [_ROLE, _chunk("a")]  # the role's delta does not open with content
    assert seen.runs == [3]  # the plain chunks, in one pass
    assert seen.typed == 2  # the role alone, then the finish (the usage chunk: its own)
    assert (result.content, result.chunk_count, result.usage.total_tokens) == ("abc", 6, 4)
    assert result.ok and result.finish_reason == "stop"
    if tapped:
        assert taken == payloads[:-1]


@_TAPPED
def test_a_first_read_that_opens_with_a_plain_chunk_learns_from_it(monkeypatch, tapped):
    seen = _Seen(monkeypatch)
    result, taken = _feed([_events(*map(_chunk, "abc"))], tapped=tapped)
    assert (seen.learned, seen.runs, seen.typed) == ([_chunk("a")], [3], 0)
    assert (result.content, result.chunk_count) == ("abc", 3)
    if tapped:
        assert taken == [_chunk(text) for text in "abc"]


@_TAPPED
def test_what_follows_done_in_a_first_read_is_ignored(monkeypatch, tapped):
    seen = _Seen(monkeypatch)
    result, taken = _both_ways([], [_DONE, _chunk("a"), _chunk("b")], tapped=tapped)
    assert seen.learned[0] == _chunk("a")  # [DONE] first: the template is in the second
    # what follows [DONE] is ignored, never assembled nor tapped, whichever way it came
    assert (result.content, result.chunk_count, result.done_seen) == ("", 0, True)
    assert taken == ([] if tapped else None)


@_TAPPED
def test_a_malformed_chunk_before_the_template_ends_the_stream_there(monkeypatch, tapped):
    _Seen(monkeypatch)
    result, taken = _both_ways([], [b'{"choices":[}', _chunk("a"), _chunk("b")], tapped=tapped)
    assert result.verdict == "malformed_chunk"
    assert taken == ([] if tapped else None)  # nothing after it is forwarded


#: A good chunk the typed decoder refuses and no template can be learned from (its delta
#: opens with the role).
_ODD_ROLE = orjson.dumps(
    {"id": "c", "choices": [{"index": 0, "delta": {"role": "assistant", "content": "r"}}], "x": 1}
)


@_TAPPED
@pytest.mark.parametrize(
    ("refusals", "given_up"), [(7, True), (6, False)], ids=["eighth-refusal", "seventh-refusal"]
)
def test_the_rest_of_a_read_goes_one_by_one_once_the_typed_way_is_given_up(
    monkeypatch, tapped, refusals, given_up
):
    seen = _Seen(monkeypatch)
    before = [_events(_odd()) for _ in range(refusals)]
    # one more refusal, before the template's chunks in the same read
    result, _ = _both_ways(before, [_ODD_ROLE, _chunk("a"), _chunk("b")], tapped=tapped)
    assert result.content == "o" * refusals + "rab"
    seen.runs.clear()
    seen.learned.clear()
    _feed([*before, _events(_ODD_ROLE, _chunk("a"), _chunk("b"))], tapped=tapped)
    assert seen.learned == [_ODD_ROLE, _chunk("a")]
    # given up: the general way, one by one; else through the template just learned
    assert seen.runs == ([] if given_up else [2])


@_TAPPED
def test_only_a_first_payload_without_the_template_is_taken_alone(monkeypatch, tapped):
    seen = _Seen(monkeypatch)
    # the last payload is the template's too: what is taken alone is the first
    result, _ = _feed([_events(_ROLE, *map(_chunk, "abc"))], tapped=tapped)
    assert (seen.runs, seen.typed, result.content) == ([3], 1, "abc")


@_TAPPED
@pytest.mark.parametrize("first", [_DONE, b"\xff{", b"}"], ids=["done", "not-ascii", "brace"])
def test_a_payload_that_opens_no_json_object_is_not_searched(monkeypatch, tapped, first):
    seen = _Seen(monkeypatch)
    _feed([_events(first, _chunk("a"), _chunk("b"))], tapped=tapped)
    assert seen.learned == [_chunk("a")]


@_TAPPED
@pytest.mark.parametrize(("after", "tried"), [(7, True), (8, False)], ids=["seven", "eight"])
def test_a_read_decoded_in_one_typed_call_starts_the_refusal_count_again(
    monkeypatch, tapped, after, tried
):
    seen = _Seen(monkeypatch)
    reads = [_events(_odd()) for _ in range(7)] + [_events(_ROLE, _ROLE)]  # no template
    reads += [_events(_odd()) for _ in range(after)] + [_events(_chunk("c"))]
    result, _ = _feed(reads, tapped=tapped)
    # the two roles in one call; then seven refusals are not eight in a row ("c" is tried),
    # eight are (nothing is tried any more)
    assert seen.typed == 7 + 1 + after + tried
    assert result.content == "o" * (7 + after) + "c"


@_TAPPED
@pytest.mark.parametrize(
    ("roles", "learned"),
    [(2, [_ROLE, _ROLE]), (3, [_ROLE, _ROLE, _ROLE]), (4, [_ROLE, _ROLE, _ROLE])],
    ids=["two", "three", "four"],
)
def test_after_a_typed_call_the_template_is_looked_for_in_its_last_chunk_not_tried_before(
    monkeypatch, tapped, roles, learned
):
    seen = _Seen(monkeypatch)
    _feed([_events(*[_ROLE] * roles)], tapped=tapped)
    # two: both were tried before; three and more: the last one (another try)
    assert seen.learned == learned
    assert seen.typed == 1  # one call for all of them


@_TAPPED
def test_a_known_template_is_not_looked_for_again_in_a_typed_call(monkeypatch, tapped):
    seen = _Seen(monkeypatch)
    # a member after the choices: not the template's (learned from "a"), the typed decoder's
    later = [orjson.dumps({"id": "c", "model": "m", "created": 1, "choices": [{"index": 0, "delta": {"content": t}}], "system_fingerprint": "fp"}) for t in "bcd"]  # fmt: skip
    result, _ = _feed([_events(_chunk("a")), _events(*later)], tapped=tapped)
    assert (seen.learned, seen.typed, result.content) == ([_chunk("a")], 2, "abcd")


@_TAPPED
def test_a_read_through_the_template_starts_the_refusal_count_again(monkeypatch, tapped):
    seen = _Seen(monkeypatch)
    reads = [_events(_odd()) for _ in range(7)] + [_events(_chunk("a"), _chunk("b"))]
    reads += [_events(_odd()) for _ in range(7)] + [_events(_chunk("c"))]
    result, _ = _feed(reads, tapped=tapped)
    assert seen.runs == [2]
    # after the template's two, seven refusals are not eight in a row: "c" is tried again
    assert seen.typed == 14  # not given up after the 8th refusal counted from the start
    assert result.content == "o" * 7 + "ab" + "o" * 7 + "c"


@_TAPPED
def test_a_template_is_looked_for_in_at_most_two_chunks_of_a_read_before_it(monkeypatch, tapped):
    seen = _Seen(monkeypatch)
    role = [_ROLE, _ROLE, _ROLE]
    _feed([_events(*role, _chunk("a"), _chunk("b"))], tapped=tapped)
    # the first two before the read is decoded; then, decoded, the last of the typed run
    assert seen.learned == [_ROLE, _ROLE, _chunk("b")]
