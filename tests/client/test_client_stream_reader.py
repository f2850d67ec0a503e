import json

from chatcontract.client import StreamDelta, ToolCallDelta
from chatcontract.client._stream import StreamReader
from chatcontract.contract import load_preset
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
