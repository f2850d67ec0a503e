"""Fetching the documentation is bounded and sends no credential; failures are values."""

from __future__ import annotations

import pytest

from chatcontract.ops._docs_fetch import (
    DocumentUnreachable,
    FetchedDocument,
    FetchLimits,
    fetch_document,
)
from docs_server import serve_docs


@pytest.fixture
def docs():
    with serve_docs() as server:
        yield server


def test_a_page_is_fetched_with_its_content_type(docs):
    url = docs.put("/chat", "<p>hello</p>")
    found = fetch_document(url)
    assert isinstance(found, FetchedDocument)
    assert found.body == b"<p>hello</p>"
    assert found.content_type.startswith("text/html")


def test_no_credential_or_cookie_is_sent_even_after_a_set_cookie_redirect(docs):
    docs.put("/final", "<p>ok</p>")
    url = docs.redirect("/start", "/final", **{"Set-Cookie": "session=secret-cookie; Path=/"})
    found = fetch_document(url)
    assert isinstance(found, FetchedDocument)
    assert found.final_url.endswith("/final")
    sent = [headers for path, headers in docs.requests if path in ("/start", "/final")]
    assert len(sent) == 2
    assert all("authorization" not in headers and "cookie" not in headers for headers in sent)


def test_a_url_with_credentials_is_refused_before_any_connection(docs):
    docs.put("/chat", "<p>ok</p>")
    found = fetch_document(f"http://user:pw@127.0.0.1:{docs.port}/chat")
    assert isinstance(found, DocumentUnreachable)
    assert "carries credentials" in found.reason
    assert "pw" not in found.url
    assert docs.requests == []


@pytest.mark.parametrize(
    "url", ["ftp://127.0.0.1/doc", "file:///etc/passwd", "not a url"], ids=["ftp", "file", "text"]
)
def test_only_http_urls_are_fetched(url):
    found = fetch_document(url)
    assert isinstance(found, DocumentUnreachable)
    assert "http(s)" in found.reason or "no host" in found.reason


def test_five_redirects_are_followed_and_the_sixth_is_not(docs):
    docs.put("/r5", "<p>end</p>")
    for hop in range(5):
        docs.redirect(f"/r{hop}", f"/r{hop + 1}")
    assert isinstance(fetch_document(docs.url("/r0")), FetchedDocument)
    docs.redirect("/r-1", "/r0")
    found = fetch_document(docs.url("/r-1"))
    assert isinstance(found, DocumentUnreachable)
    assert found.reason == "more than 5 redirects"


def test_a_redirect_to_another_scheme_is_refused(docs):
    url = docs.redirect("/away", "file:///etc/passwd")
    found = fetch_document(url)
    assert isinstance(found, DocumentUnreachable)
    assert "redirected to file:///etc/passwd" in found.reason


def test_a_redirect_location_is_printed_without_control_characters(docs):
    # Header values are read as Latin-1: \x9b is a C1 control (CSI) a terminal obeys.
    url = docs.redirect("/away", "ftp://127.0.0.1/\x9b2J\x1b]0;t")
    found = fetch_document(url)
    assert isinstance(found, DocumentUnreachable)
    assert "redirected to ftp://127.0.0.1/?2J" in found.reason
    assert not any(ord(char) < 32 or 127 <= ord(char) < 160 for char in found.reason)


def test_a_body_above_the_cap_is_not_read(docs):
    url = docs.put("/huge", b"x" * 200_000, content_type="text/plain")
    found = fetch_document(url, limits=FetchLimits(max_bytes=64 * 1024))
    assert isinstance(found, DocumentUnreachable)
    assert found.reason == "larger than 64 KiB; not read"


@pytest.mark.parametrize("status", [404, 500, 403], ids=["404", "500", "403"])
def test_an_error_status_is_unreachable_with_the_status(docs, status):
    url = docs.put("/gone", "no", status=status)
    found = fetch_document(url)
    assert isinstance(found, DocumentUnreachable)
    assert found.reason == f"HTTP {status} from {url}"


def test_a_silent_server_times_out(docs):
    url = docs.put("/slow", "<p>late</p>", delay_s=2.0)
    found = fetch_document(url, limits=FetchLimits(timeout_s=0.2))
    assert isinstance(found, DocumentUnreachable)
    assert found.reason == "timed out after 0.2 s"


def test_a_refused_connection_is_a_value_not_an_exception(docs):
    port = docs.port
    docs.close()
    found = fetch_document(f"http://127.0.0.1:{port}/chat", limits=FetchLimits(timeout_s=2))
    assert isinstance(found, DocumentUnreachable)
    assert found.reason.startswith("ConnectError")
