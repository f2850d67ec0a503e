"""The one boundary where JSON decode errors are caught.

Everything in ``chatcontract.wire`` decodes through :func:`loads`; nothing else imports
``orjson`` for decoding, so a decode failure is turned into data (a byte offset) in exactly
one place instead of escaping as ``orjson.JSONDecodeError``.
"""

from __future__ import annotations

import math
import re
from typing import Any

import orjson

__all__ = ["OUT_OF_RANGE_EXPECTED", "loads", "loads_object", "out_of_range"]


def loads(data: bytes | str) -> tuple[Any, int | None]:
    """Decode ``data`` as JSON.

    Returns ``(value, None)`` on success and ``(None, offset)`` on failure, where ``offset``
    is the byte offset (for ``bytes``) or character offset (for ``str``) where decoding failed.
    Never raises for bad input.
    """
    try:
        return orjson.loads(data), None
    except orjson.JSONDecodeError as exc:
        return None, _offset(data, exc.pos)


def _offset(data: bytes | str, char_pos: int) -> int:
    """Map orjson's character position back to a byte offset for ``bytes`` input."""
    if isinstance(data, str):
        return char_pos
    text = data.decode("utf-8", "surrogateescape")
    return len(text[:char_pos].encode("utf-8", "surrogateescape"))


def loads_object(data: bytes) -> dict[str, Any] | None:
    """``data`` decoded as a JSON object, or None when it is not one (invalid JSON, bytes that
    are not UTF-8, another JSON type). The hot path of streams: no offset is worked out, the
    caller falls back to :func:`loads` for the details. Never raises for bad input."""
    try:
        value = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    return value if type(value) is dict else None


# A JSON number, and the tokens that give a position in a document its path: a whole string
# (escapes included) or one structural character. Bytes and text alike.
_NUMBER = re.compile(rb"-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?")
_NUMBER_TEXT = re.compile(_NUMBER.pattern.decode())
_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[{}\[\],:]')
_TOKENS_TEXT = re.compile(_TOKENS.pattern.decode())
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

#: What a violation naming such a number says was expected.
OUT_OF_RANGE_EXPECTED = "a number within the range of a double (I-JSON, RFC 7493)"

#: How far into a document the path of a number is worked out (a completion's numbers come
#: well before); past it, the number is named without its path.
PATH_SCAN_LIMIT = 1 << 20


def out_of_range(data: bytes | str, error_at: int) -> tuple[str, int] | None:
    """When :func:`loads` failed at ``error_at`` on a number beyond the range of a double
    (valid JSON that orjson refuses, and RFC 7493's I-JSON excludes: a 10,000-digit
    ``prompt_tokens``), its path from the document's root (``.usage.prompt_tokens``, ``""``
    at the root or past ``PATH_SCAN_LIMIT``) and its length in characters; None for any
    other failure. Linear in ``error_at``; never raises."""
    pattern = _NUMBER if isinstance(data, bytes) else _NUMBER_TEXT
    number = pattern.match(data, error_at)  # type: ignore[arg-type]
    if number is None:
        return None
    token = number.group()
    if not math.isinf(float(token)):  # a float literal: float() reads any, in linear time
        return None
    return _path_at(data, error_at), len(token)


def _path_at(data: bytes | str, position: int) -> str:
    """The path of the value starting at ``position`` in a JSON document that is valid up to
    there: one pass over its strings and structural characters."""
    if position > PATH_SCAN_LIMIT:
        return ""
    tokens = _TOKENS if isinstance(data, bytes) else _TOKENS_TEXT
    # One step per open container: its key (None before the first) or its index.
    frames: list[str | int | None] = []
    last: bytes | str = '""'
    for match in tokens.finditer(data, endpos=position):  # type: ignore[arg-type]
        token = match.group()
        mark = token[:1]
        if mark in (b'"', '"'):
            last = token  # a key when a colon follows
        elif mark in (b"{", "{"):
            frames.append(None)
        elif mark in (b"[", "["):
            frames.append(0)
        elif mark in (b"}", "}", b"]", "]"):
            if frames:
                frames.pop()
        elif mark in (b":", ":"):
            if frames:
                frames[-1] = _key_text(last)
        elif frames and isinstance(frames[-1], int):  # a comma in an array
            frames[-1] += 1
    parts = []
    for step in frames:
        if isinstance(step, int):
            parts.append(f"[{step}]")
        elif step is not None:
            parts.append(
                f".{step}" if _NAME.fullmatch(step) else f"[{orjson.dumps(step).decode()}]"
            )
    return "".join(parts)


def _key_text(token: bytes | str) -> str:
    """A key's text: decoded, or as written between its quotes when it does not decode (a
    string before an arbitrary ``error_at`` may be broken: ``out_of_range`` never raises)."""
    try:
        key: str = orjson.loads(token)
    except orjson.JSONDecodeError:
        raw = token if isinstance(token, str) else token.decode("utf-8", "replace")
        return raw[1:-1]
    return key
