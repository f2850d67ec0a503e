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
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from operator import itemgetter
from typing import Any

import orjson

from chatcontract.wire._json import loads

__all__ = [
    "Fingerprint",
    "fingerprint_bytes",
    "shape_fingerprint",
    "shape_key",
    "shape_paths",
    "union_of_shape_paths",
]

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


# Child paths repeat across documents of one API (``choices[].message.content``), so they are
# memoised; the memo is bounded so hostile key sets cannot grow it without limit.
_CHILD_MEMO: dict[tuple[str, object], str] = {}
_CHILD_MEMO_LIMIT = 4096
_SUFFIX = {kind: f":{name}" for kind, name in _TYPES.items()}


def _child(prefix: str, name: object) -> str:
    memo_key = (prefix, name)
    path = _CHILD_MEMO.get(memo_key)
    if path is None:
        path = _key(prefix, name)
        if len(_CHILD_MEMO) < _CHILD_MEMO_LIMIT:
            _CHILD_MEMO[memo_key] = path
    return path


class _Full(Exception):  # noqa: N818 - internal signal, never escapes this module
    """More than MAX_PATHS entries: stop walking."""


def _walk(node: Any, prefix: str, depth: int, found: set[str]) -> None:
    if depth >= MAX_DEPTH:
        return
    if type(node) is dict:
        for name, value in node.items():
            _visit(_child(prefix, name), value, depth, found)
    else:  # a list or tuple: every element shares the collapsed path
        element = prefix + "[]"
        for value in node:
            _visit(element, value, depth, found)


def _visit(path: str, value: Any, depth: int, found: set[str]) -> None:
    value_kind = type(value)
    found.add(path + _SUFFIX.get(value_kind, ":unknown"))
    if len(found) > MAX_PATHS:
        raise _Full
    if value_kind is dict or value_kind is list or value_kind is tuple:
        _walk(value, path, depth + 1, found)


def shape_paths(doc: Any) -> tuple[str, ...]:
    """The sorted ``path:type`` entries of a decoded JSON document (``$`` is the root).

    Bounded: nodes below :data:`MAX_DEPTH` are not descended into, and at most
    :data:`MAX_PATHS` distinct entries are kept.
    """
    found = {f"$:{_json_type(doc)}"}
    try:
        if type(doc) in (dict, list, tuple):
            _walk(doc, "", 0, found)
    except _Full:
        kept = set(_sorted(found)[:MAX_PATHS])
        kept.add(_TRUNCATED)
        return _sorted(kept)
    return _sorted(found)


def _sorted(entries: set[str]) -> tuple[str, ...]:
    """Sort by path, then type, so a parent comes right before its children.

    Sorting on the entry with ``:`` mapped below every printable character orders
    ``choices:array`` before ``choices[]:object`` and ``choices.x:string``, like sorting on
    ``(path, type)`` pairs, at a fraction of the cost.
    """
    return tuple(sorted(entries, key=_sort_key))


def _sort_key(entry: str) -> str:
    return entry.replace(":", "\x00")


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


def shape_key(text: str) -> tuple[tuple[str, ...], Any] | None:
    """What the shape of ``text`` depends on, if it is JSON: the pieces of ``text`` outside
    its strings, and its keys in order; None when ``text`` holds an escaped quote, raw white
    space other than a space, or a quote followed by a space and a colon or by two spaces
    (it is then read the general way: never a wrong key, at times none).

    Two JSON texts with the same key have the same shape (the same structure, keys and value
    types); texts differing only in the contents of their string values share a key (a
    stream's content chunks). Of a text that is no JSON, some value; never raises. C passes
    only (``in``, ``split``, slices, one lookup) once a structure was seen.

        >>> shape_key('{"id":"chatcmpl-1","n":2,"tags":["a"]}')
        (('{', ':', ',', ':2,', ':[', ']}'), ('id', 'n', 'tags'))
    """
    # No key for a text holding an escaped quote (a quote that is no string's edge), a raw
    # tab, line feed or carriage return (white space outside a string: JSON strings hold
    # none), or a quote followed by a space and a colon or by two spaces (what may then be
    # between a key and its colon: spaces only).
    if (
        '\\"' in text
        or "\n" in text
        or "\r" in text
        or "\t" in text
        or '" :' in text
        or '"  ' in text
    ):
        return None
    # Without an escaped quote, every quote of a JSON text is a string's edge: the pieces
    # alternate, outside (even) and inside a string (odd); a key's colon follows it at once.
    pieces = text.split('"')
    outside = tuple(pieces[0::2])
    keys = _KEYS_OF.get(outside)
    if keys is None:
        keys = _keys_of(outside)
        if len(_KEYS_OF) < _KEYS_OF_LIMIT and len(text) <= _KEYS_OF_TEXT:
            _KEYS_OF[outside] = keys
    return outside, keys(pieces)


#: What picks a text's keys out of its pieces, by the pieces outside its strings (structures
#: repeat across the documents of one API); bounded as :data:`_CHILD_MEMO` is, and only for
#: texts of at most :data:`_KEYS_OF_TEXT` characters (a stream chunk is a few hundred), so the
#: memo holds at most about 4 MiB of pieces whatever the texts.
_KEYS_OF: dict[tuple[str, ...], Callable[[list[str]], Any]] = {}
_KEYS_OF_LIMIT = 1024
_KEYS_OF_TEXT = 4096


def _keys_of(outside: tuple[str, ...]) -> Callable[[list[str]], Any]:
    """The pieces at the keys' places: the string before each outside piece opening with a
    colon (a tuple; one key alone, or none, as their own values: the same for one
    structure)."""
    places = [2 * at - 1 for at in range(1, len(outside)) if outside[at][:1] == ":"]
    return itemgetter(*places) if places else _no_keys


def _no_keys(pieces: list[str]) -> tuple[()]:
    return ()


def union_of_shape_paths(texts: Iterable[str]) -> set[str]:
    """The union of the :func:`shape_paths` of each of ``texts`` that is JSON (the others add
    nothing), each shape walked once: a text whose :func:`shape_key` is that of a JSON text
    already taken has that text's shape (a stream's content chunks differ only in their
    strings), and is neither decoded nor walked. Never raises on a text that is not JSON."""
    paths: set[str] = set()
    taken: set[tuple[tuple[str, ...], Any]] = set()
    for text in texts:
        key = shape_key(text)
        if key is not None and key in taken:
            continue
        try:
            doc = orjson.loads(text)
        except orjson.JSONDecodeError:
            continue  # not taken: a JSON text with the same key still counts
        if key is not None:
            taken.add(key)
        paths.update(shape_paths(doc))
    return paths
