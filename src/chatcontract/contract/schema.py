"""``contract schema``: the JSON Schema of the contract file, for editors.

Generated from the same key/type table the loader checks (``loader.SCHEMA``), so the two
cannot disagree.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from chatcontract._version import __version__

from ._regex import MAX_PATTERN_LENGTH
from .loader import SCHEMA
from .model import CATEGORIES, LIMITS, MAX_MODEL_LENGTH, MAX_URL_LENGTH

__all__ = ["json_schema"]

_JSON_TYPES: dict[Any, dict[str, Any]] = {
    str: {"type": "string"},
    int: {"type": "integer"},
    float: {"type": "number"},
    bool: {"type": "boolean"},
    list: {"type": "array", "items": {"type": ["string", "number", "integer", "boolean"]}},
    dict: {"type": "object"},
    type(None): {"type": "null"},
    dt.date: {"type": "string", "format": "date"},
}

# Closed vocabularies, checked by the loader too.
_ENUMS: dict[str, list[Any]] = {
    "environment": ["staging", "production"],
    "category": list(CATEGORIES),
    "body": ["any", "json", "empty", "html", "text"],
    "retryable": list(CATEGORIES),
    "non_retryable": list(CATEGORIES),
}


# The longest text some fields take (the model checks them too).
_MAX_LENGTHS: dict[str, int] = {
    "endpoint.base_url": MAX_URL_LENGTH,
    "fallbacks.base_url": MAX_URL_LENGTH,
    "model": MAX_MODEL_LENGTH,
    "fallbacks.model": MAX_MODEL_LENGTH,
    "errors.rules.message": MAX_PATTERN_LENGTH,
    "errors.request_id_pattern": MAX_PATTERN_LENGTH,
}
# Caps are "above 0" (null means no cap), the other bounds are inclusive.
_EXCLUSIVE_LOW = ("policy.caps.max_cost_per_call_usd", "policy.caps.max_cost_per_day_usd")


def _bounded(variant: dict[str, Any], path: str) -> dict[str, Any]:
    """``variant`` with the bounds ``LIMITS`` or ``_MAX_LENGTHS`` give ``path``."""
    kind = variant.get("type")
    if kind in ("integer", "number") and path in LIMITS:
        low, high = LIMITS[path]
        floor = "exclusiveMinimum" if path in _EXCLUSIVE_LOW else "minimum"
        return {**variant, floor: low, "maximum": high}
    if kind == "string" and path in _MAX_LENGTHS:
        return {**variant, "maxLength": _MAX_LENGTHS[path]}
    return variant


def _node(spec: Any, key: str, path: str = "") -> dict[str, Any]:
    if isinstance(spec, Mapping):
        wildcard = spec.get("*")
        node: dict[str, Any] = {"type": "object"}
        if wildcard is not None:
            node["additionalProperties"] = _node(wildcard, "*", path)  # prices.<model>.x
        else:
            node["properties"] = {
                name: _node(sub, name, f"{path}.{name}" if path else name)
                for name, sub in spec.items()
            }
            node["additionalProperties"] = False
        return node
    if isinstance(spec, list):
        return {"type": "array", "items": _node(spec[0], key, path)}
    kinds = spec if isinstance(spec, tuple) else (spec,)
    variants = [_bounded(_JSON_TYPES[kind], path) for kind in kinds]
    if key in _ENUMS:
        enum = _ENUMS[key]
        variants = [
            {"type": "array", "items": {"enum": enum}} if v["type"] == "array" else {"enum": enum}
            for v in variants
        ]
    if key == "status":
        variants = [
            {"type": "array", "items": {"type": "integer", "minimum": 100, "maximum": 599}}
            if v["type"] == "array"
            else v
            for v in variants
        ]
    return variants[0] if len(variants) == 1 else {"anyOf": variants}


def json_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of a contract file."""
    root = _node(SCHEMA, "")
    root.update(
        {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"https://chatcontract.dev/schema/contract-v1.json#{__version__}",
            "title": "chatcontract contract file",
            "required": ["name", "provider", "endpoint", "auth", "model"],
        }
    )
    return root
