"""The preflight: one line when the endpoint cannot be reached, nothing when it can."""

from __future__ import annotations

import socket
import threading
from dataclasses import replace

import httpx2
import pytest

from chatcontract.checks.preflight import Unreachable, preflight
from chatcontract.contract import Endpoint, load_preset
from chatcontract.target import Target
from fast_server import fast_server

KEY = "sk-preflight-secret-0123456789"


def make_target(base_url, *, simulated=False):
    contract = load_preset("cometapi")
    contract = replace(contract, endpoint=Endpoint(base_url=base_url))
    return Target(
        contract=contract,
        contract_path=None,
        secret=KEY,
        secret_source="test",
        model="gpt-4.1-nano",
        simulated=simulated,
    )


@pytest.fixture
def closed_port():
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def no_dns(monkeypatch):
    """Every name lookup fails here, without a packet: records the names asked for."""
    asked: list[str] = []

    def fail(host, *args, **kwargs):
        asked.append(host)
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", fail)
    return asked


def test_a_refused_port_is_one_line_naming_host_and_cause(closed_port):
    result = preflight(make_target(f"http://127.0.0.1:{closed_port}/v1"))
    assert isinstance(result, Unreachable)
    assert result.code == "connect_refused"
    assert str(result) == f"cannot reach 127.0.0.1:{closed_port}: connection refused"


def test_a_name_under_invalid_fails_at_once_without_a_lookup(no_dns):
    result = preflight(make_target("https://api.chatcontract-test.invalid/v1"))
    assert str(result) == "cannot reach api.chatcontract-test.invalid: DNS failed (a .invalid name)"
    assert result.code == "dns"
    assert no_dns == []  # RFC 6761: never sent to a resolver


def test_a_name_the_resolver_cannot_find_is_a_dns_failure(no_dns):
    result = preflight(make_target("https://unresolvable.chatcontract.test/v1"))
    assert str(result) == "cannot reach unresolvable.chatcontract.test: DNS failed"
    assert set(no_dns) == {"unresolvable.chatcontract.test"}  # the lookup was tried, and failed


def test_a_healthy_endpoint_passes():
    with fast_server() as server:
        assert preflight(make_target(server.base_url)) is None


def test_a_server_that_accepts_and_says_nothing_is_reachable():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)  # the kernel completes the handshake; nobody ever answers
        port = listener.getsockname()[1]
        result = preflight(make_target(f"http://127.0.0.1:{port}/v1"), read_timeout_s=0.2)
    assert result is None


def test_the_embedded_simulator_is_not_probed():
    def refuse(request):
        raise AssertionError("the preflight sent a request to the simulator")

    target = make_target("http://127.0.0.1:9/v1", simulated=True)
    assert preflight(target, transport=httpx2.MockTransport(refuse)) is None


def test_the_preflight_never_sends_the_key():
    seen: list[httpx2.Request] = []

    def record(request):
        seen.append(request)
        return httpx2.Response(405)

    assert (
        preflight(make_target("https://api.example.com/v1"), transport=httpx2.MockTransport(record))
        is None
    )
    [request] = seen
    assert request.method == "HEAD"
    assert str(request.url) == "https://api.example.com/v1/chat/completions"
    assert "authorization" not in request.headers
    assert KEY not in str(request.headers)


@pytest.mark.parametrize(
    ("error", "code", "reason"),
    [
        (httpx2.ConnectTimeout("timed out"), "connect_timeout", "no connection within 5000 ms"),
        (
            httpx2.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"),
            "tls",
            "TLS certificate verification failed",
        ),
        (
            httpx2.ConnectError("[Errno 101] Network is unreachable"),
            "network_unreachable",
            "network unreachable",
        ),
    ],
    ids=["connect-timeout", "tls", "network-unreachable"],
)
def test_each_connect_failure_gets_its_own_reason(error, code, reason):
    def fail(request):
        raise error

    result = preflight(
        make_target("https://api.example.com/v1"), transport=httpx2.MockTransport(fail)
    )
    assert (result.code, result.reason) == (code, reason)
    assert str(result) == f"cannot reach api.example.com: {reason}"


@pytest.mark.parametrize(
    "error",
    [httpx2.ReadTimeout("slow"), httpx2.RemoteProtocolError("Server disconnected")],
    ids=["read-timeout", "disconnected"],
)
def test_a_failure_after_connecting_is_left_to_the_checks(error):
    def fail(request):
        raise error

    assert (
        preflight(make_target("https://api.example.com/v1"), transport=httpx2.MockTransport(fail))
        is None
    )


def test_a_head_dripped_a_byte_at_a_time_cannot_hold_the_preflight():
    # Each byte comes well within the read timeout: only a deadline on the whole request ends
    # it (without one, this 100 kB header line would take over an hour and a half).
    from raw_servers import dripping_head, raw_server

    outcome: list[Unreachable | None] = []
    with raw_server(dripping_head(0.05, header_bytes=100_000)) as server:
        target = make_target(server.base_url)
        timeouts = replace(target.contract.policy.timeouts, connect_ms=200)
        policy = replace(target.contract.policy, timeouts=timeouts, fallback_reserve_ms=100)
        target = replace(target, contract=replace(target.contract, policy=policy))
        worker = threading.Thread(
            target=lambda: outcome.append(preflight(target, read_timeout_s=0.2)), daemon=True
        )
        worker.start()
        worker.join(timeout=30)  # a guard against a hang, not a measurement
        assert not worker.is_alive(), "the preflight is still reading the dripped head"
    assert outcome == [None]  # it connected: reachable, the checks judge the rest
