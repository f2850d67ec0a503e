"""Which way a stream's chunks are read, and what each way must keep.

The result never depends on the way (``test_stream_fast_path.py`` and
``test_stream_tap_fast_path.py`` compare the ways on any stream); what the first tests pin is
that the common chunks take the cheap ways: a read of several chunks decoded by the typed
decoder in one call, and the typed decoder given up after eight refusals in a row (a
provider whose chunks carry other members), not before, and not for good after refusals
that are not in a row. A change that only makes a fast way decline more often (same result,
slower) is caught only by a test that watches the way (docs/mutation.md).

The others pin what a way must keep whichever it is: the first ``id``, ``model`` and
``created`` of a stream, the first token's moment, a bad index never assembled, and what a
pass-through reader is given (never a rejected chunk, nothing after ``[DONE]``).
"""

import orjson
import pytest

from chatcontract.wire import StreamAssembler, StreamParser, StreamResult, ViolationKind
from chatcontract.wire import stream as stream_module
from chatcontract.wire._chunk import ChunkTemplate, decode_chunk


def _chunk(content: str = "w", **top: object) -> bytes:
    doc: dict[str, object] = {"id": "c", "model": "m", "created": 1}
    doc["choices"] = [{"index": 0, "delta": {"content": content}}]
    doc.update(top)
    return orjson.dumps(doc)


def _odd(content: str = "o") -> bytes:
    """A good chunk the typed decoder refuses (an unknown member): the general way reads it."""
    return _chunk(content, x_cost=1)


def _events(*payloads: bytes) -> bytes:
    return b"".join(b"data: " + payload + b"\n\n" for payload in payloads)


class _Ways:
    """Counts the typed decoder's calls and what it accepted."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        # decode_chunk or one payload through a template: accepted or not, per call
        self.single: list[bool] = []
        self.batches = 0  # held reads read in one call: decode_chunks, or a template's
        real_single = stream_module.decode_chunk
        real_batch = stream_module.decode_chunks
        real_contents = ChunkTemplate.contents

        def contents(template: ChunkTemplate, payloads: list[bytes]) -> object:
            texts = real_contents(template, payloads)
            self.batches += texts is not None  # else decode_chunks is called next
            return texts

        monkeypatch.setattr(ChunkTemplate, "contents", contents)
        real_content = ChunkTemplate.content

        def content(template: ChunkTemplate, payload: bytes) -> object:
            text = real_content(template, payload)
            if text is not None:  # a chunk the template took (else decode_chunk is next)
                self.single.append(True)
            return text

        monkeypatch.setattr(ChunkTemplate, "content", content)

        def single(raw: bytes) -> object:
            chunk = real_single(raw)
            self.single.append(chunk is not None)
            return chunk

        def batch(payloads: list[bytes]) -> object:
            self.batches += 1
            return real_batch(payloads)

        monkeypatch.setattr(stream_module, "decode_chunk", single)
        monkeypatch.setattr(stream_module, "decode_chunks", batch)


def _feed(reads: list[bytes], *, tapped: bool) -> tuple[StreamResult, list[bytes] | None]:
    parser = StreamParser()
    taken = parser.tap() if tapped else None
    for moment, read in enumerate(reads):
        parser.feed(read, now=float(moment))
    return parser.close(), taken


_TAPPED = pytest.mark.parametrize("tapped", [False, True], ids=["assembler", "tapped"])


@_TAPPED
def test_a_read_of_several_common_chunks_is_decoded_in_one_call(monkeypatch, tapped):
    ways = _Ways(monkeypatch)
    result, _ = _feed([_events(_chunk("a"), _chunk("b"), _chunk("c"))], tapped=tapped)
    assert (ways.batches, ways.single) == (1, [])
    assert (result.content, result.chunk_count) == ("abc", 3)


@_TAPPED
@pytest.mark.parametrize(
    ("refusals", "tried"), [(7, True), (8, False)], ids=["seven-refusals", "eight-refusals"]
)
@pytest.mark.parametrize("reset", [False, True], ids=["from-the-start", "after-a-reset"])
def test_the_typed_decoder_is_given_up_after_eight_refusals_in_a_row(
    monkeypatch, tapped, refusals, tried, reset
):
    ways = _Ways(monkeypatch)
    # after a reset: seven refusals, then a chunk it takes, which starts the count again
    before = [_events(_odd()) for _ in range(7)] + [_events(_chunk("r"))] if reset else []
    reads = before + [_events(_odd()) for _ in range(refusals)]
    reads += [_events(_chunk("a")), _events(_chunk("b"), _chunk("c"))]
    result, _ = _feed(reads, tapped=tapped)
    if reset:
        assert ways.single[:8] == [False] * 7 + [True]
        del ways.single[:8]
    assert ways.single[:refusals] == [False] * refusals
    if tried:  # the next chunk is taken by it, and a read of two in one call
        assert (ways.single[refusals:], ways.batches) == ([True], 1)
    else:  # nothing is tried any more, not even a batch
        assert (len(ways.single), ways.batches) == (refusals, 0)
    assert result.content == ("o" * 7 + "r" if reset else "") + "o" * refusals + "abc"


@_TAPPED
@pytest.mark.parametrize("run", [1, 7], ids=["one-refusal-at-a-time", "seven-in-a-row"])
def test_refusals_that_are_not_in_a_row_never_give_the_typed_decoder_up(monkeypatch, tapped, run):
    ways = _Ways(monkeypatch)
    reads = [_events(_odd()) for _ in range(run)] + [_events(_chunk("a"))]
    result, _ = _feed(reads * 5, tapped=tapped)
    assert ways.single == ([False] * run + [True]) * 5
    assert result.content == ("o" * run + "a") * 5


@pytest.mark.parametrize(
    ("tapped", "payload"),
    [
        pytest.param(False, b"", id="assembler-blank"),
        pytest.param(False, b"  ", id="assembler-spaces"),
        pytest.param(False, b"~", id="assembler-tilde"),
        pytest.param(False, b"\xc3\xa9", id="assembler-non-ascii"),
        pytest.param(True, b"", id="tapped-blank"),
        pytest.param(True, b"  ", id="tapped-spaces"),
    ],
)
def test_payloads_that_are_no_json_object_never_count_as_refusals(monkeypatch, tapped, payload):
    # Blank data events are keep-alives. The others are malformed chunks, after which a
    # tapped stream takes nothing more: they are fed to the assembler's way only.
    ways = _Ways(monkeypatch)
    result, _ = _feed([_events(payload)] * 9 + [_events(_chunk("a"))], tapped=tapped)
    assert ways.single == [True]
    assert result.content == "a"


@pytest.mark.parametrize(
    "choices",
    [
        [
            {"index": 1, "delta": {"content": "other"}},
            {"index": 0, "delta": {"content": "a"}, "finish_reason": "stop"},
        ],
        [
            {"index": 0, "delta": None},
            {"index": 0, "delta": {"content": "a"}, "finish_reason": "stop"},
        ],
    ],
    ids=["after-choice-1", "after-a-choice-0-without-delta"],
)
@pytest.mark.parametrize("typed", [True, False], ids=["typed-decoder", "general-way"])
def test_every_choice_0_of_a_chunk_is_assembled_whatever_comes_before_it(choices, typed):
    doc: dict[str, object] = {"id": "c", "choices": choices}
    if not typed:
        doc["x_cost"] = 1
    raw = orjson.dumps(doc)
    assert (decode_chunk(raw) is not None) is typed
    result, _ = _feed([_events(raw)], tapped=False)
    assert (result.content, result.finish_reason) == ("a", "stop")


def test_a_content_only_chunk_read_the_general_way_skips_the_field_by_field_walk(monkeypatch):
    walked = []
    general = StreamAssembler._choice

    def counting(self, choice, n, position, now):
        walked.append(n)
        return general(self, choice, n, position, now)

    monkeypatch.setattr(StreamAssembler, "_choice", counting)
    without_index = orjson.dumps({"choices": [{"delta": {"content": "c"}}], "x_cost": 1})
    reads = [_events(_odd("a")), _events(_odd("b")), _events(without_index)]
    reads.append(_events(orjson.dumps({"choices": [{"index": 0, "delta": {}}], "x_cost": 1})))
    result, _ = _feed(reads, tapped=False)
    assert result.content == "abc"
    assert walked == [3]  # only the empty delta, which is not the content-only shape


@_TAPPED
@pytest.mark.parametrize("typed", [True, False], ids=["typed-decoder", "general-way"])
def test_the_first_id_model_and_created_of_a_stream_are_kept(tapped, typed):
    chunks = [_chunk(t, id=f"id-{t}", model=f"m-{t}", created=n) for n, t in enumerate("abc", 1)]
    if not typed:
        chunks = [orjson.dumps({**orjson.loads(c), "x_cost": 1}) for c in chunks]
    assert all((decode_chunk(c) is not None) is typed for c in chunks)
    result, _ = _feed([_events(c) for c in chunks], tapped=tapped)
    assert (result.id, result.model, result.created) == ("id-a", "m-a", 1)


@pytest.mark.parametrize("typed", [True, False], ids=["typed-decoder", "general-way"])
def test_the_last_system_fingerprint_of_a_stream_is_kept(typed):
    chunks = [_chunk(t, system_fingerprint=f"fp-{t}") for t in "ab"]
    if not typed:
        chunks = [orjson.dumps({**orjson.loads(c), "x_cost": 1}) for c in chunks]
    result, _ = _feed([_events(c) for c in chunks], tapped=False)
    assert result.system_fingerprint == "fp-b"


@pytest.mark.parametrize(
    "index", [None, False, 0.0, "0"], ids=["null", "false", "float-zero", "string"]
)
def test_a_content_only_chunk_with_a_non_integer_index_is_reported_not_assembled(index):
    bad = orjson.dumps({"id": "c", "choices": [{"index": index, "delta": {"content": "x"}}]})
    result, _ = _feed([_events(_chunk("a"), bad, _chunk("b"))], tapped=False)
    assert result.content == "ab"
    assert [(v.kind, v.path) for v in result.violations] == [
        (ViolationKind.TYPE, "$[chunk 1].choices[0].index")
    ]


@pytest.mark.parametrize(
    ("field", "walked"),
    [
        pytest.param("content", True, id="content-field-by-field"),
        pytest.param("reasoning_content", True, id="reasoning-field-by-field"),
        pytest.param("content", False, id="content-only-shape"),
    ],
)
def test_the_first_token_moment_is_that_of_the_first_non_empty_text(field, walked):
    # Read the general way (an unknown member); a role beside the text is not the
    # content-only shape, so ``_choice`` reads each. An empty text is no token.

    def chunk(text: str) -> bytes:
        delta = {"role": "assistant", field: text} if walked else {field: text}
        return orjson.dumps({"id": "c", "choices": [{"index": 0, "delta": delta}], "x_cost": 1})

    result, _ = _feed([_events(chunk(t)) for t in ["", "a", "b", "c"]], tapped=False)
    text = result.content if field == "content" else result.reasoning_content
    assert (text, result.first_token_at) == ("abc", 1.0)


@pytest.mark.parametrize("other", [1, -1], ids=["index-1", "index-minus-1"])
def test_only_choice_0_is_assembled_field_by_field(other):
    texts = {"content": "x", "reasoning_content": "x", "refusal": "x"}
    choices = [
        {"index": other, "delta": texts},
        {"index": 0, "delta": {"content": "a", "reasoning_content": "r", "refusal": "f"}},
        {"index": other, "delta": texts, "finish_reason": "length"},
    ]
    raw = orjson.dumps({"id": "c", "choices": choices, "x_cost": 1})
    result, _ = _feed([_events(raw)], tapped=False)
    assert (result.content, result.reasoning_content, result.refusal) == ("a", "r", "f")
    assert result.finish_reason is None


def test_an_empty_finish_reason_is_no_finish_field_by_field():
    choice = {"index": 0, "delta": {"role": "assistant", "content": "a"}, "finish_reason": ""}
    result, _ = _feed([_events(orjson.dumps({"id": "c", "choices": [choice]}))], tapped=False)
    assert (result.content, result.finish_reason, str(result.verdict)) == ("a", None, "cut")


def test_a_tapped_event_read_line_by_line_is_judged_as_it_came():
    # An ``event:`` field sends the read through the decoder's line-by-line way.
    reads = [_events(_chunk("a")), b"event: message\ndata: {bad\n\n"]
    result, taken = _feed(reads, tapped=True)
    assert taken == [_chunk("a")]
    assert str(result.verdict) == "malformed_chunk"
    assert [v.kind for v in result.violations] == [ViolationKind.INVALID_JSON]


def test_a_parser_keeps_no_raw_windows_unless_asked():
    parser = StreamParser()
    parser.feed(_events(_chunk("a")))
    parser.close()
    assert parser.raw_windows() == (b"", b"")


@pytest.mark.parametrize(
    "bad",
    [
        orjson.dumps({"id": "c", "choices": [], "usage": {"prompt_tokens": -1}}),
        orjson.dumps(
            {
                "id": "c",
                "choices": [{"index": 0, "delta": {"tool_calls": [{"index": "one"}]}}],
            }
        ),
    ],
    ids=["bad-usage-count", "bad-tool-call-index"],
)
def test_a_chunk_rejected_for_one_member_is_never_tapped(bad):
    result, taken = _feed([_events(_chunk("a")), _events(bad)], tapped=True)
    assert taken == [_chunk("a")]
    assert str(result.verdict) == "malformed_chunk"


def test_common_chunks_after_done_in_one_read_are_neither_tapped_nor_assembled():
    reads = [_events(_chunk("a"), b"[DONE]"), _events(_chunk("b"), _chunk("c"))]
    result, taken = _feed(reads, tapped=True)
    assert taken == [_chunk("a")]
    assert (result.content, result.chunk_count, result.done_seen) == ("a", 1, True)
    assert [v.kind for v in result.violations] == [ViolationKind.AFTER_DONE]


_ROLE_FIRST = orjson.dumps(
    {"id": "c", "choices": [{"delta": {"role": "assistant", "content": "r"}}]}
)
_USAGE = _chunk("", usage={"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3})


def _learning(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """The payloads a stream looks for its template in, in order."""
    tried: list[bytes] = []
    real = stream_module.learn_template

    def learn(raw: bytes) -> object:
        tried.append(raw)
        return real(raw)

    monkeypatch.setattr(stream_module, "learn_template", learn)
    return tried


def test_a_held_read_is_not_searched_for_a_template_once_one_is_known(monkeypatch):
    tried = _learning(monkeypatch)
    # the role before the content is no plain chunk: that read is decoded in one call
    result, _ = _feed([_events(_chunk("a")), _events(_ROLE_FIRST, _chunk("b"))], tapped=False)
    assert tried == [_chunk("a")]
    assert result.content == "arb"


def test_a_held_read_is_searched_for_a_template_in_its_first_two_chunks_then_its_last(
    monkeypatch,
):
    tried = _learning(monkeypatch)
    ways = _Ways(monkeypatch)
    reads = [_events(_ROLE_FIRST, _ROLE_FIRST, _chunk("a")), _events(_chunk("b"), _chunk("c"))]
    result, _ = _feed(reads, tapped=False)
    # before it is decoded, then after: found there, the next read goes through it
    assert tried == [_ROLE_FIRST, _ROLE_FIRST, _chunk("a")]
    assert (ways.batches, ways.single) == (2, [])
    assert result.content == "rrabc"


def test_a_template_read_that_brings_the_first_token_keeps_its_moment(monkeypatch):
    ways = _Ways(monkeypatch)
    reads = [_events(_chunk("")), _events(_chunk(""), _chunk("x")), _events(_chunk("y"))]
    result, _ = _feed(reads, tapped=False)
    assert (ways.batches, ways.single) == (1, [True, True])  # the second read: the template
    assert (result.content, result.first_token_at) == ("xy", 1.0)


def test_a_tapped_read_of_one_chunk_is_not_scanned_for_a_run(monkeypatch):
    runs: list[int] = []
    real = stream_module._typed_run

    def counting(payloads: list[bytes]) -> int:
        runs.append(len(payloads))
        return real(payloads)

    monkeypatch.setattr(stream_module, "_typed_run", counting)
    # a member after the choices: not the template's (learned from "a"), the typed decoder's
    later = [_chunk(t, system_fingerprint="fp") for t in "bc"]
    result, taken = _feed([_events(_chunk("a")), _events(*later)], tapped=True)
    assert runs == [2]
    assert (result.content, taken) == ("abc", [_chunk("a"), *later])


@pytest.mark.parametrize(
    "end",
    [[_chunk("a"), _USAGE], [_USAGE, b"[DONE]"], [_chunk("a"), _USAGE, b"[DONE]"]],
    ids=["one-chunk-then-usage", "usage-then-done", "one-chunk-usage-done"],
)
def test_a_tapped_run_of_fewer_than_two_chunks_is_read_one_by_one(monkeypatch, end):
    ways = _Ways(monkeypatch)
    result, taken = _feed([_events(_chunk("a")), _events(*end)], tapped=True)
    assert ways.batches == 0
    # the usage chunk: its own typed decoder, not the chunk's
    assert ways.single == [True] * (1 + sum(raw[:1] == b"{" and raw != _USAGE for raw in end))
    assert (result.usage.total_tokens, len(taken)) == (3, 1 + sum(raw[:1] == b"{" for raw in end))


@pytest.mark.parametrize(
    ("refusals", "tried"), [(7, True), (8, False)], ids=["seven-refusals", "eight-refusals"]
)
def test_a_tapped_read_decoded_in_one_call_starts_the_refusal_count_again(
    monkeypatch, refusals, tried
):
    ways = _Ways(monkeypatch)
    reads = [_events(_odd()) for _ in range(7)] + [_events(_chunk("a"), _chunk("b"))]
    reads += [_events(_odd()) for _ in range(refusals)] + [_events(_chunk("c"))]
    result, _ = _feed(reads, tapped=True)
    assert ways.batches == 1
    assert ways.single == [False] * (7 + refusals) + ([True] if tried else [])
    assert result.content == "o" * 7 + "ab" + "o" * refusals + "c"


def test_a_tapped_refusal_keeps_the_typed_decoder_for_the_rest_of_its_read(monkeypatch):
    ways = _Ways(monkeypatch)
    result, taken = _feed([_events(_odd(), _chunk("a"), _chunk("b"))], tapped=True)
    assert ways.single == [False, True, True]  # after one call for all three, refused
    assert (result.content, taken) == (
        "oab",
        [_odd(), *(_chunk(t) for t in "ab")],
    )
