"""``chatcontract.exchange`` is a pure module: the transport produces Exchanges, everyone else
imports them from there without pulling in the network stack or registering anything."""

import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import chatcontract
import chatcontract.transport
from chatcontract.exchange import (
    Exchange,
    RequestFacts,
    ResponseFacts,
    Timings,
    _redact_response,
)

_PROBE = """
import atexit, logging, sys  # logging registers its own shutdown at import
before = atexit._ncallbacks()
import chatcontract.exchange
loaded = [m for m in ("httpx2", "httpcore2", "anyio", "socket", "ssl", "prometheus_client")
          if m in sys.modules]
print(loaded, atexit._ncallbacks() - before)
"""


def test_importing_the_exchange_module_loads_no_network_and_registers_nothing():
    done = subprocess.run(
        [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.split() == ["[]", "0"]


@pytest.mark.parametrize(
    "name", ["Exchange", "RequestFacts", "ResponseFacts", "Timings"], ids=str.lower
)
def test_the_transport_re_exports_the_same_classes(name):
    assert getattr(chatcontract.transport, name) is getattr(chatcontract.exchange, name)


def test_the_package_exchange_is_the_pure_modules():
    assert chatcontract.Exchange is Exchange


def test_an_exchange_is_a_plain_value():
    exchange = Exchange(
        request=RequestFacts(method="POST", url="http://x/v1/chat/completions"),
        response=ResponseFacts(status=200),
        timings=Timings(total_ms=1.0),
        started_at=0.0,
    )
    assert exchange.ok
    assert exchange.redacted(("nothing-to-hide",)) == exchange


_TEXT = st.text(
    alphabet="ab-_. /=sk-BearerJyAKI0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZeyJ", max_size=40
)


@settings(max_examples=300, deadline=None)
@given(
    model=st.one_of(st.none(), _TEXT),
    response_id=st.one_of(st.none(), _TEXT),
    content=st.one_of(st.none(), _TEXT),
    ids=st.dictionaries(st.sampled_from(["x-request-id", "cf-ray"]), _TEXT, max_size=2),
    limits=st.dictionaries(st.sampled_from(["x-ratelimit-limit", "retry-after"]), _TEXT),
    secrets=st.lists(_TEXT, max_size=2),
)
def test_redacting_a_success_cleans_exactly_what_each_text_redaction_cleans(
    model, response_id, content, ids, limits, secrets
):
    """The one-scan check of a successful Exchange changes nothing but speed."""
    response = ResponseFacts(
        status=200, model=model, response_id=response_id, content=content,
        content_type="application/json", request_ids=ids, rate_limit_headers=limits,
    )  # fmt: skip
    exchange = Exchange(
        request=RequestFacts(method="POST", url="https://x/v1/chat/completions"),
        response=response,
        timings=Timings(),
        started_at=0.0,
    )
    expected = _redact_response(response, secrets)
    redacted = exchange.redacted(secrets)
    assert redacted.response == expected
    assert (redacted is exchange) == (expected is response)


def test_a_credential_in_a_success_header_is_still_redacted():
    response = ResponseFacts(status=200, request_ids={"x-request-id": "Bearer abcdefghijkl"})
    exchange = Exchange(
        request=RequestFacts(method="POST", url="u"), response=response, timings=Timings(),
        started_at=0.0,
    )  # fmt: skip
    assert exchange.redacted().response.request_ids == {"x-request-id": "Bearer ***"}
