"""The ``Exchange``: one record per HTTP call, the spine every other part reads.

Request facts (never the prompt text or the key), response facts, phase timings, attempt and
route, and the outcome: ``failure is None`` for success, else the classification.

The four classes are frozen, keyword-only ``msgspec.Struct`` types (one of each is built per
call: their constructor runs in C, where a frozen dataclass's runs a Python store per field);
``msgspec.structs.replace`` makes a changed copy, ``to_dict`` the plain data.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace as replace_dataclass
from typing import Any

from msgspec import Struct, field
from msgspec.structs import replace

from chatcontract.failures import Failure
from chatcontract.redact import redact_text
from chatcontract.wire import Usage

__all__ = ["Exchange", "RequestFacts", "ResponseFacts", "Timings", "response_is_clean"]


class RequestFacts(Struct, frozen=True, kw_only=True, gc=False):
    """What was asked, as shape only: counts, roles, flags, budgets, a fingerprint."""

    method: str
    url: str
    model: str | None = None
    message_count: int = 0
    roles: tuple[str, ...] = ()
    stream: bool = False
    include_usage: bool = False
    max_tokens: int | None = None
    timeout_budget_ms: float | None = None
    shape_fingerprint: str | None = None
    source: str | None = None


class ResponseFacts(Struct, frozen=True, kw_only=True):
    """What came back: status, content type, request ids, shape, the parsed facts we keep."""

    status: int
    content_type: str | None = None
    request_ids: Mapping[str, str] = field(default_factory=dict)
    shape_fingerprint: str | None = None
    shape_paths: tuple[str, ...] = ()
    model: str | None = None
    response_id: str | None = None
    finish_reason: str | None = None
    usage: Usage | None = None
    content_chars: int = 0
    stream_verdict: str | None = None
    chunk_count: int = 0
    #: The body's size as parsed: after its ``content_encoding`` was removed (decoding stops
    #: one byte past the observer's limits: 8 MiB for a body, 64 MiB for a stream); the bytes
    #: as they came when that coding cannot be removed (then nothing was parsed).
    body_bytes: int = 0
    rate_limit_headers: Mapping[str, str] = field(default_factory=dict)
    content: str | None = None  # only with capture_content=True (opt-in)
    #: The response's ``Content-Encoding`` (lower-cased), None without one or for identity.
    content_encoding: str | None = None


class Timings(Struct, frozen=True, kw_only=True, gc=False):
    """Phase durations in milliseconds; ``None`` when the phase did not happen (reused
    connection, no TLS, not a stream)."""

    dns_ms: float | None = None
    connect_ms: float | None = None
    tls_ms: float | None = None
    ttfb_ms: float | None = None
    ttft_ms: float | None = None
    total_ms: float = 0.0
    retry_added_ms: float = 0.0


class Exchange(Struct, frozen=True, kw_only=True):
    """One HTTP call, redacted at the source.

    Example::

        exchange.ok, exchange.response.status, exchange.timings.ttft_ms
        exchange.failure.category if not exchange.ok else None
    """

    request: RequestFacts
    response: ResponseFacts | None
    timings: Timings
    started_at: float
    attempt: int = 1
    route: str = "primary"
    failure: Failure | None = None
    #: The request first went out on a pooled connection the server had dropped, and was
    #: sent again on a new connection by the transport (not a policy attempt).
    stale_connection_replaced: bool = False
    #: The caller stopped the call before its answer ended (closed the body, broke out of a
    #: stream, was cancelled): what did not arrive is not judged, so the call has no failure
    #: (none of the provider's) and is not ``ok`` either; a stream's verdict is ``closed``.
    closed_by_caller: bool = False

    @property
    def ok(self) -> bool:
        """True when the call succeeded as the contract promised (a call the caller closed
        before its end is neither ok nor failed: see ``closed_by_caller``)."""
        return self.failure is None and not self.closed_by_caller

    @property
    def request_id(self) -> str | None:
        """The provider's request id: from the failure's message, else a response header."""
        if self.failure is not None and self.failure.request_id:
            return self.failure.request_id
        if self.response is not None:
            for value in self.response.request_ids.values():
                return value
        return None

    def redacted(self, secrets: Sequence[str] = ()) -> Exchange:
        """This Exchange with every text that came from the outside world (request ids, rate
        limit headers, response id and model, captured content, the failure's message and
        request id) cleaned of ``secrets`` and credential-shaped strings; ``self`` when
        nothing changes."""
        response, failure = self.response, self.failure
        if failure is None and (response is None or response_is_clean(response, secrets)):
            return self  # the usual success: one scan of its texts, nothing to replace
        new_response = None if response is None else _redact_response(response, secrets)
        new_failure = None if failure is None else _redact_failure(failure, secrets)
        if new_response is response and new_failure is failure:
            return self
        return replace(self, response=new_response, failure=new_failure)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for reports and event logs (no prompt text, no secret)."""
        response = None
        if self.response is not None:
            usage = self.response.usage
            response = {
                "status": self.response.status,
                "content_type": self.response.content_type,
                "request_ids": dict(self.response.request_ids),
                "shape_fingerprint": self.response.shape_fingerprint,
                "shape_paths": list(self.response.shape_paths),
                "model": self.response.model,
                "response_id": self.response.response_id,
                "finish_reason": self.response.finish_reason,
                "usage": None
                if usage is None
                else {
                    "prompt_tokens": usage.prompt_tokens,
                    "completion_tokens": usage.completion_tokens,
                    "total_tokens": usage.total_tokens,
                },
                "content_chars": self.response.content_chars,
                "stream_verdict": self.response.stream_verdict,
                "chunk_count": self.response.chunk_count,
                "body_bytes": self.response.body_bytes,
                "content_encoding": self.response.content_encoding,
                "rate_limit_headers": dict(self.response.rate_limit_headers),
            }
            if self.response.content is not None:
                response["content"] = self.response.content
        req = self.request
        return {
            "started_at": self.started_at,
            "attempt": self.attempt,
            "route": self.route,
            "stale_connection_replaced": self.stale_connection_replaced,
            "request": {
                "method": req.method,
                "url": req.url,
                "model": req.model,
                "message_count": req.message_count,
                "roles": list(req.roles),
                "stream": req.stream,
                "include_usage": req.include_usage,
                "max_tokens": req.max_tokens,
                "timeout_budget_ms": req.timeout_budget_ms,
                "shape_fingerprint": req.shape_fingerprint,
                "source": req.source,
            },
            "response": response,
            "timings": {
                "dns_ms": self.timings.dns_ms,
                "connect_ms": self.timings.connect_ms,
                "tls_ms": self.timings.tls_ms,
                "ttfb_ms": self.timings.ttfb_ms,
                "ttft_ms": self.timings.ttft_ms,
                "total_ms": self.timings.total_ms,
                "retry_added_ms": self.timings.retry_added_ms,
            },
            "outcome": "success" if self.failure is None else "failure",
            "failure": None if self.failure is None else self.failure.to_dict(),
        }


def response_is_clean(response: ResponseFacts, secrets: Sequence[str] = ()) -> bool:
    """True when redacting ``secrets`` would change none of the response's texts: none holds
    a secret or a credential mark (False may also mean only "look closer").

    What ``Exchange.redacted`` checks first: a producer about to hand out a successful
    Exchange may check it itself and skip that call. One joined text is searched (a
    substring of any part is one of the whole; a match across two parts only sends the call
    the per-text way)."""
    whole = "\n".join(
        [
            response.model or "",
            response.response_id or "",
            response.content or "",
            response.content_type or "",
            *response.request_ids.values(),
            *response.rate_limit_headers.values(),
        ]
    )
    # What every credential-shaped match of ``redact_text`` contains (its patterns start
    # with these literals).
    if "sk-" in whole or "Bearer " in whole or "eyJ" in whole or "AKIA" in whole:
        return False
    for secret in secrets:  # noqa: SIM110 - a loop, not all(...): no generator per call
        if len(secret) >= 4 and secret in whole:
            return False
    return True


def _clean(text: str | None, secrets: Sequence[str]) -> str | None:
    return None if text is None else redact_text(text, secrets)


def _clean_map(values: Mapping[str, str], secrets: Sequence[str]) -> Mapping[str, str]:
    cleaned = {name: redact_text(value, secrets) for name, value in values.items()}
    return values if cleaned == values else cleaned


def _redact_response(response: ResponseFacts, secrets: Sequence[str]) -> ResponseFacts:
    changes: dict[str, Any] = {}
    for name in ("model", "response_id", "content", "content_type"):
        value = getattr(response, name)
        cleaned = _clean(value, secrets)
        if cleaned != value:
            changes[name] = cleaned
    for name in ("request_ids", "rate_limit_headers"):
        values = getattr(response, name)
        cleaned_map = _clean_map(values, secrets)
        if cleaned_map is not values:
            changes[name] = cleaned_map
    return replace(response, **changes) if changes else response


def _redact_failure(failure: Failure, secrets: Sequence[str]) -> Failure:
    message = redact_text(failure.message, secrets)
    request_id = _clean(failure.request_id, secrets)
    if message == failure.message and request_id == failure.request_id:
        return failure
    return replace_dataclass(failure, message=message, request_id=request_id)
