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


def test_a_head_with_names_seen_before_reads_its_own_values(monkeypatch):
    monkeypatch.setattr(observer, "_HEAD_PLANS", {})
    first = _response_of(httpx2.Headers([(b"Content-Type", b"application/json"),
                                         (b"x-request-id", b"r1")]))  # fmt: skip
    second = _response_of(httpx2.Headers([(b"content-type", b"text/plain"),
                                          (b"X-Request-Id", b"r2")]))  # fmt: skip
    assert len(observer._HEAD_PLANS) == 1  # the second head's plan was the first's
    assert (first.content_type, dict(first.request_ids)) == (
        "application/json",
        {"x-request-id": "r1"},
    )
    assert (second.content_type, dict(second.request_ids)) == ("text/plain", {"x-request-id": "r2"})


def test_heads_past_the_bound_are_read_without_being_remembered(monkeypatch):
    monkeypatch.setattr(observer, "_HEAD_PLANS", {})
    monkeypatch.setattr(observer, "_MAX_HEAD_PLANS", 1)
    _response_of(httpx2.Headers([(b"server", b"a")]))
    response = _response_of(httpx2.Headers(RAW))
    assert list(observer._HEAD_PLANS) == [(b"server",)]
    assert response.content_type == "application/json"
    assert dict(response.rate_limit_headers)["retry-after"] == "2"


def test_an_empty_head_keeps_nothing():
    response = _response_of(httpx2.Headers([]))
    assert (response.content_type, dict(response.request_ids)) == (None, {})
    assert dict(response.rate_limit_headers) == {}


@pytest.mark.parametrize(
    "items",
    [
        [("Content-Type", "content-type", "application/json")],
        [(b"Content-Type", b"content-type", "application/json")],
        [(b"Content-Type", b"content-type")],
        [(b"Content-Type", b"content-type", b"application/json", b"")],
        [[b"Content-Type", b"content-type", b"application/json"]],
        [b"content-type"],
    ],
    ids=["text", "text-value", "two-members", "four-members", "a-list", "bytes"],
)
def test_items_of_another_shape_than_httpx2s_are_read_the_public_way(monkeypatch, items):
    monkeypatch.setattr(observer, "_HEAD_PLANS", {})
    monkeypatch.setattr(observer, "header_items", lambda headers: items)
    response = _response_of(httpx2.Headers(RAW))
    assert response.content_type == "application/json"
    assert list(response.request_ids.items()) == [("x-request-id", "r1"), ("cf-ray", "ray")]
    assert observer._HEAD_PLANS == {}


def test_request_ids_are_ordered_most_specific_first_whatever_order_they_came_in():
    response = _response_of(
        httpx2.Headers(
            [(b"cf-ray", b"ray"), (b"x-request-id", b"r1"), (b"x-oneapi-request-id", b"o1")]
        )
    )
    assert list(response.request_ids.items()) == [
        ("x-oneapi-request-id", "o1"),
        ("x-request-id", "r1"),
        ("cf-ray", "ray"),
    ]
    assert dict(response.rate_limit_headers) == {}


def test_long_request_ids_and_rate_limits_are_cut():
    response = _response_of(
        httpx2.Headers([(b"x-request-id", b"r" * 200), (b"x-ratelimit-limit", b"9" * 100)])
    )
    assert response.request_ids["x-request-id"] == "r" * 128
    assert response.rate_limit_headers["x-ratelimit-limit"] == "9" * 64
