import json

import httpx2
import pytest
from client_helpers import PONG, contract_for, env_for
from hypothesis import given, settings
from hypothesis import strategies as st

from chatcontract.client import CallFailedError, ChatClient, StreamDelta, ToolCallDelta
from chatcontract.client._stream import StreamReader
from chatcontract.contract import Streaming, load_preset
from chatcontract.transport import STREAM_EXTENSION
from chatcontract.wire import StreamAssembler, StreamParser, StreamVerdict

CONTRACT = load_preset("cometapi")


def event(delta=None, finish=None, **top):
    chunk = {
        "id": "c1",
        "model": "m",
        "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}],
        **top,
    }
    return f"data: {json.dumps(chunk)}\n\n".encode()


class Fed:
    """The transport's parser of one stream, and the client's reader of it."""

    def __init__(self, *, expect_usage=False):
        self.parser = StreamParser(contract=CONTRACT, expect_usage=expect_usage)
        self.reader = StreamReader(self.parser)

    def feed(self, data, now=0.0):
        """The transport took ``data``; the deltas the client delivers for it."""
        self.parser.feed(data, now)
        return self._take()

    def close(self, now=None):
        """The body ended (the transport closed its parser): what is delivered then."""
        self.parser.close(now)
        return self._take()

    def _take(self):
        delta = self.reader.take()
        return [] if delta is None else [delta]


def test_content_reasoning_and_tool_call_fragments_become_deltas():
    fed = Fed()
    pieces = [
        event({"role": "assistant", "content": ""}),
        event({"reasoning_content": "think"}),
        event({"content": "Hel"}),
        event(
            {
                "tool_calls": [
                    {"index": 0, "id": "call_1", "function": {"name": "f", "arguments": '{"a"'}}
                ]
            }
        ),
        event({"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}),
    ]
    deltas = [delta for piece in pieces for delta in fed.feed(piece)]
    assert deltas == [
        StreamDelta(reasoning="think"),
        StreamDelta(content="Hel"),
        StreamDelta(tool_calls=(ToolCallDelta(index=0, id="call_1", name="f", arguments='{"a"'),)),
        StreamDelta(tool_calls=(ToolCallDelta(index=0, arguments=":1}"),)),
    ]
    fed.close()
    result = fed.reader.result
    assert result.tool_calls[0].arguments == '{"a":1}'
    assert result.verdict is StreamVerdict.CUT


def test_one_chunk_holding_several_events_is_one_delta():
    fed = Fed()
    deltas = fed.feed(event({"content": "Hel"}) + event({"content": "lo"}))
    assert deltas == [StreamDelta(content="Hello")]


def test_split_bytes_keep_pieces_together_and_nothing_after_done_is_delivered():
    fed = Fed()
    body = (
        event({"content": "A"})
        + event(finish="stop")
        + b"data: [DONE]\n\n"
        + event({"content": "late"})
    )
    deltas = [d for i in range(len(body)) for d in fed.feed(body[i : i + 1], now=float(i))]
    assert deltas == [StreamDelta(content="A")]
    fed.close()
    assert fed.reader.result.content == "A"


def test_error_events_and_malformed_chunks_deliver_nothing_and_stop_early():
    fed = Fed()
    error = b'data: {"error": {"message": "boom", "type": "x", "code": "y"}}\n\n'
    assert fed.feed(error) == []
    assert fed.reader.early_verdict is StreamVerdict.INBAND_ERROR
    broken = Fed()
    assert broken.feed(b'data: {"choices": [\n\n') == []
    assert broken.reader.early_verdict is StreamVerdict.MALFORMED_CHUNK
    fine = Fed()
    fine.feed(event({"content": "x"}))
    assert fine.reader.early_verdict is None


def test_the_reader_of_a_response_without_a_stream_parser_is_none():
    assert StreamReader.of({}) is None
    assert StreamReader.of({STREAM_EXTENSION: "not a parser"}) is None


def test_a_chat_client_stream_assembles_each_event_once(monkeypatch):
    """The client reads its deltas from the transport's parser: each event of the body is
    assembled once per attempt, never decoded and assembled a second time."""
    pushed = []
    original = StreamAssembler._push
    typed = StreamAssembler._take_chunk  # the common chunk, decoded by the typed decoder

    def counting(self, data, *args):
        pushed.append(data)
        original(self, data, *args)

    def counting_typed(self, chunk, *args):
        pushed.append(chunk)
        typed(self, chunk, *args)

    monkeypatch.setattr(StreamAssembler, "_push", counting)
    monkeypatch.setattr(StreamAssembler, "_take_chunk", counting_typed)
    body = event({"content": "po"}) + event({"content": "ng"}, finish="stop") + USAGE_EVENT
    client = _sse_client(body + b"data: [DONE]\n\n", pieces=3)
    with client, client.stream(PONG) as stream:
        delivered = "".join(delta.content for delta in stream)
    assert delivered == "pong"
    assert len(pushed) == 4  # two deltas, the usage chunk, [DONE]


# -- what the caller received is the result ----------------------------------------------------


def test_a_last_event_without_its_blank_line_is_delivered_at_the_end_of_the_body():
    fed = Fed()
    body = event({"content": "Hel"}) + event({"content": "lo"}, finish="stop").rstrip(b"\n")
    assert fed.feed(body) == [StreamDelta(content="Hel")]
    assert fed.close(now=1.0) == [StreamDelta(content="lo")]
    assert fed.reader.take() is None  # once only
    result = fed.reader.result
    assert result.content == "Hello"
    assert result.finish_reason == "stop"


def test_the_result_before_the_end_is_the_stream_so_far():
    fed = Fed()
    fed.feed(event({"content": "a"}))
    assert fed.reader.result.content == "a"
    assert fed.parser.result is None  # still open


@pytest.mark.parametrize(
    ("chunk", "delivered"),
    [
        (
            {
                "choices": [
                    {"index": 0, "delta": {"content": "a"}},
                    {"index": 0, "delta": {"content": "b"}},
                ]
            },
            "ab",
        ),
        ({"error": None, "choices": [{"index": 0, "delta": {"content": "x"}}]}, "x"),
        ({"choices": [{"index": False, "delta": {"content": "x"}}]}, ""),
        ({"choices": [{"index": 1, "delta": {"content": "x"}}]}, ""),
    ],
    ids=["two-choice-zeros", "null-error-field", "bool-index", "other-choice"],
)
def test_deltas_carry_exactly_what_the_result_assembles(chunk, delivered):
    fed = Fed()
    deltas = fed.feed(f"data: {json.dumps(chunk)}\n\n".encode())
    deltas += fed.close()
    assert "".join(d.content for d in deltas) == fed.reader.result.content == delivered


_TEXT = st.text(alphabet="ab é☃\n", max_size=4)
_DELTA = st.one_of(
    st.builds(lambda text: {"content": text}, _TEXT),
    st.builds(lambda text: {"role": "assistant", "content": text}, _TEXT),
    st.builds(lambda text: {"reasoning_content": text}, _TEXT),
    st.just({"content": None}),
    st.just({"content": 7}),
    st.just({}),
)


@st.composite
def _stream_bodies(draw: st.DrawFn) -> list[bytes]:
    events = []
    for delta in draw(st.lists(_DELTA, max_size=6)):
        index = draw(st.sampled_from([{"index": 0}, {}, {"index": 1}, {"index": False}]))
        chunk = {"choices": [{**index, "delta": delta, "finish_reason": None}]}
        events.append(f"data: {json.dumps(chunk, ensure_ascii=False)}".encode())
    if draw(st.booleans()):
        events.append(b'data: {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}')
    if draw(st.booleans()):
        events.append(b"data: [DONE]")
    if draw(st.booleans()):
        events.append(b'data: {"choices": [{"index": 0, "delta": {"content": "late"}}]}')
    eol = draw(st.sampled_from([b"\n", b"\r\n", b"\r"]))
    body = b"".join(e + eol + eol for e in events)
    if draw(st.booleans()):  # the last event lost its blank line (or both line ends)
        body = body[: -len(eol) * draw(st.integers(1, 2))] if body else body
    cuts = sorted(draw(st.lists(st.integers(0, len(body)), max_size=10)))
    return [body[a:b] for a, b in zip([0, *cuts], [*cuts, len(body)], strict=True)]


@settings(max_examples=200, deadline=None)
@given(_stream_bodies())
def test_what_was_delivered_is_the_result_for_any_split(pieces):
    fed = Fed()
    deltas = [d for i, piece in enumerate(pieces) for d in fed.feed(piece, now=float(i))]
    deltas += fed.close(now=float(len(pieces)))
    result = fed.reader.result
    assert "".join(d.content for d in deltas) == result.content
    assert "".join(d.reasoning for d in deltas) == result.reasoning_content
    assert all(deltas)  # no empty delta reaches the caller


# -- through ChatClient ------------------------------------------------------------------------


def _sse_client(
    body: bytes, *, captured: list | None = None, pieces: int = 1, **changes: object
) -> ChatClient:
    def handler(request: httpx2.Request) -> httpx2.Response:
        if captured is not None:
            captured.append(json.loads(request.content))
        size = max(1, len(body) // pieces)
        parts = [body[i : i + size] for i in range(0, len(body), size)]
        return httpx2.Response(
            200, headers={"content-type": "text/event-stream"}, content=iter(parts)
        )

    contract = contract_for("http://provider.test/v1", **changes)
    return ChatClient.from_contract(
        contract, environ=env_for("k-1"), transport=httpx2.MockTransport(handler)
    )


USAGE_EVENT = (
    b'data: {"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2,'
    b' "total_tokens": 5}}\n\n'
)


@pytest.mark.parametrize("pieces", [1, 7, 1000], ids=["one-read", "seven-reads", "tiny-reads"])
def test_chat_client_delivers_a_last_event_that_lost_its_blank_line(pieces):
    body = (
        event({"role": "assistant", "content": "Hel"})
        + event({"content": "lo"})
        + USAGE_EVENT
        + event({"content": "!"}, finish="stop").rstrip(b"\n")  # no blank line, no [DONE]
    )
    no_done = Streaming(include_usage=True, require_done=False)
    with _sse_client(body, pieces=pieces, streaming=no_done) as client:
        with client.stream(PONG) as stream:
            delivered = [delta.content for delta in stream]
        result = stream.result
    assert "".join(delivered) == result.content == "Hello!"


def test_an_interrupted_stream_delivered_exactly_its_partial_content():
    body = event({"content": "Hel"}) + event({"content": "lo"}).rstrip(b"\n")  # then cut
    delivered: list[str] = []
    with (
        _sse_client(body, pieces=3) as client,
        pytest.raises(CallFailedError) as caught,
        client.stream(PONG) as stream,
    ):
        delivered.extend(delta.content for delta in stream)
    assert caught.value.failure.code == "stream_cut"
    assert "".join(delivered) == caught.value.partial_content == "Hello"


def test_chat_client_asks_for_usage_as_the_contract_says_and_judges_what_it_asked():
    body = event({"content": "pong"}, finish="stop") + b"data: [DONE]\n\n"  # no usage chunk
    captured: list = []
    with _sse_client(body, captured=captured) as client:
        with client.stream(PONG, stream_options={"include_usage": False}) as stream:
            delivered = "".join(delta.content for delta in stream)
        result = stream.result  # no error after the full answer: no usage was asked for
        assert delivered == result.content == "pong"
        assert (result.usage, result.violations) == (None, ())
        with client.stream(PONG) as stream:
            list(stream)
    assert captured[0]["stream_options"] == {"include_usage": False}
    assert captured[1]["stream_options"] == {"include_usage": True}  # the contract's default
    # Asked for and missing: the complete answer is returned, the clause recorded as broken.
    assert [v.code for v in stream.result.violations] == ["missing_usage"]


def test_chat_client_asks_for_no_usage_when_the_contract_expects_none():
    body = event({"content": "pong"}, finish="stop") + b"data: [DONE]\n\n"
    captured: list = []
    no_usage = Streaming(include_usage=False)
    with _sse_client(body, captured=captured, streaming=no_usage) as client:
        with client.stream(PONG) as stream:
            delivered = "".join(delta.content for delta in stream)
        assert delivered == stream.result.content == "pong"
    assert "stream_options" not in captured[0]
