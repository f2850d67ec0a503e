"""``contract schema``: the JSON Schema (draft 2020-12) of the contract file, for editors.

msgspec writes it from the declaration in ``model`` (types, bounds, descriptions, enums);
this module inlines the one-use definitions so each property carries its own help, closes
every object (the loader refuses unknown keys) and writes the shorthands the loader accepts.
"""

from __future__ import annotations

from typing import Any

import msgspec

from chatcontract._version import __version__

from ._declare import declared_fields
from .model import Contract

__all__ = ["SCHEMA_ID", "json_schema"]

#: Where the schema of this contract format lives (one URI per format version).
SCHEMA_ID = "https://chatcontract.dev/schema/contract-v1.json"


def _resolve(node: Any, defs: dict[str, Any]) -> Any:
    """``node`` with every ``$ref`` replaced by its definition (the contract has no cycles)."""
    if isinstance(node, list):
        return [_resolve(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[1]]
        rest = {key: value for key, value in node.items() if key != "$ref"}
        return _resolve({**target, **rest}, defs)
    return {key: _resolve(value, defs) for key, value in node.items()}


def _object(schema: dict[str, Any]) -> dict[str, Any] | None:
    """The object schema inside ``schema`` (itself, an array's items, a map's values)."""
    if schema.get("type") == "object" and "properties" in schema:
        return schema
    for key in ("items", "additionalProperties"):
        inner = schema.get(key)
        if isinstance(inner, dict):
            return _object(inner)
    for option in schema.get("anyOf", ()):
        found = _object(option)
        if found is not None:
            return found
    return None


def _close(schema: dict[str, Any], cls: type) -> None:
    """Refuse unknown keys, drop msgspec's class title, write shorthands, recurse."""
    schema["additionalProperties"] = False
    schema.pop("title", None)
    if "description" in schema:  # a class docstring: reST literals read as Markdown ones
        schema["description"] = schema["description"].replace("``", "`")
    properties = schema["properties"]
    for spec in declared_fields(cls):
        prop = properties[spec.name]
        node = spec.node
        if node.one_or_many and node.item is not None:
            options = prop.pop("anyOf")
            array = next(o for o in options if o.get("type") == "array")
            options.insert(1, dict(array["items"]))
            prop["anyOf"] = options
        target = node.cls or (node.item.cls if node.item is not None else None)
        if target is not None:
            inner = _object(prop)
            if inner is not None:
                _close(inner, target)


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a contract file, every property described."""
    generated = msgspec.json.schema(Contract)
    root: dict[str, Any] = _resolve(generated, generated.get("$defs", {}))
    root.pop("$defs", None)
    _close(root, Contract)
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "chatcontract contract file",
        "description": f"A chatcontract contract (format version 1; chatcontract {__version__}). "
        + (Contract.__doc__ or "").split("\n")[0],
        **root,
    }
