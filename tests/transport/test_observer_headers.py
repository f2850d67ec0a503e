"""The response headers an Exchange records read the same whatever form the head comes in."""

import httpx2
import pytest

from chatcontract.transport import observer
from chatcontract.transport.observer import CallObserver, request_facts

RAW = [
    (b"Content-Type", b"application/json"),
    (b"X-Request-ID", b"r1"),
    (b"x-ratelimit-remaining-requests", b"9"),
    (b"X-RateLimit-\xc0", b"v"),
    (b"Retry-After", b"1"),
    (b"retry-after", b"2"),
    (b"Server", b"uvicorn"),
    (b"cf-ray", b"ray"),
]


def _response_of(headers):
    request = request_facts("POST", "http://127.0.0.1/v1/chat/completions", b"", {}, None)
    call = CallObserver(request=request, contract=None, sinks=())
    call.on_response(200, headers)
    call.on_chunk(b"{}")
    return call.finish().response


@pytest.mark.parametrize(
    "headers",
    [
        httpx2.Headers(RAW),
        RAW,
        {key.decode("latin-1"): value.decode("latin-1") for key, value in RAW},
    ],
    ids=["httpx2-headers", "raw-pairs", "mapping"],
)
def test_the_kept_headers_read_the_same_from_every_form(headers):
    response = _response_of(headers)
    assert response.content_type == "application/json"
    assert list(response.request_ids.items()) == [("x-request-id", "r1"), ("cf-ray", "ray")]
    assert dict(response.rate_limit_headers) == {
        "x-ratelimit-remaining-requests": "9",
        "x-ratelimit-\u00e0": "v",
        "retry-after": "2",
    }


def test_headers_of_another_shape_than_httpx2s_are_read_the_public_way(monkeypatch):
    monkeypatch.setattr(observer, "header_items", lambda headers: [(b"a", b"b")])
    response = _response_of(httpx2.Headers(RAW))
    assert response.content_type == "application/json"
    assert dict(response.request_ids) == {"x-request-id": "r1", "cf-ray": "ray"}
    assert response.rate_limit_headers["retry-after"] == "2"
