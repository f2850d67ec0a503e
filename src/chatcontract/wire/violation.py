"""What a wire parser reports instead of raising: a ``Violation`` at a JSON path.

A violation names *where* (``$.choices[0].message.content``), *what the contract expected*
(``string``) and *what arrived*, described by type or a short scalar (``42``, ``null``,
``missing``, ``empty array``), never by copying text that could be model output or a prompt::

    >>> str(Violation(kind=ViolationKind.TYPE, path="$.choices[0].message.content",
    ...               expected="string", got="42"))
    '$.choices[0].message.content: expected string, got 42'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

__all__ = ["MISSING", "Violation", "ViolationKind", "describe"]


class _Missing:
    """Sentinel for "the key is absent", distinct from a JSON ``null``."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "MISSING"


#: Marks an absent key (as opposed to ``None``, a JSON ``null``).
MISSING = _Missing()


class ViolationKind(StrEnum):
    """Why a document broke the contract; stable strings usable as metric labels."""

    EMPTY_BODY = "empty_body"
    INVALID_JSON = "invalid_json"
    NOT_OBJECT = "not_object"
    ERROR_ENVELOPE = "error_envelope"
    MISSING = "missing"
    NULL = "null"
    TYPE = "type"
    EMPTY = "empty"
    NOT_SSE = "not_sse"
    CUT_CHUNK = "cut_chunk"
    AFTER_DONE = "after_done"
    MISSING_USAGE = "missing_usage"
    INVALID_FIELD = "invalid_field"  # an SSE field with an absurd value (a huge ``retry:``)


@dataclass(frozen=True, slots=True, kw_only=True)
class Violation:
    """One place where a document or stream breaks the contract.

    ``path`` is a JSON path (``$`` is the document, ``$[chunk 3]`` the fourth stream chunk),
    ``expected`` what the contract wants there, ``got`` a short description of what arrived.
    """

    kind: ViolationKind
    path: str
    expected: str
    got: str

    def __str__(self) -> str:
        return f"{self.path}: expected {self.expected}, got {self.got}"


_SCALAR_LIMIT = 24


def describe(value: object) -> str:
    """Describe ``value`` briefly for a violation, never echoing strings or containers.

    Numbers and literals are shown (``42``, ``-1``, ``true``, ``null``); strings, arrays and
    objects by their JSON type only, because they may hold model output or a prompt.
    """
    if value is MISSING:
        return "missing"
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int | float):
        text = repr(value)
        return text if len(text) <= _SCALAR_LIMIT else text[: _SCALAR_LIMIT - 1] + "…"
    return _TYPE_NAMES.get(type(value), _describe_other)(value)


def _describe_str(value: object) -> str:
    return "empty string" if value == "" else "string"


def _describe_list(value: object) -> str:
    return "empty array" if value == [] else "array"


def _describe_dict(value: object) -> str:
    return "empty object" if value == {} else "object"


def _describe_other(value: object) -> str:
    return type(value).__name__


_TYPE_NAMES: dict[type, Callable[[object], str]] = {
    str: _describe_str,
    list: _describe_list,
    dict: _describe_dict,
}
