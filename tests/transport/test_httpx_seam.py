"""The one private seam into httpx2 (``transport/_httpx_seam.py``): these tests fail loudly when
an httpx2/httpcore2 upgrade moves it, and a transport without it falls back to no DNS phase
rather than wrong timings."""

import httpcore2
import httpx2
import pytest

from chatcontract.transport import InstrumentedTransport, _httpx_seam, install_backend, instrumented
from chatcontract.transport._httpx_seam import (
    BACKEND_ATTRIBUTE,
    HEADER_LIST_ATTRIBUTE,
    POOL_ATTRIBUTE,
    URI_ATTRIBUTE,
    header_layout,
    network_backend,
    pool_of,
    set_network_backend,
    url_key,
)
from chatcontract.transport._timing import AsyncTimedBackend, TimedBackend, has_timed_backend

BODY = {"model": "gpt-4.1-nano", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(
    ("make", "backend"),
    [
        (httpx2.HTTPTransport, httpcore2.NetworkBackend),
        (httpx2.AsyncHTTPTransport, httpcore2.AsyncNetworkBackend),
    ],
    ids=["sync", "async"],
)
def test_httpx2_still_keeps_its_pool_and_backend_where_the_seam_reads_them(make, backend):
    transport = make()
    pool = getattr(transport, POOL_ATTRIBUTE, None)
    assert pool is not None, f"httpx2 moved {POOL_ATTRIBUTE}: update transport/_httpx_seam.py"
    found = getattr(pool, BACKEND_ATTRIBUTE, None)
    assert isinstance(found, backend), (
        f"httpcore2 moved {BACKEND_ATTRIBUTE}: update transport/_httpx_seam.py"
    )
    assert pool_of(transport) is pool
    assert network_backend(transport) is found


@pytest.mark.parametrize(
    ("make", "is_async", "timed"),
    [
        (httpx2.HTTPTransport, False, TimedBackend),
        (httpx2.AsyncHTTPTransport, True, AsyncTimedBackend),
    ],
    ids=["sync", "async"],
)
def test_install_backend_puts_the_timed_backend_under_the_pool(make, is_async, timed):
    transport = make()
    assert install_backend(transport, is_async=is_async)
    assert isinstance(network_backend(transport), timed)
    assert has_timed_backend(transport)


def test_the_pool_is_found_through_wrappers():
    inner = httpx2.HTTPTransport()
    outer = InstrumentedTransport(inner=inner)
    assert pool_of(outer) is getattr(inner, POOL_ATTRIBUTE)


def test_a_transport_without_the_seam_is_left_alone():
    mock = httpx2.MockTransport(lambda request: httpx2.Response(200))
    assert not set_network_backend(mock, TimedBackend())
    assert not install_backend(mock, is_async=False)
    assert pool_of(mock) is None
    assert not has_timed_backend(mock)


def test_without_the_seam_a_call_has_no_dns_phase_but_real_connect_timings(simulator, monkeypatch):
    """A moved seam: the backend is not installed; connect comes from httpcore2's public trace
    events and DNS is reported as absent, never guessed."""
    monkeypatch.setattr("chatcontract.transport._httpx_seam.BACKEND_ATTRIBUTE", "_moved_away")
    inner = httpx2.HTTPTransport()
    assert not install_backend(inner, is_async=False)
    exchanges = []
    transport = InstrumentedTransport(inner=inner, sinks=[exchanges.append])
    with httpx2.Client(transport=transport, timeout=10) as client:
        client.post(
            simulator.base_url.replace("127.0.0.1", "localhost") + "/chat/completions",
            json=BODY,
            headers={"Authorization": f"Bearer {simulator.api_key}"},
        )
    [exchange] = exchanges
    assert exchange.timings.dns_ms is None
    assert exchange.timings.connect_ms is not None


def test_with_the_seam_a_named_host_gets_a_dns_phase(simulator):
    exchanges = []
    transport = InstrumentedTransport(sinks=[exchanges.append])
    with httpx2.Client(transport=transport, timeout=10) as client:
        client.post(
            simulator.base_url.replace("127.0.0.1", "localhost") + "/chat/completions",
            json=BODY,
            headers={"Authorization": f"Bearer {simulator.api_key}"},
        )
    assert exchanges[0].timings.dns_ms is not None
    assert exchanges[0].timings.connect_ms is not None


def test_httpx2_headers_still_keep_their_lower_cased_names_where_the_seam_reads_them():
    headers = httpx2.Headers([("X-Stainless-Retry-Count", "0"), ("Authorization", "Bearer k")])
    items = getattr(headers, HEADER_LIST_ATTRIBUTE, None)
    assert isinstance(items, list), (
        f"httpx2 moved Headers.{HEADER_LIST_ATTRIBUTE}: update transport/_httpx_seam.py"
    )
    assert [item[:2] for item in items] == [
        (b"X-Stainless-Retry-Count", b"x-stainless-retry-count"),
        (b"Authorization", b"authorization"),
    ]
    found = header_layout(headers)
    assert found is not None
    assert found[0] is items
    assert found[1] == {b"x-stainless-retry-count": 0, b"authorization": 1}


def test_a_head_layout_is_remembered_by_its_names_and_reads_each_request_s_own_values():
    first = httpx2.Headers([("A", "1"), ("B", "2")])
    second = httpx2.Headers([("a", "3"), ("b", "4")])
    layout_1, layout_2 = header_layout(first), header_layout(second)
    assert layout_1 is not None and layout_2 is not None
    assert layout_1[1] is layout_2[1]  # worked out once for the same names
    items, layout = layout_2
    assert items[layout[b"b"]][2] == b"4"
    assert header_layout(httpx2.Headers([("B", "5"), ("A", "6")]))[1] == {b"b": 0, b"a": 1}


def test_a_repeated_name_has_no_layout_even_once_remembered():
    headers = httpx2.Headers([("A", "1"), ("a", "2")])
    assert header_layout(headers) is None
    assert header_layout(httpx2.Headers([("a", "3"), ("A", "4")])) is None


def test_the_layouts_remembered_are_bounded(monkeypatch):
    monkeypatch.setattr(_httpx_seam, "_LAYOUTS", {})
    for n in range(_httpx_seam._MAX_LAYOUTS + 10):
        found = header_layout(httpx2.Headers([(f"x-{n}", "v")]))
        assert found is not None and found[1] == {f"x-{n}".encode(): 0}
    assert len(_httpx_seam._LAYOUTS) == _httpx_seam._MAX_LAYOUTS


class _OtherHeaders:
    def __init__(self) -> None:
        self._list = [(b"A", b"a")]  # not the (raw, lower, value) items of httpx2


@pytest.mark.parametrize(
    "headers",
    [httpx2.Headers([("A", "1"), ("a", "2")]), object(), _OtherHeaders()],
    ids=["repeated-name", "no-seam", "other-items"],
)
def test_headers_the_seam_cannot_read_in_one_pass_are_left_to_the_public_path(headers):
    assert header_layout(headers) is None


class _UnhashableNames:
    def __init__(self) -> None:
        self._list = [(b"A", [b"a"], b"1")]


class _ShortItems:
    def __init__(self) -> None:
        self._list = [(b"A",)]


@pytest.mark.parametrize(
    "headers", [_UnhashableNames(), _ShortItems()], ids=["unhashable", "short"]
)
def test_items_of_another_shape_have_no_layout_and_none_is_remembered(headers, monkeypatch):
    monkeypatch.setattr(_httpx_seam, "_LAYOUTS", {})
    assert header_layout(headers) is None
    assert _httpx_seam._LAYOUTS == {}


def test_without_the_header_seam_a_request_header_still_reads_as_headers_get(monkeypatch):
    monkeypatch.setattr(instrumented, "header_layout", lambda headers: None)
    request = httpx2.Request(
        "POST", "http://127.0.0.1/", headers={"Authorization": "Bearer k", "X-A": "1"}
    )
    assert instrumented.request_header(request, b"authorization") == "Bearer k"
    assert instrumented.request_header(request, b"x-request-source") is None


def test_httpx2_urls_still_keep_their_parsed_parts_where_the_seam_reads_them():
    url = httpx2.URL("http://127.0.0.1:9/v1/chat/completions?key=x")
    parts = getattr(url, URI_ATTRIBUTE, None)
    assert isinstance(parts, tuple), f"httpx2 moved URL.{URI_ATTRIBUTE}: update _httpx_seam.py"
    assert url_key(url) == url_key(httpx2.URL(str(url)))
    assert hash(url_key(url)) == hash(url_key(httpx2.URL(str(url))))


@pytest.mark.parametrize(
    "other",
    [
        "http://127.0.0.1:9/v1/chat/completions",
        "http://127.0.0.1:9/v1/chat/completions?key=y",
        "https://127.0.0.1:9/v1/chat/completions?key=x",
        "http://127.0.0.1:8/v1/chat/completions?key=x",
        "http://127.0.0.1:9/v1/models?key=x",
    ],
    ids=["no-query", "other-query", "other-scheme", "other-port", "other-path"],
)
def test_urls_that_differ_have_different_keys(other):
    assert url_key(httpx2.URL("http://127.0.0.1:9/v1/chat/completions?key=x")) != url_key(
        httpx2.URL(other)
    )


def test_without_the_url_seam_there_is_no_key():
    assert url_key(object()) is None
    assert url_key("http://127.0.0.1/") is None


def test_without_the_url_seam_an_exchange_still_records_the_safe_url(monkeypatch):
    monkeypatch.setattr(instrumented, "url_key", lambda url: None)
    exchanges = []
    transport = InstrumentedTransport(
        sinks=[exchanges.append],
        inner=httpx2.MockTransport(lambda request: httpx2.Response(200, json={})),
    )
    with httpx2.Client(transport=transport) as client:
        client.post("http://127.0.0.1/v1/chat/completions?key=sk-secret", json=BODY)
        client.post("http://127.0.0.1/v1/chat/completions?key=sk-secret", json=BODY)
    assert [e.request.url for e in exchanges] == ["http://127.0.0.1/v1/chat/completions"] * 2


def test_each_url_called_records_its_own_safe_url():
    exchanges = []
    transport = InstrumentedTransport(
        sinks=[exchanges.append],
        inner=httpx2.MockTransport(lambda request: httpx2.Response(200, json={})),
    )
    with httpx2.Client(transport=transport) as client:
        for url in ("http://a.test/v1/chat/completions", "http://b.test/v2/chat?x=1"):
            client.post(url, json=BODY)
            client.post(url, json=BODY)
    assert [e.request.url for e in exchanges] == [
        "http://a.test/v1/chat/completions",
        "http://a.test/v1/chat/completions",
        "http://b.test/v2/chat",
        "http://b.test/v2/chat",
    ]
