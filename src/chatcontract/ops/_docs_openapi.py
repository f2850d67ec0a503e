"""The OpenAPI view: the contract-relevant part of one chat completions operation.

The request's required fields and field types, the success response's fields and types,
and the error statuses with the error codes and types they document. Local ``$ref`` are
resolved (cycles cut); a huge or hostile schema stops being walked, it is never exhausted.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["openapi_view"]

#: A view field budget: a huge or hostile schema stops being walked, it is never exhausted.
_MAX_FIELDS = 4_000
_MAX_DEPTH = 10
#: Schemas visited in all (every ``type_of``, ``flatten`` and ``values_at`` call): ``$ref``
#: (or YAML aliases) can share one schema between many ``allOf`` entries, level after level,
#: so a few kilobytes can describe 2**40 paths. The walk stops when this runs out.
_MAX_STEPS = 100_000


class _Walker:
    """Resolves local ``$ref`` and flattens schemas into dotted paths with their types."""

    def __init__(self, spec: Mapping[str, Any]) -> None:
        self.spec = spec
        self.budget = _MAX_FIELDS
        self.steps = _MAX_STEPS

    def _step(self, depth: int) -> bool:
        """Spend one step; False when the walk must stop here (no steps left, too deep)."""
        self.steps -= 1
        return self.steps >= 0 and depth <= _MAX_DEPTH * 4

    def resolve(self, node: Any, seen: frozenset[str] = frozenset()) -> tuple[Any, frozenset[str]]:
        """Follow ``$ref`` chains; a cycle or an unknown reference resolves to ``{}``."""
        hops = 0
        while isinstance(node, Mapping) and isinstance(node.get("$ref"), str) and hops < 32:
            ref = node["$ref"]
            if ref in seen or not ref.startswith("#/"):
                return {"x-unresolved": ref if not ref.startswith("#/") else "recursive"}, seen
            seen = seen | {ref}
            target: Any = self.spec
            for raw in ref[2:].split("/"):
                part = raw.replace("~1", "/").replace("~0", "~")
                target = target.get(part) if isinstance(target, Mapping) else None
            node = target if target is not None else {"x-unresolved": ref}
            hops += 1
        return node, seen

    def type_of(self, schema: Any, seen: frozenset[str], depth: int = 0) -> str:
        if not self._step(depth):
            return "any"
        schema, seen = self.resolve(schema, seen)
        if not isinstance(schema, Mapping):
            return "any"
        if "x-unresolved" in schema:
            return f"ref:{schema['x-unresolved']}"
        kinds: set[str] = set()
        declared = schema.get("type")
        if isinstance(declared, str):
            kinds.add(declared)
        elif isinstance(declared, list):
            kinds.update(str(kind) for kind in declared)
        for key in ("oneOf", "anyOf", "allOf"):
            for part in schema.get(key) or ():
                kinds.update(self.type_of(part, seen, depth + 1).split("|"))
        if not kinds:
            if "properties" in schema:
                kinds.add("object")
            elif "items" in schema:
                kinds.add("array")
            elif isinstance(schema.get("enum"), list):
                kinds.update(_json_type(value) for value in schema["enum"])
        if schema.get("nullable") is True:
            kinds.add("null")
        if len(kinds) > 1:
            kinds.discard("any")
        return "|".join(sorted(kinds)) or "any"

    def flatten(
        self,
        schema: Any,
        prefix: str,
        fields: dict[str, str],
        required: set[str],
        *,
        depth: int = 0,
        seen: frozenset[str] = frozenset(),
    ) -> None:
        if self.budget <= 0 or depth > _MAX_DEPTH or not self._step(depth):
            return
        schema, seen = self.resolve(schema, seen)
        if not isinstance(schema, Mapping):
            return
        if prefix:
            fields[prefix] = self.type_of(schema, seen)
            self.budget -= 1
        if "x-unresolved" in schema:
            return
        for key in ("allOf", "oneOf", "anyOf"):
            for part in schema.get(key) or ():
                self.flatten(part, prefix, fields, required, depth=depth + 1, seen=seen)
                if prefix:
                    fields[prefix] = self.type_of(schema, seen)
        names = schema.get("required")
        if isinstance(names, list):
            required.update(_join(prefix, str(name)) for name in names)
        properties = schema.get("properties")
        if isinstance(properties, Mapping):
            for name, sub in properties.items():
                self.flatten(
                    sub, _join(prefix, str(name)), fields, required, depth=depth + 1, seen=seen
                )
        if "items" in schema:
            self.flatten(
                schema["items"], f"{prefix}[]", fields, required, depth=depth + 1, seen=seen
            )

    def values_at(
        self, schema: Any, path: Sequence[str], seen: frozenset[str], depth: int = 0
    ) -> set[str]:
        """``enum``/``const`` values documented for the property at ``path``."""
        if not self._step(depth):
            return set()
        schema, seen = self.resolve(schema, seen)
        if not isinstance(schema, Mapping):
            return set()
        found: set[str] = set()
        for key in ("allOf", "oneOf", "anyOf"):
            for part in schema.get(key) or ():
                found |= self.values_at(part, path, seen, depth + 1)
        if not path:
            values = list(schema.get("enum") or ())
            if "const" in schema:
                values.append(schema["const"])
            return found | {str(value) for value in values if value is not None}
        properties = schema.get("properties")
        if isinstance(properties, Mapping) and path[0] in properties:
            found |= self.values_at(properties[path[0]], path[1:], seen, depth + 1)
        return found


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _find_operation(
    spec: Mapping[str, Any], *, path: str, method: str, base_url: str
) -> tuple[str, Mapping[str, Any]] | None:
    paths = spec.get("paths")
    if not isinstance(paths, Mapping):
        return None
    base_path = urllib.parse.urlsplit(base_url).path.rstrip("/")
    wanted = path.rstrip("/") or "/"
    candidates = [wanted, f"{base_path}{wanted}"]
    candidates += sorted(str(key) for key in paths if str(key).rstrip("/").endswith(wanted))
    for key in candidates:
        item = paths.get(key)
        if item is None:
            item = paths.get(key + "/")
        if isinstance(item, Mapping):
            operation = item.get(method.lower())
            if isinstance(operation, Mapping):
                return str(key), operation
    return None


def _json_schema(walker: _Walker, holder: Any) -> tuple[Any, Mapping[str, Any]]:
    """(schema, media object) of a request body or response's JSON content."""
    holder, _ = walker.resolve(holder)
    if not isinstance(holder, Mapping):
        return None, {}
    content = holder.get("content")
    if not isinstance(content, Mapping):
        schema = holder.get("schema")  # Swagger 2
        return schema, holder
    for media_type in sorted(content, key=lambda name: "json" not in str(name)):
        media = content[media_type]
        if isinstance(media, Mapping):
            return media.get("schema"), media
    return None, {}


def _example_values(walker: _Walker, media: Mapping[str, Any], key: str) -> set[str]:
    """``error.<key>`` values in a media object's examples (error codes are named there)."""
    samples: list[Any] = []
    if "example" in media:
        samples.append(media["example"])
    examples = media.get("examples")
    if isinstance(examples, Mapping):
        for example in examples.values():
            resolved, _ = walker.resolve(example)
            if isinstance(resolved, Mapping) and "value" in resolved:
                samples.append(resolved["value"])
    found = set()
    for sample in samples:
        error = sample.get("error") if isinstance(sample, Mapping) else None
        value = error.get(key) if isinstance(error, Mapping) else None
        if isinstance(value, str | int) and not isinstance(value, bool) and str(value):
            found.add(str(value))
    return found


def openapi_view(
    spec: Mapping[str, Any], *, path: str, method: str, base_url: str
) -> dict[str, Any]:
    """The contract-relevant view of one operation (``{"operation": None}`` when absent)."""
    found = _find_operation(spec, path=path, method=method, base_url=base_url)
    if found is None:
        return {"operation": None}
    key, operation = found
    walker = _Walker(spec)
    request_fields: dict[str, str] = {}
    request_required: set[str] = set()
    request_schema, _ = _json_schema(walker, operation.get("requestBody"))
    if request_schema is None:  # Swagger 2: an "in: body" parameter
        for parameter in operation.get("parameters") or ():
            resolved, _ = walker.resolve(parameter)
            if isinstance(resolved, Mapping) and resolved.get("in") == "body":
                request_schema = resolved.get("schema")
    walker.flatten(request_schema, "", request_fields, request_required)
    responses = operation.get("responses")
    responses = responses if isinstance(responses, Mapping) else {}
    success = sorted(str(status) for status in responses if str(status).startswith("2"))
    response_fields: dict[str, str] = {}
    response_required: set[str] = set()
    if success:
        schema, _ = _json_schema(walker, responses.get(success[0], responses.get(int(success[0]))))
        walker.flatten(schema, "", response_fields, response_required)
    errors: dict[str, dict[str, list[str]]] = {}
    for status, response in responses.items():
        name = str(status)
        if name.startswith("2"):
            continue
        schema, media = _json_schema(walker, response)
        codes = walker.values_at(schema, ("error", "code"), frozenset())
        codes |= _example_values(walker, media, "code")
        types = walker.values_at(schema, ("error", "type"), frozenset())
        types |= _example_values(walker, media, "type")
        errors[name.upper()] = {"codes": sorted(codes), "types": sorted(types)}
    return {
        "operation": f"{method.upper()} {key}",
        "request": {"required": sorted(request_required), "fields": request_fields},
        "response": {
            "status": success[0] if success else None,
            "required": sorted(response_required),
            "fields": response_fields,
        },
        "errors": dict(sorted(errors.items())),
    }
