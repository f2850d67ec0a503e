"""Required response paths: each path the contract says the application reads must be there.

``check_required`` follows every ``response.required_paths`` entry into a decoded body and
reports the first step that is absent (``$.usage: expected object, got missing``), a parent of
the wrong type, an index past the end of an array, or a ``null`` where a value is needed. A
``null`` content is accepted for tool calls, a refusal or a content filter.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from chatcontract.wire.known_types import KNOWN_TYPES, strict_label
from chatcontract.wire.paths import Step, json_path, parse_path, path_pattern
from chatcontract.wire.violation import Violation, ViolationKind, describe

__all__ = ["check_required", "compile_required"]


@dataclass(frozen=True, slots=True)
class _Required:
    steps: tuple[Step, ...]
    pattern: str
    expected: str
    null_ok: bool


_CONTENT_PATTERN = "choices[].message.content"


@lru_cache(maxsize=64)
def compile_required(paths: tuple[str, ...]) -> tuple[_Required, ...]:
    compiled = []
    for path in paths:
        steps = parse_path(path)
        pattern = path_pattern(steps)
        kind = KNOWN_TYPES.get(pattern)
        expected = strict_label(kind) if kind else "a value"
        compiled.append(_Required(steps, pattern, expected, kind.null_ok if kind else False))
    return tuple(compiled)


def check_required(
    doc: dict[str, Any], required: tuple[_Required, ...], out: list[Violation]
) -> None:
    """Report each required path that is absent (at the first absent step) or ``null``."""
    for rule in required:
        current: Any = doc
        for depth, step in enumerate(rule.steps):
            if type(step) is int:
                found = type(current) is list and step < len(current)
            else:
                found = type(current) is dict and step in current
            if not found:
                _report_absent(rule, depth, current, out)
                break
            current = current[step]
        else:
            if current is None and not rule.null_ok and not _null_allowed(rule, doc):
                _report(out, json_path(rule.steps), ViolationKind.NULL, rule.expected, "null")


def _report_absent(rule: _Required, depth: int, container: Any, out: list[Violation]) -> None:
    """Report a required path that stops at ``rule.steps[depth]`` (absent in ``container``)."""
    step = rule.steps[depth]
    parent = rule.steps[:depth]
    wants_array = type(step) is int
    if wants_array and type(container) is list:
        # an index past the end: report at the array (``$.choices: … got empty array``)
        known = KNOWN_TYPES.get(path_pattern(parent))
        expected = known.label if known else f"at least {int(step) + 1} items"
        got = f"{len(container)} items" if container else "empty array"
        _report(out, json_path(parent), ViolationKind.EMPTY, expected, got)
        return
    if type(container) is not (list if wants_array else dict):
        # the parent exists with the wrong type (``"usage": null``, ``"choices": "x"``)
        known = KNOWN_TYPES.get(path_pattern(parent))
        expected = strict_label(known) if known else ("array" if wants_array else "object")
        _report(out, json_path(parent), ViolationKind.TYPE, expected, describe(container))
        return
    steps = rule.steps[: depth + 1]
    if depth == len(rule.steps) - 1:
        expected = rule.expected
    else:
        known = KNOWN_TYPES.get(path_pattern(steps))
        expected = strict_label(known) if known else _container_label(rule.steps[depth + 1])
    _report(out, json_path(steps), ViolationKind.MISSING, expected, "missing")


def _container_label(next_step: Step) -> str:
    return "array" if type(next_step) is int else "object"


def _report(out: list[Violation], path: str, kind: ViolationKind, expected: str, got: str) -> None:
    """Append unless a violation at this path or one of its parents is already reported."""
    for seen in out:
        if path == seen.path or path.startswith((seen.path + ".", seen.path + "[")):
            return
    out.append(Violation(kind=kind, path=path, expected=expected, got=got))


def _null_allowed(rule: _Required, doc: dict[str, Any]) -> bool:
    """A ``null`` content is a valid answer for tool calls, a refusal or a content filter."""
    if rule.pattern != _CONTENT_PATTERN:
        return False
    choice = doc["choices"][rule.steps[1]]
    message = choice["message"]
    return (
        bool(message.get("tool_calls"))
        or bool(message.get("refusal"))
        or choice.get("finish_reason") == "content_filter"
    )
