"""``contract diff``: field-level changes between two contracts, breaking ones flagged.

A change is breaking when code that relied on the old contract may fail under the new one:
the endpoint or auth moved, a request field became required, a consumed response path or
an accepted finish reason changed, or the retry sets changed.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = ["BREAKING_PREFIXES", "Change", "diff_documents"]

#: Dotted-path prefixes whose change is breaking.
BREAKING_PREFIXES: tuple[str, ...] = (
    "endpoint.",
    "auth.",
    "request.required",
    "response.required_paths",
    "response.finish_reasons",
    "errors.retryable",
    "errors.non_retryable",
    "errors.rules",
)

_Scalar = str | int | float | bool | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    """One field-level difference."""

    path: str
    change: Literal["added", "removed", "changed"]
    old: Any = None
    new: Any = None
    breaking: bool = False

    def describe(self) -> str:
        """One human line: ``! endpoint.base_url: 'a' -> 'b'`` (``!`` marks breaking)."""
        mark = "!" if self.breaking else " "
        if self.change == "added":
            return f"{mark} + {self.path}: {self.new!r}"
        if self.change == "removed":
            return f"{mark} - {self.path}: {self.old!r}"
        return f"{mark} ~ {self.path}: {self.old!r} -> {self.new!r}"


def _is_breaking(path: str) -> bool:
    return any(path == p.rstrip(".") or path.startswith(p) for p in BREAKING_PREFIXES)


def _keyed(items: list[Any]) -> dict[str, Any] | None:
    """Lists of named mappings (rules, fallbacks) compare by name, not by position."""
    if items and all(isinstance(i, Mapping) and "name" in i for i in items):
        return {str(i["name"]): i for i in items}
    return None


def _walk(old: Any, new: Any, path: str) -> Iterator[Change]:
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for key in list(old) + [k for k in new if k not in old]:
            sub = f"{path}.{key}" if path else str(key)
            if key not in new:
                yield Change(path=sub, change="removed", old=old[key], breaking=_is_breaking(sub))
            elif key not in old:
                yield Change(path=sub, change="added", new=new[key], breaking=_is_breaking(sub))
            else:
                yield from _walk(old[key], new[key], sub)
        return
    if isinstance(old, list) and isinstance(new, list):
        old_keyed, new_keyed = _keyed(old), _keyed(new)
        if old_keyed is not None and new_keyed is not None:
            yield from _walk(old_keyed, new_keyed, path)
            if list(old_keyed) != list(new_keyed) and set(old_keyed) == set(new_keyed):
                yield Change(
                    path=f"{path} (order)",
                    change="changed",
                    old=list(old_keyed),
                    new=list(new_keyed),
                    breaking=_is_breaking(path),
                )
            return
        if all(not isinstance(i, Mapping | list) for i in old + new):
            for item in old:
                if item not in new:
                    yield Change(path=path, change="removed", old=item, breaking=_is_breaking(path))
            for item in new:
                if item not in old:
                    yield Change(path=path, change="added", new=item, breaking=_is_breaking(path))
            return
    if old != new:
        yield Change(path=path, change="changed", old=old, new=new, breaking=_is_breaking(path))


def diff_documents(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[Change]:
    """Every difference between two contract documents, in file order."""
    return list(_walk(old, new, ""))
