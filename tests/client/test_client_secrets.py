import json
import traceback

import httpx2
import pytest
from client_helpers import LONG, PONG, contract_for, env_for

from chatcontract.client import (
    CallFailedError,
    ChatClient,
    DeadlineExhaustedError,
    NonRetryableError,
    StreamInterrupted,
)

SECRET = "cc-live-7f3a9b2c4d5e6f70"  # not shaped like a known key: only our redaction hides it


def echo_the_key(request):
    """A hostile provider that quotes the whole Authorization header in its error."""
    quoted = request.headers["authorization"]
    body = {
        "error": {
            "message": f"key {quoted} is not allowed ({SECRET})",
            "type": "auth",
            "code": "invalid_api_key",
        }
    }
    return httpx2.Response(
        401, headers={"content-type": "application/json"}, content=json.dumps(body).encode()
    )


def assert_secret_free(error: CallFailedError) -> None:
    texts = [
        str(error),
        repr(error),
        str(error.failure),
        repr(error.failure),
        "".join(traceback.format_exception(error)),
        json.dumps([a.to_dict() for a in error.attempts]),
    ]
    for text in texts:
        assert SECRET not in text


def test_a_provider_echoing_the_key_never_puts_it_in_the_exception():
    contract = contract_for("http://provider.test/v1")
    with (
        ChatClient.from_contract(
            contract, environ=env_for(SECRET), transport=httpx2.MockTransport(echo_the_key)
        ) as client,
        pytest.raises(NonRetryableError) as caught,
    ):
        client.complete(PONG, max_tokens=16)
    assert caught.value.failure.category == "auth"
    assert "***" in caught.value.failure.message
    assert_secret_free(caught.value)


def test_the_key_stays_out_of_client_and_route_reprs(sims):
    server = sims("ok", api_key=SECRET)
    contract = contract_for(server.base_url, fallback_url=server.base_url, model_fallback=True)
    with ChatClient.from_contract(contract, environ=env_for(SECRET, SECRET)) as client:
        texts = [repr(client), str(client), *map(repr, client.routes)]
        result = client.complete(PONG, max_tokens=16)
    texts.append(json.dumps([a.to_dict() for a in result.attempts]))
    assert result.content == "pong"
    assert all(SECRET not in text for text in texts)


def test_stream_and_deadline_errors_are_secret_free(sims):
    cut = sims("cut_stream", api_key=SECRET)
    silent = sims("no_response", api_key=SECRET)
    with (
        ChatClient.from_contract(contract_for(cut.base_url), environ=env_for(SECRET)) as c,
        pytest.raises(StreamInterrupted) as interrupted,
    ):
        c.stream(LONG, max_tokens=64).until_done()
    with (
        ChatClient.from_contract(contract_for(silent.base_url), environ=env_for(SECRET)) as c,
        pytest.raises(DeadlineExhaustedError) as exhausted,
    ):
        c.complete(PONG, max_tokens=16, deadline_s=0.3)
    assert_secret_free(interrupted.value)
    assert_secret_free(exhausted.value)
