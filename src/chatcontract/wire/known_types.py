"""The JSON type of every completion path the parser knows, as one table.

``KNOWN_TYPES`` maps a collapsed path (``choices[].message.content``) to the type it must
have when present. The parser reads it level by level (:func:`level`); the required-path
check uses it to word its violations (``expected string``, ``expected non-empty array``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["KNOWN_TYPES", "JsonType", "level", "strict_label"]

_NONE = type(None)


@dataclass(frozen=True, slots=True)
class JsonType:
    """An expected JSON type: its label in violations, the Python types that satisfy it
    (``None`` always passes the type walk; whether ``null`` is acceptable for a *required*
    path is ``null_ok``)."""

    label: str
    types: tuple[type, ...]
    null_ok: bool = False


_STRING = JsonType("string", (str, _NONE))
_STRING_OR_NULL = JsonType("string or null", (str, _NONE), null_ok=True)
_INTEGER = JsonType("integer", (int, _NONE))
_OBJECT = JsonType("object", (dict, _NONE))
_ARRAY_OR_NULL = JsonType("array or null", (list, _NONE), null_ok=True)
_OBJECT_OR_NULL = JsonType("object or null", (dict, _NONE), null_ok=True)
_COUNT = JsonType("non-negative integer", (int, _NONE))
_NON_EMPTY_ARRAY = JsonType("non-empty array", (list,))

#: Every path the completion parser knows, with the JSON type it must have when present. The
#: parser walks the containers (``choices``, ``message``, ``tool_calls``, ``usage`` and its
#: ``*_tokens`` counts) itself and reads the scalar rows level by level (see :func:`level`).
KNOWN_TYPES: Mapping[str, JsonType] = {
    "id": _STRING,
    "object": _STRING,
    "model": _STRING,
    "created": _INTEGER,
    "system_fingerprint": _STRING_OR_NULL,
    "choices": _NON_EMPTY_ARRAY,
    "choices[]": _OBJECT,
    "choices[].index": _INTEGER,
    "choices[].finish_reason": _STRING,
    "choices[].message": _OBJECT,
    "choices[].message.role": _STRING,
    "choices[].message.content": _STRING,
    "choices[].message.refusal": _STRING_OR_NULL,
    "choices[].message.reasoning_content": _STRING_OR_NULL,
    "choices[].message.tool_calls": _ARRAY_OR_NULL,
    "choices[].message.tool_calls[]": _OBJECT,
    "choices[].message.tool_calls[].id": _STRING,
    "choices[].message.tool_calls[].type": _STRING,
    "choices[].message.tool_calls[].function": _OBJECT,
    "choices[].message.tool_calls[].function.name": _STRING,
    "choices[].message.tool_calls[].function.arguments": _STRING,
    "usage": _OBJECT_OR_NULL,
    "usage.prompt_tokens": _COUNT,
    "usage.completion_tokens": _COUNT,
    "usage.total_tokens": _COUNT,
}


def level(prefix: str) -> tuple[tuple[str, JsonType], ...]:
    """The scalar rows of ``KNOWN_TYPES`` directly under ``prefix``, in table order.

    ``level("choices[].message")`` gives ``role``, ``content``, ``refusal``,
    ``reasoning_content``: the order callers unpack them in.
    """
    start = f"{prefix}." if prefix else ""
    return tuple(
        (pattern[len(start) :], kind)
        for pattern, kind in KNOWN_TYPES.items()
        if pattern.startswith(start)
        and "." not in pattern[len(start) :]
        and "[" not in pattern[len(start) :]
        and kind not in (_OBJECT, _OBJECT_OR_NULL, _ARRAY_OR_NULL, _NON_EMPTY_ARRAY, _COUNT)
    )


def strict_label(kind: JsonType) -> str:
    """The label of ``kind`` without ``or null``: a required value must not be null."""
    return kind.label.removesuffix(" or null")
