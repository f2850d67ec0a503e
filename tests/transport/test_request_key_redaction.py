"""The key a request carries is redacted from its Exchange, whatever the scheme's case."""

import httpx2
import pytest

from chatcontract.contract import load_preset
from chatcontract.transport import InstrumentedTransport

KEY = "plainkey-0123456789"  # not credential-shaped: only the request's header names it
BODY = {"model": "gpt-4.1-nano", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize(
    "authorization",
    [f"Bearer {KEY}", f"bearer {KEY}", f"BEARER  {KEY} ", KEY],
    ids=["bearer", "lower-case-scheme", "upper-case-scheme-spaces", "no-scheme"],
)
def test_the_requests_own_key_is_redacted_from_the_failure(authorization):
    exchanges = []
    inner = httpx2.MockTransport(
        lambda request: httpx2.Response(401, json={"error": {"message": f"bad key {KEY}"}})
    )
    transport = InstrumentedTransport(
        contract=load_preset("cometapi"), sinks=[exchanges.append], inner=inner
    )
    with httpx2.Client(transport=transport) as client:
        client.post(
            "http://mock/v1/chat/completions", json=BODY, headers={"Authorization": authorization}
        )
    (exchange,) = exchanges
    assert exchange.failure is not None
    assert "bad key" in exchange.failure.message
    assert KEY not in exchange.failure.message


def test_each_request_is_redacted_of_its_own_key_on_one_transport():
    keys = [f"plainkey-{n}-0123456789" for n in range(3)]
    exchanges = []

    def answer(request: httpx2.Request) -> httpx2.Response:
        sent = request.headers["authorization"].removeprefix("Bearer ")
        return httpx2.Response(401, json={"error": {"message": f"bad key {sent}"}})

    transport = InstrumentedTransport(
        contract=load_preset("cometapi"),
        sinks=[exchanges.append],
        inner=httpx2.MockTransport(answer),
    )
    with httpx2.Client(transport=transport) as client:
        for key in [*keys, *keys]:  # each key twice: the second time, as remembered
            client.post(
                "http://mock/v1/chat/completions",
                json=BODY,
                headers={"Authorization": f"Bearer {key}"},
            )
    assert len(exchanges) == 6
    for key, exchange in zip([*keys, *keys], exchanges, strict=True):
        assert exchange.failure is not None
        assert "bad key" in exchange.failure.message
        assert key not in exchange.failure.message


def test_a_key_that_is_not_ascii_is_redacted_as_headers_get_reads_it():
    key = "clef-s\u00e9cr\u00e8te-0123456789"
    exchanges = []
    inner = httpx2.MockTransport(
        lambda request: httpx2.Response(401, json={"error": {"message": f"bad key {key}"}})
    )
    transport = InstrumentedTransport(
        contract=load_preset("cometapi"), sinks=[exchanges.append], inner=inner
    )
    with httpx2.Client(transport=transport) as client:
        client.post(
            "http://mock/v1/chat/completions",
            json=BODY,
            headers={"Authorization": f"Bearer {key}".encode()},
        )
    (exchange,) = exchanges
    assert exchange.failure is not None
    assert key not in exchange.failure.message
