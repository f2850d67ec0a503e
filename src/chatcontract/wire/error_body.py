"""Error bodies as data: JSON envelopes in every shape providers use, and non-JSON bodies.

A failed call can answer with an OpenAI envelope, a new-api/CometAPI envelope (keys in any
order, ``code`` often ``""``, ``(request id: …)`` inside the message), an Anthropic envelope,
a bare ``{"message": …}``, HTML from a CDN or a wrong path, an empty body (new-api's rate
limiter), plain text, or JSON cut off mid-way. :func:`parse_error_body` turns any of them into
an :class:`ErrorBody` and never raises.

    >>> body = (b'{"error":{"code":"model_not_found","message":"no channel (request id: 2026X)",'
    ...         b'"type":"comet_api_error"}}')
    >>> err = parse_error_body(body)
    >>> err.shape, err.code, err.message, err.request_id
    (<ErrorShape.NEWAPI: 'newapi'>, 'model_not_found', 'no channel', '2026X')
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from typing import Any

from chatcontract.contract.model import ErrorTable
from chatcontract.redact import redact_text
from chatcontract.wire._json import loads

__all__ = [
    "DEFAULT_REQUEST_ID_PATTERN",
    "BodyKind",
    "ErrorBody",
    "ErrorShape",
    "error_from_document",
    "is_error_envelope",
    "parse_error_body",
]

#: The request-id pattern of new-api gateways (CometAPI): ``… (request id: <id>)``.
DEFAULT_REQUEST_ID_PATTERN: str = ErrorTable().request_id_pattern

_MESSAGE_LIMIT = 1000
_EXCERPT_LIMIT = 200
_TITLE_LIMIT = 120
_HTML_SCAN_LIMIT = 65_536


class BodyKind(StrEnum):
    """What kind of body arrived, before any meaning is attached to it."""

    JSON = "json"  # a JSON error envelope was found
    EMPTY = "empty"
    HTML = "html"
    TEXT = "text"
    INVALID_JSON = "invalid_json"  # looks like JSON (or says so) but does not parse
    JSON_OTHER = "json_other"  # valid JSON without a recognisable error


class ErrorShape(StrEnum):
    """Which error envelope a JSON body used."""

    OPENAI = "openai"  # {"error": {"message", "type", "param", "code"}}
    NEWAPI = "newapi"  # the same envelope with a gateway type (comet_api_error, upstream_error)
    ANTHROPIC = "anthropic"  # {"type": "error", "error": {"type", "message"}}
    BARE = "bare"  # {"message": ...} at the top, or {"error": "text"}


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorBody:
    """A parsed error body. Only the message text is kept, with credentials redacted.

    ``code`` and ``param`` keep the difference between ``""`` (sent empty) and ``None``
    (``null`` or absent); numeric values become their decimal text. ``message`` has the
    ``(request id: …)`` suffix removed (see ``request_id``). ``html_title`` and
    ``text_excerpt`` (about 200 characters, whitespace collapsed) describe non-JSON bodies.
    """

    body_kind: BodyKind
    shape: ErrorShape | None = None
    message: str | None = None
    type: str | None = None
    code: str | None = None
    param: str | None = None
    request_id: str | None = None
    html_title: str | None = None
    text_excerpt: str | None = None

    @property
    def is_envelope(self) -> bool:
        """True when a recognisable JSON error (any shape) was found."""
        return self.body_kind is BodyKind.JSON


def is_error_envelope(doc: object) -> bool:
    """True if a decoded JSON value is an ``{"error": …}`` envelope.

    The ``error`` member must be a non-empty object or a non-empty string; ``"error": null``
    (which some providers put in successful responses) is not an envelope. The Anthropic
    envelope (``{"type": "error", "error": {…}}``) counts; a bare ``{"message": …}`` does not.
    """
    if type(doc) is not dict:
        return False
    error = doc.get("error")
    return (type(error) is dict or type(error) is str) and bool(error)


def parse_error_body(
    body: bytes,
    *,
    content_type: str | None = None,
    request_id_pattern: str | None = None,
) -> ErrorBody:
    """Parse the body of a failed call (or an in-band error) into an :class:`ErrorBody`.

    Args:
        body: the raw response body.
        content_type: the ``Content-Type`` header, if known; ``html`` in it marks HTML.
        request_id_pattern: a regex with one group capturing the request id in the message;
            defaults to new-api's ``(request id: …)``.

    Never raises for any ``body``.
    """
    stripped = body.strip()
    if not stripped:
        return ErrorBody(body_kind=BodyKind.EMPTY)
    media = (content_type or "").lower()
    if "html" in media or _looks_like_html(stripped):
        return _html_body(stripped)
    if stripped[:1] in (b"{", b"[") or "json" in media:
        doc, error_at = loads(stripped)
        if error_at is not None:
            return _salvage(stripped, request_id_pattern)
        return error_from_document(doc, request_id_pattern=request_id_pattern)
    return ErrorBody(body_kind=BodyKind.TEXT, text_excerpt=_excerpt(_text(stripped)))


def error_from_document(doc: Any, *, request_id_pattern: str | None = None) -> ErrorBody:
    """Read an error out of an already decoded JSON value (a body or a stream event)."""
    if type(doc) is list and doc and is_error_envelope(doc[0]):
        doc = doc[0]  # Gemini-style: a list holding one envelope
    if type(doc) is not dict:
        return ErrorBody(body_kind=BodyKind.JSON_OTHER)
    error = doc.get("error")
    if type(error) is dict and error:
        shape = _envelope_shape(doc, error)
        return _from_fields(error, shape, request_id_pattern)
    if type(error) is str and error:
        return _from_fields({"message": error}, ErrorShape.BARE, request_id_pattern)
    for key in _BARE_MESSAGE_KEYS:
        if type(doc.get(key)) is str:
            fields = {**doc, "message": doc[key]}
            return _from_fields(fields, ErrorShape.BARE, request_id_pattern)
    return ErrorBody(body_kind=BodyKind.JSON_OTHER)


#: Top-level keys that hold the message of a bare error (``detail`` is FastAPI's default).
_BARE_MESSAGE_KEYS = ("message", "detail")

#: ``error.type`` values that mark a new-api gateway (CometAPI, one-api, new-api forks).
_NEWAPI_TYPE_SUFFIX = "_api_error"
_NEWAPI_TYPES = frozenset({"upstream_error"})


def _envelope_shape(doc: dict[str, Any], error: dict[str, Any]) -> ErrorShape:
    if doc.get("type") == "error":
        return ErrorShape.ANTHROPIC
    kind = error.get("type")
    if type(kind) is str and (kind.endswith(_NEWAPI_TYPE_SUFFIX) or kind in _NEWAPI_TYPES):
        return ErrorShape.NEWAPI
    return ErrorShape.OPENAI


def _from_fields(
    fields: dict[str, Any], shape: ErrorShape, request_id_pattern: str | None
) -> ErrorBody:
    raw = fields.get("message")
    message, request_id = _split_request_id(raw, request_id_pattern)
    return ErrorBody(
        body_kind=BodyKind.JSON,
        shape=shape,
        message=message,
        type=_as_text(fields.get("type")),
        code=_as_text(fields.get("code")),
        param=_as_text(fields.get("param")),
        request_id=request_id,
    )


def _as_text(value: object) -> str | None:
    """``""`` stays ``""``; ``null``/absent is None; numbers become their text."""
    if type(value) is str:
        return value
    if type(value) is bool:
        return "true" if value else "false"
    if type(value) is int or type(value) is float:
        return repr(value)
    return None


@lru_cache(maxsize=16)
def _compile(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _split_request_id(message: object, pattern: str | None) -> tuple[str | None, str | None]:
    """Return the message without its request-id suffix, and the id."""
    if type(message) is not str:
        return None, None
    regex = _compile(pattern or DEFAULT_REQUEST_ID_PATTERN)
    match = regex.search(message)
    request_id = match.group(1) if match else None
    if match:
        message = regex.sub("", message)
    return _redact(_clip(message.strip(), _MESSAGE_LIMIT)), request_id


def _redact(text: str) -> str:
    """A key that leaked into a message (``Incorrect API key provided: sk-…``) is masked."""
    return redact_text(text)


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


_WS_RE = re.compile(r"\s+")


def _excerpt(text: str) -> str:
    return _redact(_clip(_WS_RE.sub(" ", text).strip(), _EXCERPT_LIMIT))


def _text(body: bytes) -> str:
    return body[:_HTML_SCAN_LIMIT].decode("utf-8", "replace")


_HTML_PREFIXES = (b"<!doctype", b"<html")


def _looks_like_html(stripped: bytes) -> bool:
    return stripped[:9].lower().startswith(_HTML_PREFIXES)


# Every pattern below is linear: no ``.*?`` or ``[^>]*`` that could rescan to the end of a
# hostile body from each ``<`` (60 KB of ``<title>`` took seconds with the obvious regexes).
_TAG_RE = re.compile(r"<[^<>]*>")
_BLOCK_TAG_RE = re.compile(r"<(/?)(script|style|title)\b[^<>]*>", re.IGNORECASE)


def _html_body(stripped: bytes) -> ErrorBody:
    text = _text(stripped)
    title, visible = _split_html(text)
    heading = _clip(_excerpt(html.unescape(title)), _TITLE_LIMIT) if title else ""
    return ErrorBody(
        body_kind=BodyKind.HTML,
        html_title=heading or None,
        text_excerpt=_excerpt(html.unescape(_TAG_RE.sub(" ", visible))) or None,
    )


def _split_html(text: str) -> tuple[str | None, str]:
    """``(title, text outside <script>/<style>)`` in one pass over the block tags."""
    title: str | None = None
    kept: list[str] = []
    position = 0
    inside: str | None = None  # the block tag we are in
    opened = 0  # where its content starts
    for match in _BLOCK_TAG_RE.finditer(text):
        closing, name = match.group(1), match.group(2).lower()
        if inside is None and not closing:
            kept.append(text[position : match.start()])
            inside, opened = name, match.end()
        elif inside is not None and closing and name == inside:
            if name == "title":
                if title is None:
                    title = text[opened : match.start()]
                kept.append(text[opened : match.start()])
            inside, position = None, match.end()
    if inside is None:
        kept.append(text[position:])
    return title, " ".join(kept)


# Fields that can still be read out of a truncated JSON error body.
_SALVAGE_RE = {
    name: re.compile(rf'"{name}"\s*:\s*"((?:[^"\\]|\\.)*)"') for name in ("message", "type", "code")
}


def _salvage(stripped: bytes, request_id_pattern: str | None) -> ErrorBody:
    """A body that looks like JSON but does not parse: keep what can be read safely."""
    text = _text(stripped)
    found: dict[str, str] = {}
    for name, regex in _SALVAGE_RE.items():
        match = regex.search(text)
        if match:
            found[name] = _unescape(match.group(1))
    message, request_id = _split_request_id(found.get("message"), request_id_pattern)
    return ErrorBody(
        body_kind=BodyKind.INVALID_JSON,
        message=message,
        type=found.get("type"),
        code=found.get("code"),
        request_id=request_id,
        text_excerpt=_excerpt(text),
    )


def _unescape(fragment: str) -> str:
    value, error_at = loads(f'"{fragment}"')
    return value if error_at is None and type(value) is str else fragment
