"""A sampled stream's shape: the union of its chunks' shapes, each distinct shape walked once."""

import httpx2
import orjson
import pytest

import chatcontract.wire.fingerprint as fingerprint_module
from chatcontract.contract import load_preset
from chatcontract.transport import InstrumentedTransport
from chatcontract.wire import shape_paths

COMET = load_preset("cometapi")
BODY = {"model": "gpt-4.1-nano", "stream": True, "messages": [{"role": "user", "content": "hi"}]}


def _chunk(delta, finish=None, **extra):
    choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
    return {"id": "c1", "object": "chat.completion.chunk", "created": 1, "model": "m",
            "choices": [choice], **extra}  # fmt: skip


USAGE = {"prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}
USAGE_CHUNK = {"id": "c1", "object": "chat.completion.chunk", "choices": [], "usage": USAGE}
CHUNKS = [
    _chunk({"role": "assistant", "content": ""}, obfuscation="ab"),
    _chunk({"content": "Hel"}, obfuscation="abcd"),
    _chunk({"content": ' "lo"'}, obfuscation=""),  # escaped quotes: read the general way
    _chunk({"content": "\n"}, obfuscation="x"),
    _chunk({"content": "  indented"}, obfuscation="y"),  # two spaces after a quote
    _chunk({"content": "!"}, obfuscation="z" * 9),
    _chunk({}, finish="stop", obfuscation="q"),
    USAGE_CHUNK,
]


def _observe(chunks, monkeypatch=None):
    body = b"".join(b"data: " + orjson.dumps(chunk) + b"\n\n" for chunk in chunks)
    body += b"data: [DONE]\n\n"

    def answer(request):
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    exchanges = []
    transport = InstrumentedTransport(
        contract=COMET,
        sinks=[exchanges.append],
        inner=httpx2.MockTransport(answer),
        shape_sample_rate=1.0,
    )
    with httpx2.Client(transport=transport, base_url="http://sim/v1") as client:
        client.post("/chat/completions", json=BODY).read()
    [exchange] = exchanges
    return exchange


def test_a_streams_shape_is_the_union_of_its_chunks_shapes():
    exchange = _observe(CHUNKS)
    expected = set()
    for chunk in CHUNKS:
        expected.update(shape_paths(chunk))
    assert set(exchange.response.shape_paths) == expected
    assert list(exchange.response.shape_paths) == sorted(expected)
    assert "usage.prompt_tokens:number" in expected
    assert "choices[].delta.role:string" in expected


def test_chunks_that_differ_only_in_their_strings_are_walked_once(monkeypatch):
    walked = []
    real = fingerprint_module.shape_paths
    monkeypatch.setattr(
        fingerprint_module, "shape_paths", lambda doc: walked.append(doc) or real(doc)
    )
    plain = [_chunk({"content": f"word{n}"}, obfuscation="o" * n) for n in range(40)]
    exchange = _observe([CHUNKS[0], *plain, CHUNKS[-2], CHUNKS[-1]])
    # the role chunk, one content chunk, the finish chunk, the usage chunk (and the request)
    assert len([doc for doc in walked if doc.get("id") == "c1"]) == 4
    assert "choices[].delta.content:string" in exchange.response.shape_paths


@pytest.mark.parametrize("count", [1, 3])
def test_the_same_shape_whatever_the_strings(count):
    first = _observe([_chunk({"content": "a"}, obfuscation="b")] * count)
    other = _observe([_chunk({"content": "other text"}, obfuscation="")] * count)
    assert first.response.shape_fingerprint == other.response.shape_fingerprint
