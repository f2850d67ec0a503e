"""Tool calls arrive in stream deltas: merge them by ``index`` into whole calls.

The first delta of a call usually carries ``id``, ``type`` and ``function.name``; later ones
carry pieces of ``function.arguments``. Some providers omit ``index`` (the position in the
delta's list is used) or repeat ``id``/``name`` on every delta (the first value is kept,
never concatenated).
"""

from __future__ import annotations

from typing import Any

from chatcontract.wire.completion import ToolCall
from chatcontract.wire.violation import Violation, ViolationKind, describe

__all__ = ["ToolDraft", "ToolFields", "tool_call_fields"]


class ToolDraft:
    """A tool call being assembled: the first id/type/name win, arguments concatenate."""

    __slots__ = ("arguments", "id", "name", "type")

    def __init__(self) -> None:
        self.id: str | None = None
        self.type: str | None = None
        self.name: str | None = None
        self.arguments: list[str] = []

    def merge(
        self, call_id: str | None, call_type: str | None, name: str | None, arguments: str | None
    ) -> None:
        # Some providers repeat id/type/name on every delta: keep the first, never concatenate.
        self.id = self.id or call_id
        self.type = self.type or call_type
        self.name = self.name or name
        if arguments:
            self.arguments.append(arguments)

    def build(self, index: int) -> ToolCall:
        return ToolCall(
            index=index,
            id=self.id,
            type=self.type,
            name=self.name,
            arguments="".join(self.arguments),
        )


ToolFields = tuple[int | None, str | None, str | None, str | None, str | None]


def tool_call_fields(call: dict[str, Any], at: str) -> ToolFields | Violation:
    """``(index, id, type, name, arguments)`` of a tool-call delta, or its first violation."""
    index = call.get("index")
    if index is not None and type(index) is not int:
        return _type_violation(f"{at}.index", "integer", index)
    values: list[str | None] = []
    function = call.get("function")
    if function is not None and type(function) is not dict:
        return _type_violation(f"{at}.function", "object", function)
    source: dict[str, Any] = function or {}
    for owner, name, where in (
        (call, "id", at),
        (call, "type", at),
        (source, "name", f"{at}.function"),
        (source, "arguments", f"{at}.function"),
    ):
        value = owner.get(name)
        if value is not None and type(value) is not str:
            return _type_violation(f"{where}.{name}", "string", value)
        values.append(value)
    return (index, values[0], values[1], values[2], values[3])


def _type_violation(path: str, expected: str, value: object) -> Violation:
    return Violation(kind=ViolationKind.TYPE, path=path, expected=expected, got=describe(value))
