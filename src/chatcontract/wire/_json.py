"""The one boundary where JSON decode errors are caught.

Everything in ``chatcontract.wire`` decodes through :func:`loads`; nothing else imports
``orjson`` for decoding, so a decode failure is turned into data (a byte offset) in exactly
one place instead of escaping as ``orjson.JSONDecodeError``.
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["loads", "loads_object"]


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
