"""Before the suite: can the endpoint be reached at all?

An endpoint that cannot be reached would fail every check the same way, each with the same
advice. One request first tells it once: ``cannot reach api.example.com: DNS failed``. Only a
failure to *connect* (DNS, refused, unreachable network, TLS, connect timeout, proxy) counts;
a server that accepts the connection and then misbehaves is for the checks to judge.

The request is a ``HEAD`` on the endpoint's URL without the key (no secret leaves for a
server not yet known to be the right one), through httpx2 as every check sends (an explicit
``HTTPTransport``: the same TLS verification, no proxy from the environment; the instrumented
transport's deadline: the whole request, head included, ends within ``connect_ms`` plus
``read_timeout_s``, however slowly a server drips its answer).
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx2

from chatcontract.failures import classify_exception
from chatcontract.target import Target
from chatcontract.transport import InstrumentedTransport

from .context import SOURCE_HEADER

__all__ = ["Unreachable", "preflight"]


# Failure code → what the line says. A code not listed uses the classifier's message.
_REASONS: dict[str, str] = {
    "dns": "DNS failed",
    "connect_refused": "connection refused",
    "connect_reset": "connection reset while connecting",
    "network_unreachable": "network unreachable",
    "proxy": "the proxy refused the connection",
}

#: Exceptions that mean "never connected" (most specific first is not needed: all are final).
_CONNECT_FAILURES = (httpx2.ConnectError, httpx2.ConnectTimeout, httpx2.ProxyError)


@dataclass(frozen=True, slots=True, kw_only=True)
class Unreachable:
    """The endpoint could not be reached: ``str()`` is the one line to print."""

    host: str
    code: str
    reason: str

    def __str__(self) -> str:
        return f"cannot reach {self.host}: {self.reason}"


def _host_of(url: str) -> str:
    parts = urlsplit(url)
    host = parts.hostname or url
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{parts.port}" if parts.port is not None else host


def _never_resolves(hostname: str) -> bool:
    """RFC 6761 §6.4: names under ``invalid`` never resolve; resolvers should say so at once.

    Answering here keeps such a lookup off the network entirely.
    """
    return hostname.rstrip(".").lower().rsplit(".", 1)[-1] == "invalid"


def preflight(
    target: Target,
    *,
    transport: httpx2.BaseTransport | None = None,
    read_timeout_s: float = 5.0,
) -> Unreachable | None:
    """None when the endpoint accepts a connection; else what stopped it, in one line.

    The embedded simulator is always reachable (chatcontract started it): no request is sent.

    Args:
        target: the resolved endpoint.
        transport: the httpx2 transport to use (default: ``httpx2.HTTPTransport()``).
        read_timeout_s: how long to wait for an answer once connected; none is needed (a
            server that accepted the connection and says nothing, or drips its answer a byte
            at a time, is reachable: the checks judge it). The whole preflight ends within
            ``policy.timeouts.connect_ms`` plus this.
    """
    if target.simulated:
        return None
    url = target.contract.endpoint.url
    host = _host_of(url)
    hostname = urlsplit(url).hostname or ""
    if _never_resolves(hostname):
        return Unreachable(host=host, code="dns", reason="DNS failed (a .invalid name)")
    connect_ms = target.contract.policy.timeouts.connect_ms
    timeout = httpx2.Timeout(read_timeout_s, connect=connect_ms / 1000)
    # A read timeout bounds one silent gap only: a head dripped a byte at a time would keep
    # the preflight (and validate) waiting for as long as the server likes. The deadline
    # bounds the request as a whole.
    bounded = InstrumentedTransport(
        contract=target.contract,
        secrets=[target.secret],
        inner=transport,  # None: an HTTPTransport under the timed network backend
        total_timeout=connect_ms / 1000 + read_timeout_s,
    )
    try:
        with httpx2.Client(transport=bounded, timeout=timeout, follow_redirects=False) as client:
            client.head(url, headers={SOURCE_HEADER[0]: SOURCE_HEADER[1]})
    except _CONNECT_FAILURES as exc:
        failure = classify_exception(exc, secrets=(target.secret,))
        reason = _REASONS.get(failure.code, failure.message)
        if failure.code == "connect_timeout":
            reason = f"no connection within {connect_ms} ms"
        return Unreachable(host=host, code=failure.code, reason=reason)
    except httpx2.HTTPError:
        return None  # connected: whatever followed is for the checks to judge
    return None
