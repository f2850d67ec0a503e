"""The gateway's own errors: OpenAI-shaped JSON with a ``type`` a client can branch on.

Every error the gateway answers with is ``{"error": {"message", "type", "code", "param"}}``,
the shape every OpenAI SDK reads. ``type`` is one of :data:`ERROR_TYPES` (a stable string,
documented in ``docs/gateway.md``); ``code`` is the precise reason (the classification code of
the failure that ended a call upstream, e.g. ``upstream_unavailable``); ``param`` names the
request field at fault, when one is.

A call that failed upstream maps by its failure *category* (``failures.taxonomy``) to an HTTP
status and a type through :data:`CATEGORY_ERRORS`, a table; a stream that broke after its first
byte reached the client ends with the same body as an SSE event (``data: {"error": …}``), type
``stream_interrupted_error``.
"""

from __future__ import annotations

from collections.abc import Mapping

import orjson

from chatcontract.client.errors import CallFailedError, KillSwitchError, StreamInterrupted

__all__ = [
    "CATEGORY_ERRORS",
    "ERROR_TYPES",
    "GatewayError",
    "call_error",
    "error_body",
]

#: Every ``type`` the gateway sends, and when.
ERROR_TYPES: Mapping[str, str] = {
    "invalid_request_error": "400: the request is malformed (not HTTP, JSON, fields, fallbacks, "
    "deadline header) or the contract rejects it; or the provider rejected it as invalid",
    "authentication_error": "401: no or a wrong gateway key",
    "not_found_error": "404: an unknown path, or a model no route of the contract serves",
    "method_not_allowed_error": "405: the path exists, the method does not",
    "request_timeout_error": "408: the request head or body did not arrive in time",
    "request_too_large_error": "413: the body is over the gateway's size limit (431: the "
    "request line and headers are)",
    "rate_limit_error": "429: the provider's rate limit, after the retries and fallbacks allowed",
    "insufficient_quota": "429: the provider's quota or balance is exhausted",
    "budget_exceeded_error": "429: a budget cap of the contract refused the call (nothing sent)",
    "kill_switch_error": "503: the kill switch is on and no fallback route is left",
    "service_unavailable_error": "503: the gateway already serves --max-connections "
    "connections (code too_many_connections): try again shortly",
    "timeout_error": "504: the call's deadline ran out, or every route stayed silent",
    "upstream_error": "502: the provider failed in any other way (server errors, network, "
    "broken or unusable answers) after every retry and fallback",
    "stream_interrupted_error": "in-band (SSE event): a stream broke after its first byte and "
    "could not be continued; the text received is incomplete",
    "gateway_error": "500: the gateway itself failed (a bug: please report it)",
}

#: Failure category of the call's last failure -> (HTTP status, type).
CATEGORY_ERRORS: Mapping[str, tuple[int, str]] = {
    "validation": (400, "invalid_request_error"),
    "context_length": (400, "invalid_request_error"),
    "content_policy": (400, "invalid_request_error"),
    "rate_limit": (429, "rate_limit_error"),
    "quota": (429, "insufficient_quota"),
    "budget": (429, "budget_exceeded_error"),
    "timeout": (504, "timeout_error"),
    "auth": (502, "upstream_error"),  # the provider refused the gateway's key, not the client's
    "model": (502, "upstream_error"),
    "upstream": (502, "upstream_error"),
    "network": (502, "upstream_error"),
    "endpoint": (502, "upstream_error"),
    "contract": (502, "upstream_error"),
    "content": (502, "upstream_error"),
    "usage": (502, "upstream_error"),
}


class GatewayError(Exception):
    """An error answer: HTTP status, type (one of ``ERROR_TYPES``), code, message, param."""

    def __init__(
        self, status: int, type_: str, code: str, message: str, param: str | None = None
    ) -> None:
        if type_ not in ERROR_TYPES:
            raise ValueError(f"unknown gateway error type {type_!r}")
        super().__init__(message)
        self.status = status
        self.type = type_
        self.code = code
        self.message = message
        self.param = param

    def body(self) -> bytes:
        """The JSON body (``{"error": {...}}``)."""
        return error_body(self.message, self.type, self.code, self.param)


def error_body(message: str, type_: str, code: str | None, param: str | None = None) -> bytes:
    """``{"error": {"message", "type", "code", "param"}}`` as bytes."""
    error = {"message": message, "type": type_, "code": code, "param": param}
    return orjson.dumps({"error": error})


def call_error(error: CallFailedError) -> GatewayError:
    """The answer for a call the plan gave up on (its message is already redacted)."""
    failure = error.failure
    if isinstance(error, StreamInterrupted):
        status, type_ = 502, "stream_interrupted_error"
    elif isinstance(error, KillSwitchError):
        status, type_ = 503, "kill_switch_error"
    else:
        status, type_ = CATEGORY_ERRORS.get(failure.category, (502, "upstream_error"))
    return GatewayError(status, type_, failure.code, str(error))
