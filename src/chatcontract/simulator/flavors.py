"""How each provider answers when something is wrong: statuses, error bodies, headers, request ids.

A *situation* (missing key, unknown model, rate limit, ...) maps, per flavor, to an ``ErrorSpec``:
a table a reader can scan against research/cometapi.md §5 (cometapi) or OpenAI's documented
errors (openai). JSON error fields are kept in the order the provider serialises them — CometAPI's
gin maps come out ``code,message,type``, its ``OpenAIError`` struct ``message,type,param,code``.

Message templates take ``str.format`` fields: ``{model}``, ``{key}`` (always masked),
``{method}``, ``{path}``, ``{field}``, ``{detail}``, ``{expected}``, ``{got}``, ``{value}``.
"""

from __future__ import annotations

import hashlib
import itertools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

import orjson

from chatcontract.simulator.catalogue import COMETAPI_MODELS, OPENAI_MODELS, Catalogue

__all__ = [
    "COMETAPI",
    "FLAVORS",
    "FLAVOR_NAMES",
    "OPENAI",
    "ErrorSpec",
    "Flavor",
    "FlavorName",
    "IdSource",
    "Situation",
    "mask_key",
]

FlavorName = Literal["cometapi", "openai"]


class Situation(StrEnum):
    """Everything the simulator can answer with an error (or a canned non-success body)."""

    MISSING_KEY = "missing_key"
    INVALID_KEY = "invalid_key"
    MALFORMED_JSON = "malformed_json"
    MISSING_MODEL = "missing_model"
    MISSING_MESSAGES = "missing_messages"
    EMPTY_MESSAGES = "empty_messages"
    INVALID_FIELD = "invalid_field"
    BELOW_MINIMUM = "below_minimum"
    UNKNOWN_MODEL = "unknown_model"
    UNKNOWN_URL = "unknown_url"
    RATE_LIMIT = "rate_limit"
    QUOTA = "quota"
    SERVER_ERROR = "server_error"
    UPSTREAM_UNAVAILABLE = "upstream_unavailable"
    GATEWAY_TIMEOUT = "gateway_timeout"
    CLOUDFLARE_524 = "cloudflare_524"
    HTML_ERROR = "html_error"
    ERROR_IN_200 = "error_in_200"
    BAD_CONTROL = "bad_control"
    CONTEXT_LENGTH = "context_length"
    CONTENT_POLICY = "content_policy"
    PREFIX_REFUSED = "prefix_refused"


Field = tuple[str, str | None]


class _Params(dict[str, str]):
    """Template values; a field nobody supplied renders empty rather than raising."""

    def __missing__(self, key: str) -> str:
        return ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorSpec:
    """One canned non-success answer.

    Args:
        status: the HTTP status.
        fields: the ``error`` object's fields in wire order; string values are templates.
            Empty means the body is ``raw`` instead of a JSON envelope.
        request_id_suffix: append `` (request id: <id>)`` to the message (new-api gateways do).
        raw: a non-JSON body (HTML, or empty for new-api's limiter 429).
        content_type: the ``Content-Type``, or ``None`` for an empty body without one.
        headers: extra response headers.
    """

    status: int
    fields: tuple[Field, ...] = ()
    request_id_suffix: bool = False
    raw: bytes = b""
    content_type: str | None = "application/json"
    headers: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        if not 100 <= self.status <= 599:
            raise ValueError(f"status must be an HTTP status, got {self.status}")
        if self.fields and self.raw:
            raise ValueError("an ErrorSpec has either JSON fields or a raw body, not both")

    def error_object(self, params: Mapping[str, str], request_id: str) -> dict[str, Any]:
        """The ``error`` object with templates filled in (JSON specs only).

        A template field missing from ``params`` renders as an empty string.
        """
        values = _Params(params)
        error: dict[str, Any] = {}
        for name, template in self.fields:
            value = None if template is None else template.format_map(values)
            if name == "message" and self.request_id_suffix and value is not None:
                value = f"{value} (request id: {request_id})"
            error[name] = value
        return error

    def body(self, params: Mapping[str, str], request_id: str) -> bytes:
        """The response body bytes."""
        if not self.fields:
            return self.raw
        return orjson.dumps({"error": self.error_object(params, request_id)})


def mask_key(key: str) -> str:
    """A key as OpenAI quotes it back: enough to recognise, never the whole secret.

    >>> mask_key("sk-abcdefghijklmnopqrstuvwxyz")
    'sk-ab***yz'
    """
    if len(key) < 12:
        return "***"
    return f"{key[:5]}***{key[-2:]}"


_ALNUM = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# Maps every byte value to an alphanumeric (a slight bias is fine: these are ids, not secrets).
_ALNUM_BY_BYTE = bytes(_ALNUM[b % len(_ALNUM)] for b in range(256))


class IdSource:
    """Deterministic ids from a per-app counter: unique per app, identical across runs.

    ``clock`` returns unix nanoseconds; it dates new-api request ids and ``created`` fields.
    """

    __slots__ = ("_counter", "_salt", "_stamp", "clock")

    def __init__(
        self, *, clock: Callable[[], int] = time.time_ns, salt: str = "chatcontract"
    ) -> None:
        self._counter = itertools.count(1)
        self._salt = salt.encode()
        self._stamp = (-1, "")
        self.clock = clock

    def utc_stamp(self, seconds: int) -> str:
        """``yyyyMMddHHmmss`` in UTC for unix ``seconds`` (formatted once per second)."""
        if self._stamp[0] != seconds:
            self._stamp = (seconds, time.strftime("%Y%m%d%H%M%S", time.gmtime(seconds)))
        return self._stamp[1]

    def alnum(self, length: int) -> str:
        """``length`` (at most 64) alphanumerics derived from the next counter value."""
        digest = hashlib.blake2b(b"%s:%d" % (self._salt, next(self._counter)), digest_size=64)
        return digest.digest()[:length].translate(_ALNUM_BY_BYTE).decode()

    def hex(self, length: int) -> str:
        """``length`` hex digits derived from the next counter value."""
        digest = hashlib.blake2b(b"%s:%d" % (self._salt, next(self._counter)), digest_size=32)
        return digest.hexdigest()[:length]

    def completion_id(self) -> str:
        """``chatcmpl-`` and 29 alphanumerics, as OpenAI ids look."""
        return "chatcmpl-" + self.alnum(29)


def new_api_request_id(ids: IdSource) -> str:
    """A new-api request id: ``yyyyMMddHHmmss`` (UTC) + nanoseconds % 1e9 unpadded + 8 alnum."""
    seconds, nanos = divmod(ids.clock(), 1_000_000_000)
    return f"{ids.utc_stamp(seconds)}{nanos}{ids.alnum(8)}"


def openai_request_id(ids: IdSource) -> str:
    """An OpenAI request id: ``req_`` + 32 hex digits."""
    return "req_" + ids.hex(32)


@dataclass(frozen=True, slots=True, kw_only=True)
class Flavor:
    """Everything that differs between providers, as data.

    Args:
        name: ``cometapi`` or ``openai``.
        errors: situation → canned answer; every ``Situation`` must be present.
        catalogue: the models this provider serves.
        request_id_header: the response header carrying the request id, on every response.
        new_request_id: makes a request id.
        html_for_unknown_paths: answer non-``/v1`` paths with the web console's HTML page
            (new-api's SPA fallback) instead of a JSON 404.
        success_headers: extra headers on every success response.
        host: the public host name, used in proxy error pages.
    """

    name: FlavorName
    errors: Mapping[Situation, ErrorSpec]
    catalogue: Catalogue
    request_id_header: str
    new_request_id: Callable[[IdSource], str]
    html_for_unknown_paths: bool
    success_headers: tuple[tuple[str, str], ...] = ()
    host: str

    def __post_init__(self) -> None:
        missing = [s.value for s in Situation if s not in self.errors]
        if missing:
            raise ValueError(f"flavor {self.name} has no error spec for {', '.join(missing)}")


def _proxy_page(status: int, reason: str) -> bytes:
    """The nginx error page a reverse proxy in front of the API answers with."""
    return (
        f"<html>\r\n<head><title>{status} {reason}</title></head>\r\n<body>\r\n"
        f"<center><h1>{status} {reason}</h1></center>\r\n<hr><center>nginx</center>\r\n"
        "</body>\r\n</html>\r\n"
    ).encode()


def _cloudflare_524(host: str) -> bytes:
    """Cloudflare's 524 page: the origin accepted the connection but did not answer in time."""
    return (
        '<!DOCTYPE html>\n<html lang="en-US">\n<head>\n<meta charset="UTF-8" />\n'
        f"<title>{host} | 524: A timeout occurred</title>\n</head>\n<body>\n"
        '<div id="cf-wrapper"><div id="cf-error-details">\n'
        '<h1><span class="cf-error-type">A timeout occurred</span>\n'
        '<span class="cf-error-code">Error code 524</span></h1>\n'
        "<p>The origin web server timed out responding to this request.</p>\n"
        '<p>Cloudflare Ray ID: <strong class="font-semibold">8f1c2a3b4d5e6f70</strong></p>\n'
        "</div></div>\n</body>\n</html>\n"
    ).encode()


SPA_PAGE = (
    b'<!doctype html><html lang="en"><head><meta charset="utf-8" />'
    b'<meta name="viewport" content="width=device-width, initial-scale=1.0" />'
    b"<title>CometAPI</title>"
    b'<script type="module" crossorigin src="/assets/index-4f2a9c1e.js"></script></head>'
    b"<body><noscript>You need to enable JavaScript to run this app.</noscript>"
    b'<div id="root"></div></body></html>'
)

_HTML = "text/html; charset=utf-8"
_GIN_JSON = "application/json; charset=utf-8"


def _comet_gin(status: int, message: str, code: str = "") -> ErrorSpec:
    """A new-api ``abortWithOpenAiMessage`` body: a gin map, keys sorted (code, message, type)."""
    return ErrorSpec(
        status=status,
        fields=(("code", code), ("message", message), ("type", "comet_api_error")),
        request_id_suffix=True,
        content_type=_GIN_JSON,
    )


def _comet_struct(
    status: int, message: str, code: str, *, type_: str = "comet_api_error", param: str = ""
) -> ErrorSpec:
    """A new-api ``OpenAIError`` struct body: message, type, param, code."""
    return ErrorSpec(
        status=status,
        fields=(("message", message), ("type", type_), ("param", param), ("code", code)),
        request_id_suffix=True,
        content_type=_GIN_JSON,
    )


_COMET_HOST = "api.cometapi.com"
_UPSTREAM_INVALID = "invalid_request_error"

# OpenAI's words for the two refusals that decide where a call goes next; a new-api gateway
# passes the upstream error through with its request id appended.
_CONTEXT_MESSAGE = (
    "This model's maximum context length is 8192 tokens. However, your messages resulted in "
    "{tokens} tokens. Please reduce the length of the messages."
)
_POLICY_MESSAGE = (
    "Your request was rejected as a result of our safety system. Your prompt may contain text "
    "that is not allowed by our safety system."
)
# A server that does not take a trailing assistant message (no prefix continuation).
_PREFIX_MESSAGE = (
    "The last message must have role 'user' or 'tool': assistant message prefill is not "
    "supported for this model."
)

_COMETAPI_ERRORS: Mapping[Situation, ErrorSpec] = {
    Situation.MISSING_KEY: _comet_gin(401, "Token not provided"),
    Situation.INVALID_KEY: _comet_gin(401, "Invalid token"),
    Situation.MALFORMED_JSON: _comet_gin(400, "Invalid request: {detail}"),
    Situation.MISSING_MODEL: _comet_gin(400, "model name is required"),
    Situation.UNKNOWN_MODEL: _comet_gin(
        503,
        "no available channel for group default and model {model} (distributor)",
        "model_not_found",
    ),
    Situation.MISSING_MESSAGES: _comet_struct(500, "field messages is required", "invalid_request"),
    Situation.EMPTY_MESSAGES: _comet_struct(500, "field messages is required", "invalid_request"),
    Situation.INVALID_FIELD: _comet_struct(500, "{detail}", "invalid_request"),
    Situation.BELOW_MINIMUM: _comet_struct(500, "{detail}", "invalid_request"),
    # new-api's RelayNotFound: no request id, the upstream-style type, empty param and code.
    Situation.UNKNOWN_URL: ErrorSpec(
        status=404,
        fields=(
            ("message", "Invalid URL ({method} {path})"),
            ("type", "invalid_request_error"),
            ("param", ""),
            ("code", ""),
        ),
        content_type=_GIN_JSON,
    ),
    # new-api's in-memory limiter aborts with a bare 429: no body, no content type.
    Situation.RATE_LIMIT: ErrorSpec(status=429, content_type=None),
    Situation.QUOTA: _comet_struct(403, "user quota is not enough", "insufficient_user_quota"),
    Situation.SERVER_ERROR: _comet_struct(
        500,
        'do request failed: Post "https://upstream.invalid/v1/chat/completions": '
        "read: connection reset by peer",
        "do_request_failed",
    ),
    Situation.UPSTREAM_UNAVAILABLE: _comet_struct(
        503,
        "bad response status code 503",
        "bad_response_status_code",
        type_="upstream_error",
        param="503",
    ),
    Situation.GATEWAY_TIMEOUT: ErrorSpec(
        status=504, raw=_proxy_page(504, "Gateway Time-out"), content_type=_HTML
    ),
    Situation.CLOUDFLARE_524: ErrorSpec(
        status=524, raw=_cloudflare_524(_COMET_HOST), content_type=_HTML
    ),
    Situation.HTML_ERROR: ErrorSpec(
        status=502, raw=_proxy_page(502, "Bad Gateway"), content_type=_HTML
    ),
    # An upstream error passed through byte for byte on a 200: no gateway request id.
    Situation.ERROR_IN_200: ErrorSpec(
        status=200,
        fields=(
            ("message", "The server is overloaded or not ready yet."),
            ("type", "upstream_error"),
            ("param", ""),
            ("code", "bad_response"),
        ),
    ),
    Situation.CONTEXT_LENGTH: _comet_struct(
        400,
        _CONTEXT_MESSAGE,
        "context_length_exceeded",
        type_=_UPSTREAM_INVALID,
        param="messages",
    ),
    Situation.CONTENT_POLICY: _comet_struct(
        400, _POLICY_MESSAGE, "content_policy_violation", type_=_UPSTREAM_INVALID
    ),
    Situation.PREFIX_REFUSED: _comet_struct(
        400, _PREFIX_MESSAGE, "", type_=_UPSTREAM_INVALID, param="messages"
    ),
    Situation.BAD_CONTROL: ErrorSpec(
        status=400,
        fields=(
            ("message", "chatcontract simulator: {detail}"),
            ("type", "chatcontract_simulator_error"),
            ("param", "{field}"),
            ("code", "bad_simulator_control"),
        ),
    ),
}


def _openai(
    status: int, message: str, type_: str, param: str | None, code: str | None
) -> ErrorSpec:
    return ErrorSpec(
        status=status,
        fields=(("message", message), ("type", type_), ("param", param), ("code", code)),
    )


_OPENAI_HOST = "api.openai.com"
_INVALID = "invalid_request_error"


_OPENAI_RATE_LIMIT_HEADERS = (
    ("retry-after", "1"),
    ("retry-after-ms", "1000"),
    ("x-ratelimit-limit-requests", "500"),
    ("x-ratelimit-remaining-requests", "0"),
    ("x-ratelimit-reset-requests", "1s"),
    ("x-ratelimit-limit-tokens", "200000"),
    ("x-ratelimit-remaining-tokens", "199980"),
    ("x-ratelimit-reset-tokens", "6ms"),
)

_OPENAI_ERRORS: Mapping[Situation, ErrorSpec] = {
    Situation.MISSING_KEY: _openai(
        401,
        "You didn't provide an API key. You need to provide your API key in an Authorization "
        "header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY). You can obtain an API "
        "key from https://platform.openai.com/account/api-keys.",
        _INVALID,
        None,
        None,
    ),
    Situation.INVALID_KEY: _openai(
        401,
        "Incorrect API key provided: {key}. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        _INVALID,
        None,
        "invalid_api_key",
    ),
    Situation.MALFORMED_JSON: _openai(
        400,
        "We could not parse the JSON body of your request. (HINT: This likely means you aren't "
        "using your HTTP library correctly. The OpenAI API expects a JSON payload, but what was "
        "sent was not valid JSON. If you have trouble figuring out how to fix this, please "
        "contact us through our help center at help.openai.com.)",
        _INVALID,
        None,
        None,
    ),
    Situation.MISSING_MODEL: _openai(
        400, "you must provide a model parameter", _INVALID, None, None
    ),
    Situation.MISSING_MESSAGES: _openai(
        400,
        "Missing required parameter: 'messages'.",
        _INVALID,
        "messages",
        "missing_required_parameter",
    ),
    Situation.EMPTY_MESSAGES: _openai(
        400,
        "Invalid 'messages': empty array. Expected an array with minimum length 1, "
        "but got an empty array instead.",
        _INVALID,
        "messages",
        "empty_array",
    ),
    Situation.INVALID_FIELD: _openai(
        400,
        "Invalid type for '{field}': expected {expected}, but got {got} instead.",
        _INVALID,
        "{field}",
        "invalid_type",
    ),
    Situation.BELOW_MINIMUM: _openai(
        400,
        "Invalid '{field}': integer below minimum value. Expected a value >= 1, "
        "but got {value} instead.",
        _INVALID,
        "{field}",
        "integer_below_min_value",
    ),
    Situation.UNKNOWN_MODEL: _openai(
        404,
        "The model `{model}` does not exist or you do not have access to it.",
        _INVALID,
        None,
        "model_not_found",
    ),
    Situation.UNKNOWN_URL: _openai(404, "Invalid URL ({method} {path})", _INVALID, None, None),
    Situation.RATE_LIMIT: ErrorSpec(
        status=429,
        fields=(
            (
                "message",
                "Rate limit reached for {model} in organization org-chatcontract on requests per "
                "min (RPM): Limit 500, Used 500, Requested 1. Please try again in 1s. Visit "
                "https://platform.openai.com/account/rate-limits to learn more.",
            ),
            ("type", "requests"),
            ("param", None),
            ("code", "rate_limit_exceeded"),
        ),
        headers=_OPENAI_RATE_LIMIT_HEADERS,
    ),
    Situation.QUOTA: _openai(
        429,
        "You exceeded your current quota, please check your plan and billing details. For more "
        "information on this error, read the docs: "
        "https://platform.openai.com/docs/guides/error-codes/api-errors.",
        "insufficient_quota",
        None,
        "insufficient_quota",
    ),
    Situation.SERVER_ERROR: _openai(
        500,
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
        None,
        None,
    ),
    Situation.UPSTREAM_UNAVAILABLE: _openai(
        503, "The server is overloaded or not ready yet.", "server_error", None, None
    ),
    Situation.GATEWAY_TIMEOUT: ErrorSpec(
        status=504, raw=_proxy_page(504, "Gateway Time-out"), content_type=_HTML
    ),
    Situation.CLOUDFLARE_524: ErrorSpec(
        status=524, raw=_cloudflare_524(_OPENAI_HOST), content_type=_HTML
    ),
    Situation.HTML_ERROR: ErrorSpec(
        status=502, raw=_proxy_page(502, "Bad Gateway"), content_type=_HTML
    ),
    Situation.ERROR_IN_200: _openai(
        200,
        "The server had an error while processing your request. Sorry about that!",
        "server_error",
        None,
        None,
    ),
    Situation.BAD_CONTROL: _COMETAPI_ERRORS[Situation.BAD_CONTROL],
    Situation.CONTEXT_LENGTH: _openai(
        400, _CONTEXT_MESSAGE, _INVALID, "messages", "context_length_exceeded"
    ),
    Situation.CONTENT_POLICY: _openai(
        400, _POLICY_MESSAGE, _INVALID, None, "content_policy_violation"
    ),
    Situation.PREFIX_REFUSED: _openai(400, _PREFIX_MESSAGE, _INVALID, "messages", None),
}


COMETAPI = Flavor(
    name="cometapi",
    errors=_COMETAPI_ERRORS,
    catalogue=COMETAPI_MODELS,
    request_id_header="X-Oneapi-Request-Id",
    new_request_id=new_api_request_id,
    html_for_unknown_paths=True,
    host=_COMET_HOST,
)

OPENAI = Flavor(
    name="openai",
    errors=_OPENAI_ERRORS,
    catalogue=OPENAI_MODELS,
    request_id_header="x-request-id",
    new_request_id=openai_request_id,
    html_for_unknown_paths=False,
    success_headers=(
        ("openai-version", "2020-10-01"),
        ("openai-processing-ms", "42"),
        ("x-ratelimit-limit-requests", "500"),
        ("x-ratelimit-remaining-requests", "499"),
        ("x-ratelimit-reset-requests", "120ms"),
        ("x-ratelimit-limit-tokens", "200000"),
        ("x-ratelimit-remaining-tokens", "199980"),
        ("x-ratelimit-reset-tokens", "6ms"),
    ),
    host=_OPENAI_HOST,
)

FLAVORS: Mapping[str, Flavor] = {flavor.name: flavor for flavor in (COMETAPI, OPENAI)}
FLAVOR_NAMES: tuple[str, ...] = tuple(FLAVORS)
