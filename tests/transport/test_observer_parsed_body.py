"""The observer leaves a non-streamed 2xx body's parse in the request's extensions (what the
client answers from instead of parsing the body again), and nothing for other answers."""

from __future__ import annotations

import httpx2
import pytest

from chatcontract.contract import load_preset
from chatcontract.transport import InstrumentedTransport
from chatcontract.transport.observer import PARSED_EXTENSION, ParsedBody
from chatcontract.wire import parse_completion

COMET = load_preset("cometapi")
COMPLETION = (
    b'{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m","choices":'
    b'[{"index":0,"message":{"role":"assistant","content":"pong"},"finish_reason":"stop"}]}'
)
STREAM = b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"a"}}]}\n\ndata: [DONE]\n\n'


def _send(status: int, content_type: str, body: bytes, *, chunked: bool) -> httpx2.Request:
    def answer(request: httpx2.Request) -> httpx2.Response:
        content = iter([body[:10], body[10:]]) if chunked else body
        return httpx2.Response(status, headers={"content-type": content_type}, content=content)

    transport = InstrumentedTransport(contract=COMET, inner=httpx2.MockTransport(answer))
    with httpx2.Client(transport=transport) as client:
        request = client.build_request("POST", "http://provider.test/v1/chat/completions", json={})
        client.send(request).read()
    return request


@pytest.mark.parametrize("chunked", [False, True], ids=["whole", "read-in-pieces"])
def test_a_completed_body_is_handed_over_with_its_parse(chunked):
    request = _send(200, "application/json", COMPLETION, chunked=chunked)
    found = request.extensions[PARSED_EXTENSION]
    assert isinstance(found, ParsedBody)
    assert (found.body, found.contract) == (COMPLETION, COMET)
    assert found.result == parse_completion(COMPLETION, contract=COMET)
    assert found.result_for(COMPLETION, COMET) is found.result


@pytest.mark.parametrize(
    ("status", "content_type", "body"),
    [
        pytest.param(503, "application/json", b'{"error": {"message": "busy"}}', id="an-error"),
        pytest.param(200, "text/event-stream", STREAM, id="a-stream"),
    ],
)
def test_nothing_is_handed_over_for_an_error_or_a_stream(status, content_type, body):
    request = _send(status, content_type, body, chunked=True)
    assert PARSED_EXTENSION not in request.extensions
