"""The stream fast paths (plain ``data:`` reads, content-only chunks) change nothing but speed."""

import orjson
import pytest
from _examples import examples
from hypothesis import given, settings
from hypothesis import strategies as st

from chatcontract.contract import load_preset
from chatcontract.wire import SSEDecoder, StreamAssembler, StreamParser, StreamResult
from chatcontract.wire.sse import SSEEvent

COMETAPI = load_preset("cometapi")


class _GeneralAssembler(StreamAssembler):
    """The assembler with its shortcuts switched off: no typed decoder, every chunk decoded
    by orjson and every choice walked by ``_choice``."""

    __slots__ = ()

    def __init__(self, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self._typed_misses = 1_000_000  # never tried

    def _content_only(self, choice: object, now: float | None) -> bool:
        return False


def _parse(chunks: list[bytes], *, fast: bool, stalled: bool = False) -> StreamResult:
    parser = StreamParser(contract=COMETAPI)
    parser._decoder._fast_path = fast
    if not fast:
        parser._assembler = _GeneralAssembler(contract=COMETAPI)
    for moment, chunk in enumerate(chunks):
        parser.feed(chunk, now=float(moment))
    return parser.close(now=float(len(chunks)), stalled=stalled)


def _decode(chunks: list[bytes], *, fast: bool) -> tuple[list[SSEEvent], int, int, int | None]:
    decoder = SSEDecoder()
    decoder._fast_path = fast
    events = [event for chunk in chunks for event in decoder.feed(chunk)]
    events += decoder.close()
    return events, decoder.comment_count, decoder.other_line_count, decoder.retry_ms


def _split(body: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(body) + 1) for cut in cuts})
    return [body[a:b] for a, b in zip([0, *points], [*points, len(body)], strict=True)]


def _chunk(choices: object, **top: object) -> str:
    doc = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    doc.update(top, choices=choices)
    return orjson.dumps(doc).decode()


_text = st.text(alphabet="ab \u00e9\u2603\n", max_size=4)
_deltas = st.one_of(
    st.builds(lambda text: {"content": text}, _text),  # the fast shape
    st.builds(lambda text: {"role": "assistant", "content": text}, _text),
    st.builds(lambda text: {"reasoning_content": text}, _text),
    st.just({}),
    st.just({"content": None}),
    st.just({"content": 7}),
    st.just({"refusal": "no"}),
    st.just({"tool_calls": [{"index": 0, "id": "c", "function": {"name": "f", "arguments": "{"}}]}),
)
_choices = st.builds(
    lambda delta, index, finish, extra: {"delta": delta, **index, **finish, **extra},
    _deltas,
    st.sampled_from([{"index": 0}, {}, {"index": 1}, {"index": False}, {"index": "0"}]),
    st.sampled_from(
        [{"finish_reason": None}, {}, {"finish_reason": "stop"}, {"finish_reason": ""}]
    ),
    st.sampled_from([{}, {"logprobs": None}]),
)
_payloads = st.one_of(
    st.builds(lambda choice: _chunk([choice]), _choices),
    st.builds(lambda choice: _chunk([choice, choice]), _choices),
    st.builds(_chunk, st.sampled_from([[], None, {}, ["x"]])),
    st.just(_chunk([], usage={"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3})),
    st.just(_chunk([], usage={"prompt_tokens": "1"})),
    st.just('{"error": {"message": "upstream timeout", "type": "new_api_error"}}'),
    st.just('{"choices": [{"delta": {"content": "cut'),  # malformed JSON
    st.just("[DONE]"),
    st.just(""),
    st.just("[1, 2]"),
    # what the typed decoder must refuse, for the general way's verdict
    st.builds(
        lambda big: _chunk([]).replace('"created":1', f'"created":{big}'),
        st.sampled_from([2**63, 2**64, 10**30, 1.0]),
    ),
    st.just(_chunk([]).replace('"created":1', '"created":' + "9" * 10_000)),
    st.just(_chunk([]).replace('"created":1', '"created":1,"x":' + "9" * 10_000)),
    st.just(_chunk([]).replace('"created":1', '"created":1,"logprobs":1e400')),
    st.just(_chunk([{"delta": {"content": "a"}, "index": 2**63}])),
    st.just(_chunk([{"delta": {"content": "a", "x": 1}}], provider="p")),
)


@st.composite
def _events(draw: st.DrawFn) -> list[bytes]:
    """One SSE event as lines (no terminators): optional fields and comments, then data."""
    payload = draw(_payloads)
    lines = draw(
        st.lists(
            st.sampled_from([b": PING", b"event: error", b"event: message", b"id: 7", b"retry: 5"]),
            max_size=2,
        )
    )
    cut = draw(st.integers(0, len(payload)))
    if draw(st.booleans()) and 0 < cut < len(payload):  # multi-line data
        lines += [b"data: " + payload[:cut].encode(), b"data: " + payload[cut:].encode()]
    else:
        prefix = draw(st.sampled_from([b"data: ", b"data: ", b"data:"]))
        lines.append(prefix + payload.encode())
    return lines


@st.composite
def _streams(draw: st.DrawFn) -> list[bytes]:
    events = draw(st.lists(_events(), max_size=8))
    ending = draw(st.sampled_from([b"\n", b"\n", b"\r\n", b"\r", None]))
    body = bytearray()
    if draw(st.integers(0, 9)) == 0:
        body += b"\xef\xbb\xbf"
    for lines in events:
        for line in [*lines, b""]:
            body += line + (
                ending if ending is not None else draw(st.sampled_from([b"\n", b"\r\n"]))
            )
        if draw(st.integers(0, 5)) == 0:
            body += b": keep-alive\n\n"
    if body and draw(st.booleans()):  # cut short, inside the last line or its terminator
        body = body[: draw(st.integers(len(body) // 2, len(body)))]
    mode = draw(st.sampled_from(["events", "anywhere", "whole"]))
    if mode == "whole":
        return [bytes(body)]
    if mode == "events":  # one read per event, as servers write them
        return [piece + b"\n\n" for piece in bytes(body).split(b"\n\n")]
    return _split(bytes(body), draw(st.lists(st.integers(0, 4096), max_size=12)))


@settings(max_examples=examples(400), deadline=None)
@given(_streams(), st.booleans())
def test_the_fast_path_gives_the_result_of_the_general_path(chunks, stalled):
    assert _parse(chunks, fast=True, stalled=stalled) == _parse(chunks, fast=False, stalled=stalled)


@settings(max_examples=examples(300), deadline=None)
@given(_streams())
def test_the_decoder_fast_path_gives_the_events_and_counts_of_the_general_path(chunks):
    assert _decode(chunks, fast=True) == _decode(chunks, fast=False)


def _plain_stream() -> list[bytes]:
    first = _chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}}])
    words = [
        _chunk([{"index": 0, "delta": {"content": f" w{i}"}, "finish_reason": None}])
        for i in range(5)
    ]
    last = _chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}])
    usage = _chunk([], usage={"prompt_tokens": 1, "completion_tokens": 5, "total_tokens": 6})
    return [f"data: {doc}\n\n".encode() for doc in [first, *words, last, usage]] + [
        b"data: [DONE]\n\n"
    ]


def test_a_plain_stream_never_takes_the_line_by_line_path(monkeypatch):
    calls = []
    general = SSEDecoder._lines

    def counting(self, lines):
        calls.append(lines)
        return general(self, lines)

    monkeypatch.setattr(SSEDecoder, "_lines", counting)
    result = _parse(_plain_stream(), fast=True)
    assert result.ok, result.violations
    assert result.content == " w0 w1 w2 w3 w4"
    assert calls == [[b""]]  # only close() flushes, with nothing pending


def test_the_decoder_reads_plain_data_events_without_the_line_by_line_path(monkeypatch):
    calls = []
    general = SSEDecoder._lines

    def counting(self, lines):
        calls.append(lines)
        return general(self, lines)

    monkeypatch.setattr(SSEDecoder, "_lines", counting)
    decoder = SSEDecoder()
    events = [event for chunk in _plain_stream() for event in decoder.feed(chunk)]
    assert len(events) == 9 and events[-1].is_done
    assert calls == []


def test_common_chunks_are_read_by_the_typed_decoder(monkeypatch):
    """Role, content, finish and usage chunks never reach the field-by-field walk."""
    walked = []
    general = StreamAssembler._take

    def counting(self, doc, n, now):
        walked.append(n)
        return general(self, doc, n, now)

    monkeypatch.setattr(StreamAssembler, "_take", counting)
    result = _parse(_plain_stream(), fast=True)
    assert result.first_token_at == 1.0
    assert result.usage is not None and result.usage.total_tokens == 6
    assert walked == []


@pytest.mark.parametrize(
    "chunks",
    [
        [b'data: {"a": 1}\n\ndata: {"b"', b": 2}\n\ndata: [DONE]\n\n"],
        [b"da", b'ta: {"a": 1}\n\n'],
        [b'data: {"a": 1}\n', b"\n"],
        [b"data: x\n\n\ndata: y\n\n"],
        [b"\xef\xbb", b"\xbfdata: x\n\n"],
        [b"event: error\n", b'data: {"error": "no"}\n\n'],
        [b"data: a\n", b"data: b\n\n"],
        [b"data: a\r", b"\ndata: b\n\n"],
        [b"data: \xff\xfe\n\n"],
        [b"data: x\n\ndata: y\n: c"],
    ],
    ids=[
        "partial-tail",
        "split-field-name",
        "split-blank-line",
        "extra-blank-line",
        "split-bom",
        "event-field-first",
        "multi-line-data",
        "cr-then-lf",
        "invalid-utf8",
        "unterminated-lines-after-an-event",
    ],
)
def test_awkward_splits_agree_with_the_general_path(chunks):
    assert _decode(chunks, fast=True) == _decode(chunks, fast=False)
    assert _parse(chunks, fast=True) == _parse(chunks, fast=False)


# -- reads that end with a line pending (the bug mutation testing found) ----------------------


@pytest.mark.parametrize(
    ("chunks", "expected"),
    [
        ([b"data: a\n", b"data: b\n\n"], [("a\nb", "message")]),
        ([b"event: error\n", b"data: b\n\n"], [("b", "error")]),
        ([b"event: error\ndata: a\n", b"data: b\n\n"], [("a\nb", "error")]),
        ([b"data: a", b"\ndata: b\n\n"], [("a\nb", "message")]),
        ([b"data: a\n", b"\ndata: b\n\n"], [("a", "message"), ("b", "message")]),
        ([b"data: a\n\ndata: b\n", b"data: c\n\n"], [("a", "message"), ("b\nc", "message")]),
    ],
    ids=[
        "data-pending",
        "event-pending",
        "event-and-data-pending",
        "line-unterminated",
        "blank-line-next-read",
        "data-pending-after-an-event",
    ],
)
def test_a_read_ending_with_a_field_pending_keeps_the_event_whole(chunks, expected):
    for fast in (True, False):
        events, *_ = _decode(chunks, fast=fast)
        assert [(event.data, event.event) for event in events] == expected


@st.composite
def _line_splits(draw: st.DrawFn) -> list[bytes]:
    """A stream cut into reads at line ends only: every read ends with a whole line, so the
    decoder is between lines, often with a field of the current event pending."""
    body = b"".join(draw(_streams()))
    ends = [i + 1 for i, byte in enumerate(body) if byte in b"\r\n"]
    cuts = sorted(set(draw(st.lists(st.sampled_from(ends), max_size=16)))) if ends else []
    return [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]


@settings(max_examples=examples(400), deadline=None)
@given(_line_splits())
def test_any_split_at_line_ends_gives_the_events_of_the_whole_body(chunks):
    whole = _decode([b"".join(chunks)], fast=False)
    assert _decode(chunks, fast=True) == whole
    assert _decode(chunks, fast=False) == whole
    assert _parse(chunks, fast=True) == _parse(chunks, fast=False)


@settings(max_examples=examples(300), deadline=None)
@given(_streams(), st.data())
def test_any_split_anywhere_gives_the_events_of_the_whole_body(chunks, data):
    body = b"".join(chunks)
    cuts = data.draw(st.lists(st.integers(0, len(body)), max_size=32))
    pieces = _split(body, cuts)
    assert _decode(pieces, fast=True) == _decode([body], fast=False)
