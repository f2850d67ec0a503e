"""The local fault relay over real sockets, in front of the simulator and of a 1-ms server."""

from __future__ import annotations

import contextlib
import logging
import shutil
import socket
import ssl
import subprocess
import threading
import uuid

import httpx2
import orjson
import pytest

from chatcontract.errors import RelayError
from chatcontract.transport.relay import FaultRelay, first_event_end
from fast_server import fast_server

BODY = {"model": "gpt-4.1-nano", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 16}
STREAM_BODY = {**BODY, "stream": True}
UPSTREAMS = ["simulator", "fast"]


@pytest.fixture(scope="module")
def fast():
    with fast_server() as server:
        yield server


@pytest.fixture(params=UPSTREAMS)
def upstream(request, simulator, fast):
    """(root URL, chat URL, auth headers) of a healthy endpoint: the simulator or the fast one."""
    if request.param == "simulator":
        auth = {"Authorization": f"Bearer {simulator.api_key}"}
        return simulator.root_url, f"{simulator.base_url}/chat/completions", auth
    return fast.root_url, f"{fast.base_url}/chat/completions", {"Authorization": "Bearer sk-x"}


@pytest.fixture
def relay_for():
    relays: list[FaultRelay] = []

    def start(root_url: str) -> FaultRelay:
        relay = FaultRelay(root_url).start()
        relays.append(relay)
        return relay

    yield start
    for relay in relays:
        relay.stop()


def control(relay, fault, release_ms=None):
    request_id = uuid.uuid4().hex
    return request_id, relay.control(fault=fault, request_id=request_id, release_ms=release_ms)


def raw_request(relay, url, headers, body):
    """Send one request over a raw socket (to see exactly which bytes come back)."""
    payload = orjson.dumps(body)
    path = httpx2.URL(relay.url_for(url)).raw_path.decode()
    head = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{httpx2.URL(relay.base_url).port}"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    head += ["Content-Type: application/json", f"Content-Length: {len(payload)}", "", ""]
    sock = socket.create_connection(("127.0.0.1", httpx2.URL(relay.base_url).port), timeout=5)
    sock.sendall("\r\n".join(head).encode() + payload)
    return sock


def read_stream(relay, url, headers, *, timeout):
    """The bytes of a streamed answer, its status, and the error that ended it (or None)."""
    received, status = b"", None
    try:
        with (
            httpx2.Client(timeout=timeout) as client,
            client.stream("POST", relay.url_for(url), json=STREAM_BODY, headers=headers) as answer,
        ):
            status = answer.status_code
            for chunk in answer.iter_bytes():
                received += chunk
    except httpx2.HTTPError as exc:
        return received, status, exc
    return received, status, None


def read_until_quiet(sock, quiet_s):
    """Every byte the relay sends until it has been quiet for ``quiet_s`` (or closed)."""
    sock.settimeout(quiet_s)
    data = b""
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except TimeoutError:
        return data, False
    return data, True


@pytest.mark.parametrize(
    ("buffer", "end"),
    [
        (b"data: a\n\n", 9),
        (b"data: a\r\n\r\ndata: b\r\n\r\n", 11),
        (b": ping\n\ndata: a\n\n", 17),
        (b"event: x\ndata: a\n\nrest", 18),
        (b"data: a\n", None),
        (b": ping\n\n", None),
        (b"", None),
    ],
    ids=["lf", "crlf", "comment-first", "event-field", "incomplete", "comment-only", "empty"],
)
def test_first_event_end_finds_the_first_event_with_data(buffer, end):
    assert first_event_end(buffer) == end


def test_the_relay_listens_on_loopback_only(relay_for, fast):
    relay = relay_for(fast.root_url)
    assert relay.base_url.startswith("http://127.0.0.1:")
    assert relay.url_for("https://api.example.com/v1/chat/completions?x=1") == (
        f"{relay.base_url}/v1/chat/completions?x=1"
    )


def test_pass_through_returns_the_endpoints_answer_unchanged(relay_for, fast):
    relay = relay_for(fast.root_url)
    url = f"{fast.base_url}/chat/completions"
    for body in (BODY, STREAM_BODY):
        direct = httpx2.post(url, json=body)
        relayed = httpx2.post(relay.url_for(url), json=body)
        assert relayed.status_code == direct.status_code == 200
        assert relayed.content == direct.content
        assert relayed.headers["content-type"] == direct.headers["content-type"]
        assert relayed.headers["x-request-id"] == "req-fast-1"


def test_pass_through_relays_the_simulators_stream(relay_for, simulator):
    relay = relay_for(simulator.root_url)
    url = f"{simulator.base_url}/chat/completions"
    auth = {"Authorization": f"Bearer {simulator.api_key}"}
    response = httpx2.post(relay.url_for(url), json=STREAM_BODY, headers=auth)
    assert response.status_code == 200
    assert response.text.count("data: ") > 2
    assert response.text.endswith("data: [DONE]\n\n")


def test_the_auth_header_goes_through_untouched_and_the_relay_headers_do_not(relay_for, fast):
    relay = relay_for(fast.root_url)
    _, headers = control(relay, "pass")
    key = "Bearer sk-untouched-0123456789"
    response = httpx2.post(
        relay.url_for(f"{fast.root_url}/echo"),
        content=b"{}",
        headers={**headers, "Authorization": key, "X-Request-Source": "synthetic"},
    )
    received = dict(response.json())
    assert received["authorization"] == key
    assert received["x-request-source"] == "synthetic"
    assert received["host"] == fast.root_url.removeprefix("http://")
    assert not [name for name in received if name.startswith("x-chatcontract-relay-")]


def test_the_simulator_sees_the_key_it_expects_through_the_relay(relay_for, simulator):
    relay = relay_for(simulator.root_url)
    url = relay.url_for(f"{simulator.base_url}/chat/completions")
    good = httpx2.post(url, json=BODY, headers={"Authorization": f"Bearer {simulator.api_key}"})
    bad = httpx2.post(url, json=BODY, headers={"Authorization": "Bearer sk-wrong-000000000000"})
    assert (good.status_code, bad.status_code) == (200, 401)


def test_hold_sends_no_byte_until_the_client_gives_up(relay_for, upstream):
    root, url, auth = upstream
    relay = relay_for(root)
    request_id, headers = control(relay, "hold", release_ms=60_000)
    sock = raw_request(relay, url, {**auth, **headers}, BODY)
    try:
        data, closed = read_until_quiet(sock, 0.3)
    finally:
        sock.close()
    assert (data, closed) == (b"", False)  # not even a status line
    record = relay.record(request_id)
    assert record.staged and record.client_left and not record.released


def test_hold_ends_in_a_client_read_timeout(relay_for, upstream):
    root, url, auth = upstream
    relay = relay_for(root)
    request_id, headers = control(relay, "hold", release_ms=60_000)
    with pytest.raises(httpx2.ReadTimeout):
        httpx2.post(relay.url_for(url), json=BODY, headers={**auth, **headers}, timeout=0.2)
    assert relay.record(request_id).client_left


def test_hold_forwards_the_answer_after_release(relay_for, upstream):
    root, url, auth = upstream
    relay = relay_for(root)
    request_id, headers = control(relay, "hold", release_ms=50)
    response = httpx2.post(relay.url_for(url), json=BODY, headers={**auth, **headers}, timeout=10)
    assert response.status_code == 200
    assert response.json()["choices"][0]["message"]["content"]
    record = relay.record(request_id)
    assert record.released and record.upstream_status == 200


def test_stall_sends_the_first_event_then_nothing(relay_for, upstream):
    root, url, auth = upstream
    relay = relay_for(root)
    request_id, headers = control(relay, "stall", release_ms=60_000)
    received, status, error = read_stream(relay, url, {**auth, **headers}, timeout=0.3)
    assert status == 200
    assert isinstance(error, httpx2.ReadTimeout)
    assert first_event_end(received) == len(received)  # exactly one event
    assert b"[DONE]" not in received
    record = relay.record(request_id)
    assert record.staged and record.events_forwarded == 1 and record.client_left


def test_stall_forwards_the_rest_of_the_stream_after_release(relay_for, upstream):
    root, url, auth = upstream
    relay = relay_for(root)
    request_id, headers = control(relay, "stall", release_ms=50)
    response = httpx2.post(
        relay.url_for(url), json=STREAM_BODY, headers={**auth, **headers}, timeout=10
    )
    assert response.text.endswith("data: [DONE]\n\n")
    assert relay.record(request_id).released


def test_cut_closes_the_connection_after_the_first_event(relay_for, upstream):
    root, url, auth = upstream
    relay = relay_for(root)
    request_id, headers = control(relay, "cut")
    received, status, error = read_stream(relay, url, {**auth, **headers}, timeout=10)
    assert status == 200
    assert isinstance(error, httpx2.RemoteProtocolError)
    assert "incomplete chunked read" in str(error)
    assert first_event_end(received) == len(received)
    record = relay.record(request_id)
    assert record.staged and record.events_forwarded == 1 and not record.client_left


@pytest.mark.parametrize("fault", ["stall", "cut"], ids=["stall", "cut"])
def test_an_answer_without_events_passes_through_unstaged(relay_for, upstream, fault):
    root, url, auth = upstream
    relay = relay_for(root)
    request_id, headers = control(relay, fault, release_ms=60_000)
    response = httpx2.post(relay.url_for(url), json=BODY, headers={**auth, **headers}, timeout=10)
    assert response.json()["choices"][0]["message"]["content"]
    record = relay.record(request_id)
    assert not record.staged
    assert record.upstream_content_type == "application/json"


def test_an_error_status_is_passed_through_unstaged(relay_for, simulator):
    relay = relay_for(simulator.root_url)
    request_id, headers = control(relay, "cut")
    response = httpx2.post(
        relay.url_for(f"{simulator.base_url}/chat/completions"),
        json=STREAM_BODY,
        headers={"Authorization": "Bearer sk-wrong-000000000000", **headers},
    )
    assert response.status_code == 401
    record = relay.record(request_id)
    assert (record.staged, record.upstream_status) == (False, 401)


def test_an_unreachable_endpoint_is_a_502_from_the_relay(relay_for):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    relay = relay_for(f"http://127.0.0.1:{port}")
    request_id, headers = control(relay, "pass")
    response = httpx2.post(relay.url_for(f"http://127.0.0.1:{port}/v1/x"), json={}, headers=headers)
    assert response.status_code == 502
    assert response.json()["error"]["type"] == "relay_error"
    assert relay.record(request_id).upstream_error == "ConnectError"


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({"X-Chatcontract-Relay-Fault": "explode"}, "unknown relay fault"),
        ({"X-Chatcontract-Relay-Release-Ms": "soon"}, "number of milliseconds"),
        ({"X-Chatcontract-Relay-Release-Ms": "1e30"}, "between 0 and"),
        ({"X-Chatcontract-Relay-Release-Ms": "nan"}, "between 0 and"),
    ],
    ids=["fault", "release-text", "release-huge", "release-nan"],
)
def test_bad_control_headers_are_a_400_from_the_relay(relay_for, fast, headers, message):
    relay = relay_for(fast.root_url)
    response = httpx2.post(
        relay.url_for(f"{fast.base_url}/chat/completions"), json=BODY, headers=headers
    )
    assert response.status_code == 400
    assert message in response.json()["error"]["message"]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"fault": "explode"},
        {"fault": "hold", "release_ms": -1},
        {"fault": "hold", "release_ms": 1e9},
    ],
    ids=["fault", "negative-release", "huge-release"],
)
def test_control_refuses_what_the_relay_would_refuse(kwargs):
    with pytest.raises(ValueError, match=r"fault|release_ms"):
        FaultRelay.control(request_id="x", **kwargs)


@pytest.mark.parametrize(
    "upstream",
    ["ftp://example.com", "not a url", "http://"],
    ids=["scheme", "text", "no-host"],
)
def test_the_relay_needs_an_http_endpoint(upstream):
    with pytest.raises(RelayError, match="http:// or https://"):
        FaultRelay(upstream)


def test_stop_ends_a_held_request_and_the_thread(fast):
    relay = FaultRelay(fast.root_url).start()
    request_id, headers = control(relay, "hold", release_ms=60_000)
    sock = raw_request(relay, f"{fast.base_url}/chat/completions", headers, BODY)
    try:
        relay.record(request_id, wait_s=0.2)  # the relay has the request
        relay.stop()
        data, closed = read_until_quiet(sock, 5)
    finally:
        sock.close()
    assert (data, closed) == (b"", True)  # closed without an answer
    assert not [t for t in threading.enumerate() if t.name.startswith("chatcontract-relay-")]


def test_a_relay_starts_once(fast):
    with FaultRelay(fast.root_url) as relay, pytest.raises(RelayError, match="already started"):
        relay.start()


def test_the_relay_logs_nothing_and_keeps_no_secret(relay_for, simulator, caplog):
    caplog.set_level(logging.DEBUG)
    key = simulator.api_key
    relay = FaultRelay(f"http://user:{key}@127.0.0.1:{httpx2.URL(simulator.root_url).port}")
    with relay:
        url = relay.url_for(f"{simulator.base_url}/chat/completions")
        auth = {"Authorization": f"Bearer {key}"}
        for fault in ("hold", "stall", "cut"):
            request_id, headers = control(relay, fault, release_ms=10)
            with contextlib.suppress(httpx2.HTTPError):
                httpx2.post(url, json=STREAM_BODY, headers={**auth, **headers}, timeout=5)
            assert key not in repr(relay.record(request_id))
        assert key not in repr(relay)
    assert not [r for r in caplog.records if "relay" in r.name or key in r.getMessage()]


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1, made by the openssl command."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
            "-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1",
            "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
        timeout=30,
    )  # fmt: skip
    return cert, key


@pytest.fixture(scope="module")
def tls_server(certificate):
    cert, key = certificate
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    with fast_server(tls=context) as server:
        yield server


def test_the_relay_speaks_tls_to_the_endpoint_and_sees_its_events(certificate, tls_server):
    trust = ssl.create_default_context(cafile=str(certificate[0]))
    with FaultRelay(tls_server.root_url, verify=trust) as relay:
        assert relay.base_url.startswith("http://127.0.0.1:")  # plain HTTP to the client
        url = f"{tls_server.base_url}/chat/completions"
        answer = httpx2.post(relay.url_for(url), json=BODY, timeout=10)
        assert answer.json()["choices"][0]["message"]["content"] == "pong"
        request_id, headers = control(relay, "cut")
        received, status, error = read_stream(relay, url, headers, timeout=10)
        assert status == 200
        assert isinstance(error, httpx2.RemoteProtocolError)
        assert first_event_end(received) == len(received)
        assert relay.record(request_id).staged


def test_the_relay_verifies_the_endpoints_certificate(tls_server):
    with FaultRelay(tls_server.root_url) as relay:  # the self-signed certificate is not trusted
        request_id, headers = control(relay, "pass")
        url = relay.url_for(f"{tls_server.base_url}/chat/completions")
        response = httpx2.post(url, json=BODY, headers=headers, timeout=10)
        assert response.status_code == 502
        assert relay.record(request_id).upstream_error == "ConnectError"
