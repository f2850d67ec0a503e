"""The gateway's client port's bounds on reading a request (``chatcontract._http_guard``:
deadlines on a request's head and body, a size limit on its head, bytes that are not HTTP),
answered OpenAI-shaped like every answer of the gateway's own, with its ``x-chatcontract-*``
headers.

The deadlines are this module's (read when a connection's timer fires: the tests shorten
them); the admin port, the probe and the simulator use ``_http_guard``'s.
"""

from __future__ import annotations

from chatcontract import _http_guard
from chatcontract._http_guard import (
    ABORT_EXTENSION,
    INVALID_REQUEST_LOG,
    MAX_HEAD_BYTES,
    InvalidRequestLogLimit,
    limit_invalid_request_logs,
    raw_answer,
)

from .errors import GatewayError

__all__ = [
    "ABORT_EXTENSION",
    "BODY_TIMEOUT_S",
    "HEAD_TIMEOUT_S",
    "INVALID_REQUEST_LOG",
    "MAX_HEAD_BYTES",
    "GuardedH11Protocol",
    "GuardedHttpToolsProtocol",
    "InvalidRequestLogLimit",
    "limit_invalid_request_logs",
]

#: The longest a request head may take to arrive, in seconds.
HEAD_TIMEOUT_S = _http_guard.HEAD_TIMEOUT_S
#: The longest a request body may take to arrive once its head has, in seconds.
BODY_TIMEOUT_S = _http_guard.BODY_TIMEOUT_S


def _answer(error: GatewayError) -> bytes:
    headers = b"".join(
        [
            b"x-chatcontract-attempts: 0\r\n",
            b"x-chatcontract-route: none\r\n",
            b"x-chatcontract-classification: gateway/" + error.code.encode() + b"\r\n",
        ]
    )
    return raw_answer(error.status, error.body(), headers)


class _GatewayAnswers:
    """The gateway's deadlines and its OpenAI-shaped refusals, for a guarded protocol."""

    max_head_bytes = MAX_HEAD_BYTES
    max_connections: int | None = None

    def _deadlines(self) -> tuple[float, float]:
        return HEAD_TIMEOUT_S, BODY_TIMEOUT_S

    def _answer_head_timeout(self) -> bytes:
        return _answer(
            GatewayError(
                408,
                "request_timeout_error",
                "request_timeout",
                f"the request head did not arrive within {HEAD_TIMEOUT_S:g} s: send the whole "
                "request at once",
            )
        )

    def _answer_body_timeout(self) -> bytes:
        return _answer(
            GatewayError(
                408,
                "request_timeout_error",
                "request_timeout",
                f"the request body did not arrive within {BODY_TIMEOUT_S:g} s of its head: "
                "send the whole request at once",
            )
        )

    def _answer_head_too_large(self) -> bytes:
        return _answer(
            GatewayError(
                431,
                "request_too_large_error",
                "request_head_too_large",
                "the request line and headers are over the gateway's limit of "
                f"{MAX_HEAD_BYTES} bytes",
            )
        )

    def _answer_too_many_connections(self) -> bytes:
        return _answer(
            GatewayError(
                503,
                "service_unavailable_error",
                "too_many_connections",
                f"the gateway serves at most {self.max_connections} connections at once "
                "(--max-connections): close idle ones, or try again shortly",
            )
        )

    def _answer_invalid_http(self) -> bytes:
        return _answer(
            GatewayError(
                400,
                "invalid_request_error",
                "invalid_http",
                "the request is not valid HTTP/1.1 (its request line, a header or its framing, "
                "e.g. Content-Length): send a well-formed request",
            )
        )


if _http_guard.GuardedHttpToolsProtocol is not None:

    class GuardedHttpToolsProtocol(_GatewayAnswers, _http_guard.GuardedHttpToolsProtocol):
        """uvicorn's ``httptools`` protocol with the gateway's bounds and answers."""

else:  # pragma: no cover - without httptools the h11 protocol is used
    GuardedHttpToolsProtocol = None  # type: ignore[assignment,misc]


class GuardedH11Protocol(_GatewayAnswers, _http_guard.GuardedH11Protocol):
    """uvicorn's ``h11`` protocol with the gateway's deadlines and answers."""
