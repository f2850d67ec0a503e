"""``request_header`` reads a request's headers once and answers as ``Headers.get`` does."""

import httpx2
import pytest

from chatcontract.transport.instrumented import request_header


@pytest.mark.parametrize(
    ("headers", "name"),
    [
        ([("Authorization", "Bearer k")], b"authorization"),
        ([("X-Request-Source", "a"), ("x-request-source", "b")], b"x-request-source"),
        ([("x-stainless-retry-count", "0")], b"x-stainless-retry-count"),
        ([("Other", "v")], b"authorization"),
        ([("X-Request-Source", "caf\u00e9")], b"x-request-source"),
        ([("X-Request-Source", "caf\u00e9".encode().decode("latin-1"))], b"x-request-source"),
    ],
    ids=["one", "repeated", "retry-count", "absent", "utf8", "latin1"],
)
def test_a_header_reads_as_headers_get_reads_it(headers, name):
    request = httpx2.Request(
        "POST", "http://127.0.0.1/v1/chat/completions",
        headers=[(key, value.encode("utf-8") if value.isascii() else value.encode("latin-1"))
                 for key, value in headers],
    )  # fmt: skip
    assert request_header(request, name) == request.headers.get(name.decode())


def test_the_headers_are_read_once_per_request(monkeypatch):
    request = httpx2.Request("POST", "http://127.0.0.1/", headers={"Authorization": "Bearer k"})
    assert request_header(request, b"authorization") == "Bearer k"
    monkeypatch.setattr(httpx2.Headers, "raw", property(lambda self: pytest.fail("read again")))
    assert request_header(request, b"x-request-source") is None
