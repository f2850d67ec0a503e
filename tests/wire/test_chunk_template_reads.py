"""Held reads taken through the template without cutting them into events first
(``ChunkTemplate.reads``): the contents when each read is one whole plain event of the
template, None for anything else, and always the result of decoding the bytes the usual way."""

import msgspec
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chatcontract.wire import StreamParser, StreamResult
from chatcontract.wire import stream as stream_module
from chatcontract.wire._chunk import ChunkTemplate, learn_template

_HEAD = (
    b'{"id":"c-1","object":"chat.completion.chunk","created":7,"model":"m",'
    b'"system_fingerprint":"fp","choices":[{"index":0,"delta":{"content":"'
)
_END = b'"},"logprobs":null,"finish_reason":null}],"usage":null,"obfuscation":"e8"}'


def _plain(text: str, tail: bytes = _END) -> bytes:
    return _HEAD + orjson.dumps(text)[1:-1] + tail


def _event(payload: bytes) -> bytes:
    return b"data: " + payload + b"\n\n"


def _template() -> ChunkTemplate:
    template = learn_template(_plain("x"))
    assert template is not None
    return template


def _reads(reads: list[bytes]) -> list[str] | None:
    return _template().reads(reads, b"".join(reads))


def test_each_read_one_plain_event_gives_the_non_empty_contents_in_order():
    texts = ["a", "", 'b "q" \\ \n \u00e9', "c"]
    assert _reads([_event(_plain(t)) for t in texts]) == ["a", 'b "q" \\ \n \u00e9', "c"]


def test_one_read_is_enough():
    assert _reads([_event(_plain("a"))]) == ["a"]


def test_trailing_spaces_on_the_data_line_are_part_of_the_json():
    assert _reads([_event(_plain("a") + b"  \t"), _event(_plain("b"))]) == ["a", "b"]


_A, _B = _event(_plain("a")), _event(_plain("b"))


@pytest.mark.parametrize(
    "reads",
    [
        [_A, _event(b'{"id":"b"' + _plain("x")[len(b'{"id":"c-1"') :])],
        [_A, _event(b'{"id":"d"' + _plain("x")[len(b'{"id":"c-1"') :])],
        [_A, _event(_plain("x").replace(b'"fp"', b'"fo"'))],
        [_A, _event(_plain("x").replace(b'"fp"', b'"fq"'))],
        [_A, _event(_plain("x", b'"},"finish_reason":"stop"}]}'))],
        [_A, _event(_plain("x", b'"}}],"usage":{"total_tokens":1}}'))],
        [_A, _B + _event(_plain("c"))],
        [_A[:-1], _B],
        [_A[:-2] + b"  ", _B],
        [_A[:-1] + b" \n", _B + b"\n"],
        [_A, _B[:-1]],
        [_A, _B[:-2]],
        [_A, _B[:-2] + b"\r\n"],
        [_A[:-2] + b"\n \n\n", _B],
        [_A[:-2] + b"\n:ping\n\n", _B],
        [_A[:-2] + b"\nid: 3\n\n", _B],
        [_A[:-2] + b"\r\n\r\n", _B],
        [_event(_plain("a", b'"},"logprobs":null,"finish_reason":null}\r]}')), _B],
        [_event(_plain("a") + b'{"choices":[{"delta":{"content":"y"}}]}'), _B],
        [_event(_plain("a", b'"}}],"usage":null,"obfuscation":')), _B],
        [_event(_HEAD), _B],
        [_A, b"data: [DONE]\n\n"],
    ],
    ids=[
        "a-prefix-sorting-before", "a-prefix-sorting-after",
        "as-long-a-prefix-sorting-before", "as-long-a-prefix-sorting-after", "a-finish", "usage",
        "a-read-of-two-events", "a-read-without-its-blank-line",
        "a-read-without-line-end-but-spaces", "the-blank-line-split-over-two-reads",
        "the-last-read-without-its-blank-line", "the-last-read-without-line-end",
        "the-last-read-ending-in-cr-lf", "a-line-of-spaces-in-the-event", "a-comment-in-the-event",
        "an-id-field-in-the-event", "cr-lf-line-ends", "a-cr-inside-the-json",
        "two-json-values-on-the-line", "a-value-left-open", "nothing-after-the-prefix", "done",
    ],
)  # fmt: skip
def test_anything_but_one_plain_event_per_read_gives_none(reads):
    assert _reads(reads) is None


def test_json_values_on_one_line_follow_each_other():
    # What ``reads`` relies on (no line feed between the tails it decodes): msgspec's line
    # decoder takes values that follow each other on one line. If a release stopped doing
    # so, ``reads`` would only ever give None (the usual way then), never a wrong result.
    decoder = msgspec.json.Decoder(dict)
    assert decoder.decode_lines(b'{"a":1}{"a":2} {"a":3}') == [{"a": 1}, {"a": 2}, {"a": 3}]


# -- in a deferring parser --------------------------------------------------------------------


def _parse(reads: list[bytes], *, defer: bool) -> tuple[StreamResult, tuple[bytes, bytes]]:
    """The result and the windows; deferring, the held reads are taken before the last read
    (else ``[DONE]``, held with them, would keep them from the template every time)."""
    parser = StreamParser(expect_usage=False, defer=defer, windows=True)
    for moment, read in enumerate(reads):
        if moment == len(reads) - 1:
            parser.chunk_count  # noqa: B018 - takes the held reads
        parser.feed(read, now=float(moment))
    result = parser.close(now=float(len(reads)))
    return result, parser.raw_windows()


@pytest.fixture
def spied(monkeypatch):
    """What each ``ChunkTemplate.reads`` call gave, in order."""
    calls: list[list[str] | None] = []
    real = stream_module.ChunkTemplate.reads

    def reads(template, held, joined):
        texts = real(template, held, joined)
        calls.append(texts)
        return texts

    monkeypatch.setattr(stream_module.ChunkTemplate, "reads", reads)
    return calls


_FINISH = _event(_plain("", b'"},"logprobs":null,"finish_reason":"stop"}]}'))
_DONE = b"data: [DONE]\n\n"


def test_held_plain_events_are_taken_through_the_template(spied):
    parser = StreamParser(expect_usage=False, defer=True)
    for text in ["a", "b", "", "c"]:  # "a": the first token (and the template); then held
        parser.feed(_event(_plain(text)))
    assert parser.chunk_count == 4  # reading the count takes the held reads
    assert spied == [["b", "c"]]
    parser.feed(_FINISH)
    parser.feed(_DONE)
    result = parser.close()
    assert spied == [["b", "c"], None]  # the finish, held with [DONE]: the usual way
    assert (result.content, result.chunk_count, result.verdict) == ("abc", 5, "complete")
    assert (result.id, result.model, result.created, result.system_fingerprint) == (
        "c-1", "m", 7, "fp",
    )  # fmt: skip


@pytest.mark.parametrize(
    "first",
    [
        _A + b"data: " + _plain("z") + b"\n",  # a data line waiting for its blank line
        _A + b"event: other\n",  # an event type waiting for its event
        _A + b"data: " + _HEAD[:20],  # a line cut in two
        _A[:-1] + b"\r",  # a CR that a line feed may complete
    ],
    ids=["data-pending", "event-pending", "line-pending", "cr-pending"],
)
def test_no_template_read_while_the_decoder_is_inside_an_event(first, spied):
    reads = [first, *(_event(_plain(t)) for t in "bcd"), _DONE]
    assert _parse(reads, defer=True) == _parse(reads, defer=False)
    parser = StreamParser(expect_usage=False, defer=True)
    for read in reads[:4]:
        parser.feed(read)
    spied.clear()
    parser.chunk_count  # noqa: B018 - takes the held reads
    assert spied == []


def test_no_template_read_with_the_fast_path_off(spied):
    parser = StreamParser(expect_usage=False, defer=True)
    parser._decoder._fast_path = False
    for read in [_A, _B, _event(_plain("c"))]:
        parser.feed(read)
    assert parser.chunk_count == 3
    assert spied == []
    assert parser._assembler._content == ["a", "b", "c"]


def test_no_template_read_after_done(spied):
    # [DONE] padded to a read taken at once; the plain events after it are held
    done = _DONE + b":" + b"x" * (16 * 1024) + b"\n"
    reads = [_A, done, _B, _event(_plain("c"))]
    deferred = _parse(reads, defer=True)
    assert deferred == _parse(reads, defer=False)
    assert deferred[0].content == "a"
    assert spied == [None]  # the [DONE] read itself: no event of the template; none after it


def test_no_template_read_once_the_typed_decoder_kept_missing(spied):
    parser = StreamParser(expect_usage=False)
    parser.feed(_A)  # the template
    for _ in range(8):  # decoded at once: each refused by the typed decoder
        parser.feed(_event(_plain("o", b'"}}],"extra":1}')))
    parser._defer = parser._holding = True  # from here on, reads are held
    parser.feed(_B)
    parser.feed(_event(_plain("c")))
    assert parser._assembler._template is not None
    result = parser.close()
    assert result.content == "a" + "o" * 8 + "bc"
    assert spied == []


_texts = st.text(alphabet='ab"\\\n\u00e9 ', max_size=4)
_odd = st.sampled_from(
    [
        b"",
        b"\n",
        b" ",
        b"\r",
        b"\n \n",
        b":ping\n",
        b'{"choices":[{"delta":{"content":"y"}}]}',
        b"data: " + _HEAD,
        _DONE,
    ]
)


# ``spied`` only records: it is cleared for each example.
@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.tuples(_texts, st.booleans(), _odd, st.integers(-3, 2)), min_size=1, max_size=8))
def test_a_deferred_stream_gives_the_result_and_windows_of_reading_each_read(spied, reads):
    body = [_A]  # the first token and the template
    for text, odd, extra, cut in reads:
        read = _event(_plain(text))
        if odd:  # something else than one plain event: bytes inserted near its end, or one cut
            at = len(read) + cut - 2
            read = read[:at] + extra + read[at + (not extra) :]
        body.append(read)
    body.append(_DONE)
    spied.clear()
    assert _parse(body, defer=True) == _parse(body, defer=False)
    if not any(odd for _, odd, _, _ in reads):
        # taken through the template; then [DONE], held alone, the usual way
        assert spied == [[t for t, _, _, _ in reads if t], None]


# -- the end of a stream: its plain chunks, then what ends it ----------------------------------

_P, _Q = _plain("p"), _plain("q")
_STOP = _HEAD[: _HEAD.index(b'"delta"')] + b'"delta":{},"logprobs":null,"finish_reason":"stop"}]}'
_USAGE = b'{"id":"c-1","choices":[],"usage":{"total_tokens":3}}'


@pytest.mark.parametrize(
    ("payloads", "run"),
    [
        pytest.param([_P, _Q], 2, id="all-plain"),
        pytest.param([_P, _Q, _STOP], 2, id="then-a-finish"),
        pytest.param([_P, _Q, _STOP, _DONE[6:-2]], 2, id="then-a-finish-and-done"),
        pytest.param([_P, _Q, _STOP, _USAGE, _DONE[6:-2]], 2, id="then-finish-usage-done"),
        pytest.param([_P, _STOP, _STOP, _USAGE, _DONE[6:-2]], 2, id="at-most-three-off"),
        pytest.param([_STOP, _DONE[6:-2]], 0, id="none-plain"),
        pytest.param([_DONE[6:-2]], 0, id="done-alone"),
        pytest.param([_P, _STOP, _Q], 3, id="a-plain-one-last"),
    ],
)  # fmt: skip
def test_the_run_leaves_out_what_ends_a_stream(payloads, run):
    assert _template().run(payloads) == run


def test_the_plain_chunks_before_the_end_of_a_stream_are_read_through_the_template(monkeypatch):
    sizes = []
    real = stream_module.ChunkTemplate.contents

    def contents(template, payloads):
        sizes.append(len(payloads))
        return real(template, payloads)

    monkeypatch.setattr(stream_module.ChunkTemplate, "contents", contents)
    usage = b'{"id":"c-1","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}'
    reads = [_A, b"".join(_event(p) for p in [_P, _plain(""), _Q, _STOP, usage]) + _DONE]
    parser = StreamParser(expect_usage=True)
    for read in reads:
        parser.feed(read)
    result = parser.close()
    assert sizes == [3]
    assert (result.content, result.chunk_count, result.verdict) == ("apq", 6, "complete")
    assert result.finish_reason == "stop"
    assert result.usage is not None and result.usage.total_tokens == 3


# -- one payload at a time ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("payload", "content"),
    [
        pytest.param(_plain("a"), "a", id="content"),
        pytest.param(_plain(""), "", id="empty-content"),
        pytest.param(_plain('q "\\'), 'q "\\', id="escaped-content"),
        pytest.param(_STOP, None, id="another-prefix"),
        pytest.param(_plain("a", b'"},"finish_reason":"stop"}]}'), None, id="a-finish"),
        pytest.param(_plain("a") + b"{}", None, id="a-second-json-value"),
        pytest.param(_plain("a")[:-1], None, id="cut"),
    ],
)  # fmt: skip
def test_one_payload_gives_its_content_when_a_plain_chunk_of_the_template(payload, content):
    assert _template().content(payload) == content


def _assembler_with_template() -> stream_module.StreamAssembler:
    assembler = stream_module.StreamAssembler()
    assembler._push_payloads([_plain("a")], 1.0)
    assert assembler._template is not None
    return assembler


def test_a_plain_payload_is_taken_through_the_template():
    assembler = _assembler_with_template()
    assembler._typed_misses = 3
    assert assembler._take_plain(_plain("b"), 2.0)
    assert (assembler._content, assembler._chunk_count, assembler._typed_misses) == (
        ["a", "b"],
        2,
        0,
    )
    assert assembler._take_plain(_plain(""), 3.0)  # counted, nothing added
    assert (assembler._content, assembler._chunk_count) == (["a", "b"], 3)


def test_an_empty_content_through_the_template_is_no_first_token():
    assembler = stream_module.StreamAssembler()
    assembler._template = _template()
    assert assembler._take_plain(_plain(""), 1.0)
    assert (assembler._first_token, assembler._first_token_at) == (False, None)
    assert assembler._take_plain(_plain("x"), 2.0)
    assert (assembler._first_token, assembler._first_token_at) == (True, 2.0)


def test_a_payload_the_template_does_not_take_is_left_alone():
    assembler = stream_module.StreamAssembler()
    assembler._template = _template()
    assembler._typed_misses = 3
    assert not assembler._take_plain(_STOP, 1.0)
    assert (assembler._content, assembler._chunk_count, assembler._typed_misses) == ([], 0, 3)


def test_a_tapped_stream_learns_its_template_and_taps_what_it_takes():
    parser = StreamParser()
    taken = parser.tap()
    parser.feed(_A)
    assert parser._assembler._template is not None
    parser.feed(_B)
    parser.feed(_event(_plain("")))
    parser.feed(_DONE)
    result = parser.close()
    assert taken == [_plain("a"), _plain("b"), _plain("")]
    assert (result.content, result.chunk_count, result.verdict) == ("ab", 3, "truncated")


@pytest.mark.parametrize("chunk_id", ["c-1", "c-12", "c-123"], ids=["id-3", "id-4", "id-5"])
def test_reads_cut_each_read_after_its_head_whatever_the_prefix_length(chunk_id):
    head = _HEAD.replace(b'"c-1"', b'"' + chunk_id.encode() + b'"')
    template = learn_template(head + b"x" + _END)
    assert template is not None
    reads = [_event(head + text + _END) for text in (b"a", b"", b"b")]
    assert template.reads(reads, b"".join(reads)) == ["a", "b"]


def test_a_tapped_stream_keeps_its_template_after_a_chunk_of_another_shape(monkeypatch):
    taken = []
    real = stream_module.ChunkTemplate.content

    def content(template, payload):
        text = real(template, payload)
        taken.append(text)
        return text

    monkeypatch.setattr(stream_module.ChunkTemplate, "content", content)
    role = _HEAD.replace(b'"delta":{', b'"delta":{"role":"assistant",') + b"r" + _END
    parser = StreamParser()
    parser.tap()
    for payload in [_plain("a"), role, _plain("b"), _plain("c")]:
        parser.feed(_event(payload))
    assert taken == [None, "b", "c"]  # the role chunk: the typed decoder's, and not learned
    assert parser.close().content == "arbc"


def test_hundreds_of_events_at_once_are_still_taken_through_the_template():
    # counts past CPython's cached small integers (256): compared by value, not identity
    texts = [f"w{n}" for n in range(300)]
    payloads = [_plain(text) for text in texts]
    assert _template().contents(payloads) == texts
    reads = [_event(payload) for payload in payloads]
    assert _template().reads(reads, b"".join(reads)) == texts
    ending = [_STOP, _STOP, _STOP, _STOP]  # four that end nothing the template knows
    assert _template().run([*payloads, *ending]) == 301  # at most three left out


# -- a tapped read of several events -----------------------------------------------------------


def _tapped(reads: list[bytes]) -> tuple[StreamResult, list[bytes]]:
    parser = StreamParser(expect_usage=True)
    taken = parser.tap()
    for read in reads:  # no moments: the same first-token moment whatever the reads
        parser.feed(read)
    return parser.close(), taken


def _tapped_one_by_one(reads: list[bytes]) -> tuple[StreamResult, list[bytes]]:
    """The same stream fed byte by byte: one event at most per read, no batch."""
    return _tapped([bytes([byte]) for read in reads for byte in read])


@pytest.fixture
def batches(monkeypatch):
    """How many payloads each ``ChunkTemplate.contents`` call took (None: refused)."""
    sizes: list[int | None] = []
    real = stream_module.ChunkTemplate.contents

    def contents(template, payloads):
        texts = real(template, payloads)
        sizes.append(None if texts is None else len(payloads))
        return texts

    monkeypatch.setattr(stream_module.ChunkTemplate, "contents", contents)
    return sizes


_USAGE_FULL = (
    b'{"id":"c-1","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}'
)


@pytest.mark.parametrize(
    ("second", "sizes"),
    [
        pytest.param([_B, _event(_plain("")), _event(_plain("c"))], [3], id="plain-chunks"),
        pytest.param([_B, _event(_STOP), _event(_USAGE_FULL), _DONE], [1], id="plain-then-the-end"),
        pytest.param(
            [_B, _event(_plain("c", b'"}}],"system_fingerprint":"x"}'))], [None], id="refused"
        ),
    ],
)
def test_a_tapped_read_of_plain_chunks_goes_through_the_template(second, sizes, batches):
    reads = [_A, b"".join(second)]
    result, taken = _tapped(reads)
    assert batches == sizes
    assert (result, taken) == _tapped_one_by_one(reads)


@pytest.mark.parametrize("tapped", [False, True], ids=["assembler", "tapped"])
def test_a_stream_without_a_template_makes_no_template_call_per_chunk(monkeypatch, tapped):
    # spaced JSON (llama-cpp-python's): no template to learn, so none is tried per chunk
    calls = []
    monkeypatch.setattr(
        stream_module.StreamAssembler, "_take_plain", lambda *args: calls.append(args) or False
    )
    spaced = b'{"id": "c", "choices": [{"index": 0, "delta": {"content": "%s"}}]}'
    parser = StreamParser()
    if tapped:
        parser.tap()
    for text in (b"a", b"b", b"c"):
        parser.feed(_event(spaced % text))
    assert parser._assembler._template is None
    assert calls == []
    assert parser.close().content == "abc"
