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
