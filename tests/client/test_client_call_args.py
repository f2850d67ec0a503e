"""What a call is given besides its messages is checked before anything is sent: extra
headers HTTP can carry (not the client's own), a body JSON can hold. Each refusal says what
to write, never echoes a header's value, and nothing reaches the transport."""

from __future__ import annotations

import re

import httpx2
import pytest
from client_helpers import COMPLETION, PONG, call_refused_before_sending, contract_for, env_for

from chatcontract.client import AsyncChatClient, ChatClient, NonRetryableError

SECRET_VALUE = "Bearer cc-caller-secret-0123456789"


MODES = ["complete", "stream", "async"]

BAD_HEADERS = [
    pytest.param(
        {"x-trace": "a\r\nx-injected: 1"}, ValueError, "without line breaks", id="crlf-value"
    ),
    pytest.param({"x-trace": "a\x00b"}, ValueError, "without line breaks or NUL", id="nul"),
    pytest.param({"x trace": "a"}, ValueError, "is not a header name", id="space-in-name"),
    pytest.param({"": "a"}, ValueError, "is not a header name", id="empty-name"),
    pytest.param({"x-trace": 5}, ValueError, "must be text", id="number-value"),
    pytest.param({b"x-trace": "a"}, ValueError, "bytes is not a header name", id="bytes-name"),
    # The route's auth header, in any case: it was sent twice (``authorization`` and
    # ``Authorization``) or replaced the contract's key.
    pytest.param({"authorization": SECRET_VALUE}, ValueError, "auth header", id="auth-lower"),
    pytest.param({"Authorization": SECRET_VALUE}, ValueError, "auth header", id="auth"),
    pytest.param({"Content-Length": "3"}, ValueError, "set by the client", id="length"),
    pytest.param({"Host": "elsewhere.test"}, ValueError, "set by the client", id="host"),
    pytest.param([("x-trace", "a")], TypeError, "must be a mapping", id="not-a-mapping"),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("headers", "error", "says"), BAD_HEADERS)
def test_headers_http_cannot_carry_or_the_client_sets_are_refused(mode, headers, error, says):
    """A CRLF in a value was sent to the transport and failed there as
    ``transport/network/protocol``: retried, then every fallback tried, four attempts."""
    with pytest.raises(error) as caught:
        call_refused_before_sending(mode, headers=headers)
    message = str(caught.value)
    assert says in message
    assert "secret" not in message and "injected" not in message  # no value shown


def test_good_headers_are_sent_as_given():
    seen: list[httpx2.Request] = []

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(200, json=COMPLETION)

    contract = contract_for("http://provider.test/v1")
    with ChatClient.from_contract(
        contract, environ=env_for("cc-secret-key-0001"), transport=httpx2.MockTransport(handler)
    ) as client:
        client.complete(PONG, headers={"X-Request-Id": "abc-1", "OpenAI-Organization": "org"})
    (request,) = seen
    assert request.headers["x-request-id"] == "abc-1"
    assert request.headers["openai-organization"] == "org"
    assert request.headers.get_list("authorization") == ["Bearer cc-secret-key-0001"]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    ("params", "says"),
    [
        pytest.param({"metadata": {"score": float("nan")}}, "Out of range float", id="nan-deep"),
        pytest.param({"metadata": {"score": float("inf")}}, "Out of range float", id="inf-deep"),
        pytest.param({"metadata": {"tags": {"a"}}}, "not JSON serializable", id="set-deep"),
    ],
)
def test_a_body_with_no_json_form_is_refused_as_an_invalid_request(mode, params, says):
    """Outside the fields the request check types, the encoder's ``ValueError``/``TypeError``
    escaped the call as they were."""
    with pytest.raises(NonRetryableError) as caught:
        call_refused_before_sending(mode, **params)
    failure = caught.value.failure
    assert (failure.kind, failure.category, failure.code) == (
        "semantic",
        "validation",
        "invalid_request",
    )
    assert failure.message.startswith("the request body has no JSON form, not sent")
    assert says in failure.message


@pytest.mark.parametrize(
    ("client_class", "transport", "wanted"),
    [
        pytest.param(ChatClient, object(), "httpx2.BaseTransport", id="sync-object"),
        pytest.param(
            ChatClient, httpx2.AsyncHTTPTransport(), "httpx2.BaseTransport", id="sync-given-async"
        ),
        pytest.param(
            AsyncChatClient,
            httpx2.HTTPTransport(),
            "httpx2.AsyncBaseTransport",
            id="async-given-sync",
        ),
    ],
)
def test_a_transport_of_the_wrong_kind_is_refused_when_the_client_is_made(
    client_class, transport, wanted
):
    """It was taken, and the first call failed with ``AttributeError: ... 'handle_request'``."""
    contract = contract_for("http://127.0.0.1:9/v1")
    with pytest.raises(TypeError, match=re.escape(f"transport must be an {wanted}")):
        client_class.from_contract(contract, environ=env_for("k"), transport=transport)


@pytest.mark.parametrize("sink", [5, lambda exchange: None], ids=["number", "function"])
def test_a_telemetry_sink_that_is_not_one_is_refused_when_the_client_is_made(sink):
    """It was taken, and its error on every call only logged once (telemetry never breaks a
    call): a client recording nothing, silently."""
    contract = contract_for("http://127.0.0.1:9/v1")
    with pytest.raises(TypeError, match=r"telemetry sink 0 .* has no handle_exchange"):
        ChatClient.from_contract(contract, environ=env_for("k"), telemetry_sinks=[sink])
