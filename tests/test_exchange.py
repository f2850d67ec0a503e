"""``chatcontract.exchange`` is a pure module: the transport produces Exchanges, everyone else
imports them from there without pulling in the network stack or registering anything."""

import subprocess
import sys

import pytest

import chatcontract
import chatcontract.transport
from chatcontract.exchange import Exchange, RequestFacts, ResponseFacts, Timings

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
