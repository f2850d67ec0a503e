"""Classification: an HTTP response, a stream result or an exception → ``Failure`` or ``None``.

Decisions come from tables: the contract's error rules (provider quirks as data), a status
fallback table for responses no rule names, the violation-kind table for parser failures, and
the stream-verdict table. ``None`` means the response is what the contract promised.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from functools import lru_cache

from chatcontract.contract import Contract, ErrorRule, load_preset
from chatcontract.wire import (
    BodyKind,
    Completion,
    CompletionResult,
    ErrorBody,
    StreamResult,
    StreamVerdict,
    Violation,
    ViolationKind,
    parse_completion,
    parse_error_body,
    parse_stream,
)

from .failure import Failure, make_failure
from .taxonomy import Kind, RetryDecision, decision_for

__all__ = [
    "classify",
    "classify_error_body",
    "classify_received",
    "classify_response",
    "classify_stream",
    "semantic_failure",
]

# Status → (category, code) when no contract rule matched; then the status class.
_STATUS_FALLBACK: dict[int, tuple[str, str]] = {
    401: ("auth", "unauthorized"),
    403: ("auth", "forbidden"),
    404: ("endpoint", "not_found"),
    405: ("endpoint", "method_not_allowed"),
    408: ("timeout", "request_timeout"),
    409: ("validation", "conflict"),
    413: ("validation", "request_too_large"),
    422: ("validation", "unprocessable"),
    429: ("rate_limit", "rate_limited"),
    502: ("upstream", "bad_gateway"),
    503: ("upstream", "unavailable"),
    504: ("upstream", "gateway_timeout"),
    524: ("upstream", "origin_timeout"),
}
_CLASS_FALLBACK: dict[int, tuple[str, str]] = {
    1: ("endpoint", "informational"),
    2: ("contract", "unexpected_success"),
    3: ("endpoint", "redirect"),
    4: ("validation", "client_error"),
    5: ("upstream", "server_error"),
}

# Parser violations after a 2xx → (code). Category is always ``contract``.
_VIOLATION_CODES: dict[ViolationKind, str] = {
    ViolationKind.EMPTY_BODY: "empty_body",
    ViolationKind.INVALID_JSON: "invalid_json",
    ViolationKind.NOT_OBJECT: "not_object",
    ViolationKind.MISSING: "missing_field",
    ViolationKind.NULL: "null_field",
    ViolationKind.ERROR_ENVELOPE: "error_envelope",
    ViolationKind.TYPE: "wrong_type",
    ViolationKind.EMPTY: "empty_field",
    ViolationKind.NOT_SSE: "not_sse",
    ViolationKind.CUT_CHUNK: "malformed_chunk",
    ViolationKind.AFTER_DONE: "data_after_done",
    ViolationKind.MISSING_USAGE: "missing_usage",
    ViolationKind.INVALID_FIELD: "invalid_sse_field",
}

# Stream verdicts that are failures → (kind, category, code, message).
_STREAM_VERDICTS: dict[StreamVerdict, tuple[Kind, str, str, str]] = {
    StreamVerdict.CUT: (
        "parser",
        "contract",
        "stream_cut",
        "the stream closed mid-answer: no finish_reason, no [DONE]",
    ),
    StreamVerdict.DROPPED: (
        "transport",
        "network",
        "stream_dropped",
        "the connection dropped mid-stream (reset or incomplete body) before the answer ended",
    ),
    StreamVerdict.TRUNCATED: (
        "parser",
        "contract",
        "stream_truncated",
        "[DONE] arrived without any finish_reason: the answer is incomplete",
    ),
    StreamVerdict.NO_DONE: (
        "parser",
        "contract",
        "stream_no_done",
        "finish_reason seen but the stream closed without [DONE]",
    ),
    StreamVerdict.STALLED: (
        "transport",
        "timeout",
        "stream_stalled",
        "no stream data within the idle limit",
    ),
    StreamVerdict.MALFORMED_CHUNK: (
        "parser",
        "contract",
        "malformed_chunk",
        "a stream chunk is not valid JSON or has the wrong shape",
    ),
}

_RULE_BODY_KINDS: dict[BodyKind, str] = {
    BodyKind.JSON: "json",
    BodyKind.EMPTY: "empty",
    BodyKind.HTML: "html",
    BodyKind.TEXT: "text",
    BodyKind.INVALID_JSON: "text",
    BodyKind.JSON_OTHER: "text",
}


@lru_cache(maxsize=1)
def _default_contract() -> Contract:
    return load_preset("cometapi")


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


def _rule_matches(rule: ErrorRule, status: int | None, error: ErrorBody) -> bool:
    if rule.status is not None and status not in rule.status:
        return False
    if rule.code is not None and (error.code or "") != rule.code:
        return False
    if rule.type is not None and error.type != rule.type:
        return False
    if rule.message is not None and not _compiled(rule.message).search(error.message or ""):
        return False
    return rule.body == "any" or rule.body == _RULE_BODY_KINDS[error.body_kind]


def _provider_code(status: int | None, error: ErrorBody) -> str | None:
    """``error.code`` when it says something the status does not.

    A gateway that rewrites the code to the status as text (LiteLLM's ``"code": "429"``)
    tells nothing more: the matching rule's name or the status table names the failure.
    """
    code = error.code
    if not code or (status is not None and code == str(status)):
        return None
    return code


def _body_summary(status: int | None, error: ErrorBody) -> str:
    if error.message:
        return error.message
    prefix = f"HTTP {status} with" if status is not None else "a response with"
    if error.body_kind is BodyKind.EMPTY:
        return f"{prefix} an empty body"
    if error.body_kind is BodyKind.HTML:
        title = f" (title: {error.html_title})" if error.html_title else ""
        return f"{prefix} an HTML page{title}"
    if error.body_kind is BodyKind.INVALID_JSON:
        return f"{prefix} a body that is not valid JSON"
    excerpt = f": {error.text_excerpt}" if error.text_excerpt else ""
    return f"{prefix} a non-JSON body{excerpt}"


def classify_error_body(
    status: int | None,
    error: ErrorBody,
    *,
    contract: Contract | None = None,
    in_band: bool = False,
    secrets: tuple[str, ...] = (),
) -> Failure:
    """The ``Failure`` for an error body: the contract's first matching rule decides.

    ``in_band`` marks an ``{"error": …}`` that arrived with a 2xx (body or stream event): it is
    an ``api_error``, never a success, whatever its rules say.
    """
    table = (contract or _default_contract()).errors
    kind: Kind = "api_error" if error.is_envelope or in_band else "http"
    rule = next((r for r in table.rules if _rule_matches(r, status, error)), None)
    own_code = _provider_code(status, error)
    if rule is not None:
        category, code = rule.category, (own_code or rule.name)
    elif in_band:
        category, code = "upstream", own_code or "inband_error"
    else:
        fallback = _STATUS_FALLBACK.get(status or 0) or _CLASS_FALLBACK.get((status or 0) // 100)
        category, code = fallback or ("endpoint", "unexpected_status")
        code = own_code or code
    return make_failure(
        kind=kind,
        category=category,
        code=code,
        status=status,
        message=_body_summary(status, error),
        request_id=error.request_id,
        decision=decision_for(
            category, retryable=table.retryable, non_retryable=table.non_retryable
        ),
        secrets=secrets,
    )


def _parser_failure(
    status: int, violations: tuple[Violation, ...], contract: Contract, secrets: tuple[str, ...]
) -> Failure:
    first = violations[0]
    code = _VIOLATION_CODES.get(first.kind, "contract_violation")
    if first.path.startswith("$.choices") and first.kind in (
        ViolationKind.MISSING,
        ViolationKind.EMPTY,
    ):
        code = "missing_choices" if first.path == "$.choices" else code
    if first.path.startswith("$.usage") and first.kind is ViolationKind.MISSING:
        code = "missing_usage"
    more = f" (+{len(violations) - 1} more)" if len(violations) > 1 else ""
    return make_failure(
        kind="parser",
        category="contract",
        code=code,
        status=status,
        message=f"{first}{more}",
        decision=_decision(contract, "contract"),
        secrets=secrets,
    )


def _decision(contract: Contract, category: str) -> RetryDecision:
    table = contract.errors
    return decision_for(category, retryable=table.retryable, non_retryable=table.non_retryable)


def semantic_failure(
    completion: Completion,
    *,
    contract: Contract | None = None,
    max_tokens: int | None = None,
    status: int | None = 200,
) -> Failure | None:
    """The application-level checks of a parsed completion, or ``None`` when they hold.

    Empty content (no text, no tool calls), a finish_reason the contract does not accept,
    usage that does not add up, and more completion tokens than ``max_tokens``.
    """
    contract = contract or _default_contract()
    problem = _semantic_problem(completion, contract, max_tokens)
    return None if problem is None else _semantic_failure(problem, contract, status)


def _semantic_failure(
    problem: tuple[str, str, str], contract: Contract, status: int | None
) -> Failure:
    category, code, message = problem
    return make_failure(
        kind="semantic",
        category=category,
        code=code,
        status=status,
        message=message,
        decision=_decision(contract, category),
    )


def _semantic_problem(
    completion: Completion, contract: Contract, max_tokens: int | None
) -> tuple[str, str, str] | None:
    reason = completion.finish_reason
    if reason is not None and reason not in contract.response.finish_reasons:
        return (
            "contract",
            "unexpected_finish_reason",
            f"finish_reason {reason!r} is not one the contract accepts",
        )
    if not completion.content and not completion.tool_calls:
        if reason == "content_filter":
            return ("content", "content_filter", "the answer was filtered: no content")
        return ("content", "empty_content", "the assistant content is empty")
    usage = completion.usage
    if usage is None:
        return None
    prompt, completion_tokens, total = (
        usage.prompt_tokens,
        usage.completion_tokens,
        usage.total_tokens,
    )
    if (
        (prompt is not None and prompt < 0)
        or (completion_tokens is not None and completion_tokens < 0)
        or (total is not None and total < 0)
    ):
        return ("usage", "negative_usage", "a usage count is negative")
    if prompt is not None and completion_tokens is not None and total is not None:
        if total != prompt + completion_tokens:
            return (
                "usage",
                "usage_mismatch",
                f"total_tokens {total} != prompt_tokens {prompt} + completion_tokens "
                f"{completion_tokens}",
            )
    elif prompt is not None and total is not None and total < prompt:
        return ("usage", "usage_mismatch", f"total_tokens {total} < prompt_tokens {prompt}")
    if max_tokens is not None and completion_tokens is not None and completion_tokens > max_tokens:
        return (
            "usage",
            "usage_exceeds_max_tokens",
            f"completion_tokens {completion_tokens} > max_tokens {max_tokens}",
        )
    return None


def _header(headers: Mapping[str, str], name: str) -> str | None:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def classify_response(
    status: int,
    headers: Mapping[str, str] | None = None,
    body: bytes = b"",
    *,
    contract: Contract | None = None,
    max_tokens: int | None = None,
    secrets: tuple[str, ...] = (),
    parsed: CompletionResult | None = None,
) -> Failure | None:
    """Classify a complete, non-streaming HTTP response; ``None`` when the contract holds.

    ``parsed`` is the body's ``parse_completion`` result when the caller already has it.
    """
    headers = headers or {}
    return classify_received(
        status,
        headers,
        _header(headers, "content-type"),
        body,
        contract=contract,
        max_tokens=max_tokens,
        secrets=secrets,
        parsed=parsed,
    )


def classify_received(
    status: int,
    headers: Mapping[str, str],
    content_type: str | None,
    body: bytes,
    *,
    contract: Contract | None = None,
    max_tokens: int | None = None,
    secrets: tuple[str, ...] = (),
    parsed: CompletionResult | None = None,
) -> Failure | None:
    """:func:`classify_response` for a caller that already holds the response's
    ``content_type`` (its ``content-type`` header, or None): the same answer, without looking
    the header up among ``headers`` again (the transport's observer)."""
    contract = contract or _default_contract()
    if not 200 <= status < 300:
        error = parse_error_body(
            body, content_type=content_type, request_id_pattern=contract.errors.request_id_pattern
        )
        failure = classify_error_body(status, error, contract=contract, secrets=secrets)
        return _with_header_request_id(failure, headers)
    # A 2xx that is an HTML page (a console or SPA on the API path): its content type says so,
    # or its first bytes do (a body opening with "{", a JSON object, cannot).
    if (content_type is not None and "html" in content_type.lower()) or (
        body[:1] != b"{" and body[:64].lstrip()[:1] == b"<"
    ):
        error = parse_error_body(
            body, content_type=content_type, request_id_pattern=contract.errors.request_id_pattern
        )
        return _with_header_request_id(
            classify_error_body(status, error, contract=contract, secrets=secrets), headers
        )
    result = parsed if parsed is not None else parse_completion(body, contract=contract)
    if result.error is not None:
        failure = classify_error_body(
            status, result.error, contract=contract, in_band=True, secrets=secrets
        )
        return _with_header_request_id(failure, headers)
    completion = result.completion
    if completion is None or result.violations:
        if not result.violations:  # pragma: no cover - parse_completion always explains
            return None
        return _with_header_request_id(
            _parser_failure(status, result.violations, contract, secrets), headers
        )
    problem = _semantic_problem(completion, contract, max_tokens)
    if problem is None:
        return None
    return _with_header_request_id(_semantic_failure(problem, contract, status), headers)


#: Response headers that carry the provider's request id, most specific first: new-api
#: (CometAPI), the common one, OpenAI's, and LiteLLM's call id.
REQUEST_ID_HEADERS = ("x-oneapi-request-id", "x-request-id", "request-id", "x-litellm-call-id")


def _with_header_request_id(failure: Failure, headers: Mapping[str, str]) -> Failure:
    if failure.request_id is not None:
        return failure
    for name in REQUEST_ID_HEADERS:
        value = _header(headers, name)
        if value:
            return replace(failure, request_id=value.strip()[:128])
    return failure


def classify_stream(
    result: StreamResult,
    *,
    status: int = 200,
    contract: Contract | None = None,
    max_tokens: int | None = None,
    secrets: tuple[str, ...] = (),
) -> Failure | None:
    """Classify an assembled stream: its verdict first, then the usage the request asked
    for, then the semantic checks, then data after ``[DONE]`` (``data_after_done``). A
    stream the caller closed before its end (``closed``) is no failure: None."""
    contract = contract or _default_contract()
    if result.verdict is StreamVerdict.INBAND_ERROR and result.error is not None:
        return classify_error_body(
            status, result.error, contract=contract, in_band=True, secrets=secrets
        )
    if result.verdict is StreamVerdict.CLOSED:
        return None  # the caller stopped reading: nothing of the provider's to judge
    spec = _STREAM_VERDICTS.get(result.verdict)
    if spec is not None:
        kind, category, code, message = spec
        return make_failure(
            kind=kind,
            category=category,
            code=code,
            status=status,
            message=message,
            decision=_decision(contract, category),
            secrets=secrets,
        )
    if result.missing_usage:  # judged from what the request asked for (stream_options)
        return make_failure(
            kind="parser",
            category="usage",
            code="missing_usage",
            status=status,
            message="the request asked for a usage chunk (stream_options.include_usage) "
            "but none arrived",
            decision=_decision(contract, "usage"),
            secrets=secrets,
        )
    completion = result.as_completion()
    failure = semantic_failure(completion, contract=contract, max_tokens=max_tokens, status=status)
    if failure is None and result.violations and _data_after_done(result.violations):
        # The answer is whole and sound; only its framing broke after the terminator (a
        # tolerated code: recorded on a complete answer, the call succeeds).
        return make_failure(
            kind="parser",
            category="contract",
            code=_VIOLATION_CODES[ViolationKind.AFTER_DONE],
            status=status,
            message="data arrived after [DONE], which ends the stream",
            decision=_decision(contract, "contract"),
            secrets=secrets,
        )
    return failure


def _data_after_done(violations: tuple[Violation, ...]) -> bool:
    return any(violation.kind is ViolationKind.AFTER_DONE for violation in violations)


def _is_event_stream(headers: Mapping[str, str]) -> bool:
    content_type = _header(headers, "content-type") or ""
    return content_type.split(";")[0].strip().lower() == "text/event-stream"


def classify(
    subject: int | BaseException,
    headers: Mapping[str, str] | None = None,
    body: bytes | str = b"",
    *,
    contract: Contract | None = None,
    max_tokens: int | None = None,
    secrets: tuple[str, ...] = (),
    stream: bool | None = None,
    usage_asked: bool = False,
) -> Failure | None:
    """Classify an HTTP response (``status, headers, body``) or a transport exception.

    ``body`` is the raw body as ``bytes`` or ``str`` (UTF-8). A captured SSE stream (a
    ``content-type: text/event-stream`` header, or ``stream=True``) gets the stream verdict:
    complete is a success, a cut or truncated stream is its ``stream_*`` failure. A stream is
    judged by what its request asked: a missing usage chunk is a failure only with
    ``usage_asked=True`` (the request sent ``stream_options.include_usage``).

    Example::

        failure = chatcontract.classify(503, {}, body, contract=load_preset("cometapi"))
        failure.category, failure.retry   # ('model', 'none') for model_not_found

    Returns ``None`` when the response is what the contract promised.
    """
    if isinstance(subject, BaseException):
        # The httpx2 boundary loads on first use: this module stays free of network imports.
        from .transport_errors import classify_exception

        return classify_exception(subject, secrets=secrets)
    raw = body.encode("utf-8", "surrogateescape") if isinstance(body, str) else body
    headers = headers or {}
    if 200 <= subject < 300 and (stream if stream is not None else _is_event_stream(headers)):
        contract = contract or _default_contract()
        result = parse_stream([raw], contract=contract, expect_usage=usage_asked)
        failure = classify_stream(
            result, status=subject, contract=contract, max_tokens=max_tokens, secrets=secrets
        )
        return None if failure is None else _with_header_request_id(failure, headers)
    return classify_response(
        subject, headers, raw, contract=contract, max_tokens=max_tokens, secrets=secrets
    )
