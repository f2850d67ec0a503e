"""Contract response paths (``choices[0].message.content``) as steps, JSON paths and lookups.

The contract names the fields the application reads with dotted paths and ``[n]`` indexes;
this module turns them into steps (``("choices", 0, "message", "content")``), renders the
JSON path used in violations (``$.choices[0].message.content``) and the collapsed pattern
used to look up a known type (``choices[].message.content``).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

__all__ = ["Step", "json_path", "parse_path", "path_pattern", "resolve"]

from chatcontract.wire.violation import MISSING

Step = str | int

_PATH_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\[\d+\])?(\.[A-Za-z_][A-Za-z0-9_]*(\[\d+\])?)*$")
_STEP_RE = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)|\[(\d+)\]")


@lru_cache(maxsize=512)
def parse_path(path: str) -> tuple[Step, ...]:
    """Split a contract path into steps: names (``str``) and indexes (``int``).

    Raises ``ValueError`` for a malformed path; contract paths are validated when the
    contract is built, so this only fires on a programming error.

        >>> parse_path("choices[0].message.content")
        ('choices', 0, 'message', 'content')
    """
    if not _PATH_RE.match(path):
        raise ValueError(f"{path!r} is not a response path such as choices[0].message.content")
    return tuple(name if name else int(index) for name, index in _STEP_RE.findall(path))


def json_path(steps: Iterable[Step], *, root: str = "$") -> str:
    """Render steps as a JSON path: ``$.choices[0].message.content``."""
    return root + "".join(f"[{step}]" if isinstance(step, int) else f".{step}" for step in steps)


def path_pattern(steps: Iterable[Step]) -> str:
    """Render steps with indexes collapsed: ``choices[].message.content``."""
    text = "".join("[]" if isinstance(step, int) else f".{step}" for step in steps)
    return text[1:] if text.startswith(".") else text


def resolve(doc: object, steps: Iterable[Step]) -> object:
    """Follow ``steps`` into a decoded JSON document; ``MISSING`` if any step is absent."""
    current = doc
    for step in steps:
        if isinstance(step, int):
            if type(current) is not list or step >= len(current):
                return MISSING
            current = current[step]
        else:
            if type(current) is not dict or step not in current:
                return MISSING
            current = current[step]
    return current
