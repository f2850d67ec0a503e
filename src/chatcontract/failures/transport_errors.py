"""Transport exceptions → ``Failure``: the one boundary where httpx2/OS errors are translated.

Each cause gets its own ``code``: ``dns``, ``connect_refused``, ``connect_reset``, ``tls``,
``connect_timeout``, ``read_timeout``, ``write_timeout``, ``pool_timeout``, ``deadline``,
``reset``, ``incomplete_body``, ``proxy``, ``protocol``, ``network``.
Most specific class first, as httpx maps httpcore's exceptions.
"""

from __future__ import annotations

import ssl
from typing import Literal

import httpx2

from .failure import Failure, make_failure

__all__ = ["SILENCE_CODES", "DeadlineExceeded", "Silence", "classify_exception", "silence_failure"]

#: Which limit a silent route ran into (``policy.timeouts``).
Silence = Literal["first_byte", "first_token", "idle"]

#: The failure code of each silence, as ``policy.decide`` reads it (``SILENT_CODES``).
SILENCE_CODES: dict[Silence, tuple[str, str]] = {
    "first_byte": ("first_byte_timeout", "no response byte within first_byte_ms"),
    "first_token": ("first_token_timeout", "no content token within first_token_ms"),
    "idle": ("stream_stalled", "no stream data within idle_ms once content had started"),
}


class DeadlineExceeded(Exception):  # noqa: N818 - it names the event, like TimeoutError
    """The caller's single deadline across attempts ran out (raised by our own transports)."""


# Substrings of OS / resolver messages, lower-cased: the exception class alone does not
# say whether a ConnectError was a DNS failure, a refusal or a TLS failure.
_CONNECT_CAUSES: tuple[tuple[str, str, str], ...] = (
    ("dns lookup failed", "dns", "DNS lookup failed"),
    ("name or service not known", "dns", "DNS lookup failed"),
    ("nodename nor servname", "dns", "DNS lookup failed"),
    ("temporary failure in name resolution", "dns", "DNS lookup failed"),
    ("getaddrinfo", "dns", "DNS lookup failed"),
    ("no address associated", "dns", "DNS lookup failed"),
    ("connection refused", "connect_refused", "connection refused"),
    ("errno 111", "connect_refused", "connection refused"),
    ("certificate", "tls", "TLS certificate verification failed"),
    ("ssl", "tls", "TLS handshake failed"),
    ("tls", "tls", "TLS handshake failed"),
    ("connection reset", "connect_reset", "connection reset while connecting"),
    ("network is unreachable", "network_unreachable", "network unreachable"),
    ("no route to host", "network_unreachable", "no route to host"),
)

# (exception class, category, code, message). Order: most specific first.
_TABLE: tuple[tuple[type[BaseException], str, str, str], ...] = (
    (DeadlineExceeded, "timeout", "deadline", "the call's deadline ran out"),
    (httpx2.ConnectTimeout, "timeout", "connect_timeout", "connect timed out"),
    (httpx2.ReadTimeout, "timeout", "read_timeout", "no response bytes within the read timeout"),
    (httpx2.WriteTimeout, "timeout", "write_timeout", "sending the request timed out"),
    (httpx2.PoolTimeout, "timeout", "pool_timeout", "no free connection in the pool in time"),
    (httpx2.TimeoutException, "timeout", "timeout", "the request timed out"),
    (TimeoutError, "timeout", "timeout", "the request timed out"),
    (httpx2.ProxyError, "network", "proxy", "the proxy refused or failed the request"),
    (httpx2.RemoteProtocolError, "network", "reset", "the server closed the connection early"),
    (httpx2.ReadError, "network", "reset", "reading the response failed"),
    (httpx2.WriteError, "network", "write_error", "sending the request failed"),
    (httpx2.LocalProtocolError, "network", "protocol", "the request could not be sent"),
    (httpx2.UnsupportedProtocol, "endpoint", "unsupported_protocol", "the URL scheme is wrong"),
    (httpx2.InvalidURL, "endpoint", "invalid_url", "the URL is invalid"),
    (ssl.SSLError, "network", "tls", "TLS handshake failed"),
    (ConnectionRefusedError, "network", "connect_refused", "connection refused"),
    (ConnectionResetError, "network", "reset", "the connection was reset"),
    (httpx2.ConnectError, "network", "connect", "could not connect"),
    (httpx2.NetworkError, "network", "network", "network error"),
    (httpx2.TransportError, "network", "network", "transport error"),
    (OSError, "network", "network", "network error"),
)

_INCOMPLETE_HINTS = ("incomplete", "peer closed connection without sending complete")
_RESET_HINTS = ("without sending", "server disconnected", "connection reset", "closed")


def _chain_text(exc: BaseException) -> str:
    parts: list[str] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        parts.append(f"{type(current).__name__}: {current}")
        current = current.__cause__ or current.__context__
    return " | ".join(parts).lower()


def classify_exception(exc: BaseException, *, secrets: tuple[str, ...] = ()) -> Failure:
    """The ``Failure`` for an exception raised while sending or reading (kind ``transport``)."""
    text = _chain_text(exc)
    for cls, category, base_code, base_message in _TABLE:
        if not isinstance(exc, cls):
            continue
        code, message = base_code, base_message
        if cls is httpx2.ConnectError:
            code, message = next(
                ((cause, text_) for needle, cause, text_ in _CONNECT_CAUSES if needle in text),
                (code, message),
            )
        elif cls is httpx2.RemoteProtocolError and any(h in text for h in _INCOMPLETE_HINTS):
            code, message = "incomplete_body", "the response body ended before it was complete"
        elif cls is httpx2.RemoteProtocolError and not any(h in text for h in _RESET_HINTS):
            code, message = "protocol", "the server broke the HTTP protocol"
        return make_failure(
            kind="transport", category=category, code=code, message=message, secrets=secrets
        )
    return make_failure(
        kind="transport",
        category="network",
        code="unexpected",
        message=f"unexpected {type(exc).__name__}",
        secrets=secrets,
    )


def silence_failure(limit: Silence, limit_ms: int) -> Failure:
    """The ``Failure`` of a route that stayed silent past one of its limits.

    The client calls it when its own first-byte, first-token or idle timer fires (SSE
    comments and keep-alives do not reset those): kind ``transport``, category ``timeout``,
    the code from ``SILENCE_CODES``; the policy then goes straight to the next route.
    """
    code, words = SILENCE_CODES[limit]
    return make_failure(
        kind="transport", category="timeout", code=code, message=f"{words} ({limit_ms} ms)"
    )
