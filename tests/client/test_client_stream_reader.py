import json

import httpx2
import pytest
from client_helpers import PONG, contract_for, env_for
from hypothesis import given, settings
from hypothesis import strategies as st

from chatcontract.client import CallFailedError, ChatClient, StreamDelta, ToolCallDelta
from chatcontract.client._stream import StreamReader
from chatcontract.contract import Streaming, load_preset
from chatcontract.wire import StreamVerdict

CONTRACT = load_preset("cometapi")


def event(delta=None, finish=None, **top):
    chunk = {
        "id": "c1",
        "model": "m",
        "choices": [{"index": 0, "delta": delta or {}, "finish_reason": finish}],
        **top,
    }
    return f"data: {json.dumps(chunk)}\n\n".encode()


def test_content_reasoning_and_tool_call_fragments_become_deltas():
    reader = StreamReader(contract=CONTRACT, expect_usage=False)
    body = (
        event({"role": "assistant", "content": ""})
        + event({"reasoning_content": "think"})
        + event({"content": "Hel"})
        + event(
            {
                "tool_calls": [
                    {"index": 0, "id": "call_1", "function": {"name": "f", "arguments": '{"a"'}}
                ]
            }
        )
        + event({"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]})
    )
    deltas = reader.feed(body, now=1.0)
    assert deltas == [
        StreamDelta(reasoning="think"),
        StreamDelta(content="Hel"),
        StreamDelta(tool_calls=(ToolCallDelta(index=0, id="call_1", name="f", arguments='{"a"'),)),
        StreamDelta(tool_calls=(ToolCallDelta(index=0, arguments=":1}"),)),
    ]
    result = reader.close()
    assert result.tool_calls[0].arguments == '{"a":1}'
    assert result.verdict is StreamVerdict.CUT


def test_split_bytes_keep_pieces_together_and_nothing_after_done_is_delivered():
    reader = StreamReader(contract=CONTRACT, expect_usage=False)
    body = (
        event({"content": "A"})
        + event(finish="stop")
        + b"data: [DONE]\n\n"
        + event({"content": "late"})
    )
    deltas = [d for i in range(len(body)) for d in reader.feed(body[i : i + 1], now=float(i))]
    assert deltas == [StreamDelta(content="A")]
    assert reader.close().content == "A"


def test_error_events_and_malformed_chunks_deliver_nothing_and_stop_early():
    reader = StreamReader(contract=CONTRACT, expect_usage=False)
    error = b'data: {"error": {"message": "boom", "type": "x", "code": "y"}}\n\n'
    assert reader.feed(error, now=0.0) == []
    assert reader.early_verdict is StreamVerdict.INBAND_ERROR
    broken = StreamReader(contract=CONTRACT, expect_usage=False)
    assert broken.feed(b'data: {"choices": [\n\n', now=0.0) == []
    assert broken.early_verdict is StreamVerdict.MALFORMED_CHUNK
    fine = StreamReader(contract=CONTRACT, expect_usage=False)
    fine.feed(event({"content": "x"}), now=0.0)
    assert fine.early_verdict is None


# -- what the caller received is the result ----------------------------------------------------


def test_a_last_event_without_its_blank_line_is_delivered_by_flush():
    reader = StreamReader(contract=CONTRACT, expect_usage=False)
    body = event({"content": "Hel"}) + event({"content": "lo"}, finish="stop").rstrip(b"\n")
    deltas = reader.feed(body, now=0.0)
    assert deltas == [StreamDelta(content="Hel")]
    assert reader.flush(now=1.0) == [StreamDelta(content="lo")]
    assert reader.flush(now=2.0) == []  # once only
    result = reader.close()
    assert result.content == "Hello"
    assert result.finish_reason == "stop"


def test_close_without_flush_still_judges_the_whole_stream():
    reader = StreamReader(contract=CONTRACT, expect_usage=False)
    reader.feed(event({"content": "a"}) + event({}, finish="stop") + b"data: [DONE]", now=0.0)
    result = reader.close()
    assert result.ok and result.done_seen
    assert reader.flush() == []  # the result is built: nothing more to deliver


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
    reader = StreamReader(contract=CONTRACT, expect_usage=False)
    deltas = reader.feed(f"data: {json.dumps(chunk)}\n\n".encode(), now=0.0)
    deltas += reader.flush()
    assert "".join(d.content for d in deltas) == reader.close().content == delivered


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
    reader = StreamReader(contract=CONTRACT, expect_usage=False)
    deltas = [d for i, piece in enumerate(pieces) for d in reader.feed(piece, now=float(i))]
    deltas += reader.flush(now=float(len(pieces)))
    result = reader.close()
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
        assert result.usage is None
        with pytest.raises(CallFailedError) as caught, client.stream(PONG) as stream:
            list(stream)
    assert captured[0]["stream_options"] == {"include_usage": False}
    assert captured[1]["stream_options"] == {"include_usage": True}  # the contract's default
    assert caught.value.failure.code == "missing_usage"


def test_chat_client_asks_for_no_usage_when_the_contract_expects_none():
    body = event({"content": "pong"}, finish="stop") + b"data: [DONE]\n\n"
    captured: list = []
    no_usage = Streaming(include_usage=False)
    with _sse_client(body, captured=captured, streaming=no_usage) as client:
        with client.stream(PONG) as stream:
            delivered = "".join(delta.content for delta in stream)
        assert delivered == stream.result.content == "pong"
    assert "stream_options" not in captured[0]
