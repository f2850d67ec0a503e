"""Shape fingerprints: the structure of a JSON document without its values.

A document's shape is the sorted set of its key paths with their JSON types, arrays
collapsed to ``[]`` (``choices[].message.content:string``). Two responses that differ only
in values share a fingerprint; an added or missing field, or a changed type, changes it.
The digest is the first 16 hex digits of the SHA-256 of the joined paths, so it is stable
across runs and machines. Drift detection compares fingerprints against a baseline.

    >>> shape_paths({"id": "x", "choices": [{"message": {"content": "hi"}}]})
    ('$:object', 'choices:array', 'choices[]:object', 'choices[].message:object',
     'choices[].message.content:string', 'id:string')
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Any

import orjson

from chatcontract.wire._json import loads

__all__ = ["Fingerprint", "fingerprint_bytes", "shape_fingerprint", "shape_paths"]

#: Deeper nodes are recorded with their type but not descended into.
MAX_DEPTH = 32
#: A document with more distinct paths than this is cut, with a ``…:truncated`` entry.
MAX_PATHS = 5_000
_DIGEST_HEX = 16
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_\-]*$")
_TRUNCATED = "…:truncated"


@dataclass(frozen=True, slots=True, kw_only=True)
class Fingerprint:
    """A document's shape: ``digest`` (16 hex digits) and the sorted ``paths`` it hashes."""

    digest: str
    paths: tuple[str, ...]

    def __str__(self) -> str:
        return self.digest

    def diff(self, other: Fingerprint) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """``(added, removed)``: paths in ``other`` and not here, and the reverse."""
        mine, theirs = set(self.paths), set(other.paths)
        return tuple(sorted(theirs - mine)), tuple(sorted(mine - theirs))


def _json_type(value: object) -> str:
    return _TYPES.get(type(value), "unknown")


_TYPES: dict[type, str] = {
    dict: "object",
    list: "array",
    tuple: "array",
    str: "string",
    int: "number",  # JSON has one number type: 1 and 1.5 differ in value, not in shape
    float: "number",
    bool: "boolean",
    type(None): "null",
}


def _key(prefix: str, name: object) -> str:
    text = str(name)
    if not _IDENTIFIER.match(text):
        return f"{prefix}[{orjson.dumps(text).decode()}]"
    return f"{prefix}.{text}" if prefix else text


def shape_paths(doc: Any) -> tuple[str, ...]:
    """The sorted ``path:type`` entries of a decoded JSON document (``$`` is the root).

    Bounded: nodes below :data:`MAX_DEPTH` are not descended into, and at most
    :data:`MAX_PATHS` distinct entries are kept.
    """
    found = {f"$:{_json_type(doc)}"}
    stack: list[tuple[str, Any, int]] = [("", doc, 0)]
    while stack:
        prefix, node, depth = stack.pop()
        if depth >= MAX_DEPTH:
            continue
        if type(node) is dict:
            children = [(_key(prefix, name), value) for name, value in node.items()]
        elif type(node) is list or type(node) is tuple:
            children = [(f"{prefix}[]", value) for value in node]
        else:
            continue
        for path, value in children:
            entry = f"{path}:{_json_type(value)}"
            if entry not in found:
                if len(found) >= MAX_PATHS:
                    found.add(_TRUNCATED)
                    return _sorted(found)
                found.add(entry)
            if type(value) in (dict, list, tuple):
                stack.append((path, value, depth + 1))
    return _sorted(found)


def _sorted(entries: set[str]) -> tuple[str, ...]:
    """Sort by path, then type, so a parent comes right before its children."""
    return tuple(sorted(entries, key=lambda entry: entry.rpartition(":")[::2]))


def shape_fingerprint(doc: Any) -> Fingerprint:
    """The :class:`Fingerprint` of a decoded JSON document."""
    paths = shape_paths(doc)
    digest = hashlib.sha256("\n".join(paths).encode()).hexdigest()[:_DIGEST_HEX]
    return Fingerprint(digest=digest, paths=paths)


def fingerprint_bytes(body: bytes) -> Fingerprint | None:
    """The fingerprint of a JSON body, or None when it is empty or not JSON."""
    doc, error_at = loads(body)
    if error_at is not None:
        return None
    return shape_fingerprint(doc)
