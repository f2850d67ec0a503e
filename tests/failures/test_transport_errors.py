import socket
import ssl

import httpx2
import pytest

from chatcontract.failures.transport_errors import DeadlineExceeded, classify_exception


def _raise_from(exc: BaseException, cause: BaseException) -> BaseException:
    try:
        raise exc from cause
    except BaseException as err:
        return err


@pytest.mark.parametrize(
    ("exc", "category", "code"),
    [
        (httpx2.ConnectError("[Errno -2] Name or service not known"), "network", "dns"),
        (
            _raise_from(
                httpx2.ConnectError("boom"),
                socket.gaierror(-3, "Temporary failure in name resolution"),
            ),
            "network",
            "dns",
        ),
        (httpx2.ConnectError("[Errno 111] Connection refused"), "network", "connect_refused"),
        (
            httpx2.ConnectError("[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed"),
            "network",
            "tls",
        ),
        (httpx2.ConnectTimeout("timed out"), "timeout", "connect_timeout"),
        (httpx2.ReadTimeout("timed out"), "timeout", "read_timeout"),
        (httpx2.WriteTimeout("timed out"), "timeout", "write_timeout"),
        (httpx2.PoolTimeout("timed out"), "timeout", "pool_timeout"),
        (DeadlineExceeded("2.0 s"), "timeout", "deadline"),
        (
            httpx2.RemoteProtocolError("Server disconnected without sending a response."),
            "network",
            "reset",
        ),
        (
            httpx2.RemoteProtocolError(
                "peer closed connection without sending complete message body: incomplete chunked read"
            ),
            "network",
            "incomplete_body",
        ),
        (httpx2.ReadError("Connection reset by peer"), "network", "reset"),
        (ssl.SSLError("bad handshake"), "network", "tls"),
        (ConnectionRefusedError(), "network", "connect_refused"),
        (
            httpx2.UnsupportedProtocol(
                "Request URL is missing an 'http://' or 'https://' protocol."
            ),
            "endpoint",
            "unsupported_protocol",
        ),
        (ValueError("weird"), "network", "unexpected"),
    ],
    ids=[
        "dns",
        "dns-chained",
        "refused",
        "tls-cert",
        "connect-timeout",
        "read-timeout",
        "write-timeout",
        "pool-timeout",
        "deadline",
        "reset-no-response",
        "incomplete-body",
        "read-reset",
        "ssl",
        "os-refused",
        "bad-scheme",
        "unexpected",
    ],
)
def test_transport_exceptions_each_get_their_own_code(exc, category, code):
    failure = classify_exception(exc)
    assert failure.kind == "transport"
    assert (failure.category, failure.code) == (category, code)
    assert failure.status is None


def test_timeouts_and_network_failures_are_retried():
    assert classify_exception(httpx2.ReadTimeout("x")).retry == "retry"
    assert classify_exception(httpx2.ConnectError("Connection refused")).retry == "retry"


def test_exception_text_never_reaches_the_message():
    exc = httpx2.ConnectError("failed for https://x/?key=sk-supersecretvalue1234")
    failure = classify_exception(exc)
    assert "sk-super" not in failure.message
    assert "sk-super" not in str(failure)


@pytest.mark.parametrize(
    ("limit", "code"),
    [
        ("first_byte", "first_byte_timeout"),
        ("first_token", "first_token_timeout"),
        ("idle", "stream_stalled"),
    ],
    ids=["first-byte", "first-token", "idle"],
)
def test_a_silent_route_is_a_transport_timeout_the_policy_does_not_retry(limit, code):
    from chatcontract.failures import silence_failure
    from chatcontract.policy import SILENT_CODES, rule_for

    failure = silence_failure(limit, 10_000)
    assert (failure.kind, failure.category, failure.code) == ("transport", "timeout", code)
    assert "(10000 ms)" in failure.message
    assert code in SILENT_CODES
    rule = rule_for(failure, retryable=("timeout",))
    assert (rule.retries, rule.then) == (0, "fallback")
