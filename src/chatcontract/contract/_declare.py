"""Reading the contract's declaration: each field's type, bounds, description and own rules.

The value objects in ``model`` declare every field once, as
``Annotated[type, msgspec.Meta(bounds..., description=...), Check(rule)]``. msgspec builds
the objects and writes the JSON Schema from that declaration; this module reads the same
declaration to explain a bad value in words ("expected an integer from 1 to 10, got
'three'"), to list every problem of a document at once (``contract lint``), and to check an
object built directly in code (``__post_init__``). Nothing here names a contract field.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import functools
import math
import re
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from typing import Any, Literal

import msgspec

from chatcontract.errors import ConfigError

__all__ = [
    "SECRET_RE",
    "Check",
    "DeclaredField",
    "Node",
    "OneOrMany",
    "UnknownKeyError",
    "check_fields",
    "declared_fields",
    "document_problems",
    "expected_words",
    "node_of",
    "normalised",
    "number_bounds",
    "shown",
    "walk",
]

#: Values that look like a credential: never echoed back in a message.
SECRET_RE = re.compile(
    r"(\bsk-[A-Za-z0-9_-]{16,}|\bBearer\s+[A-Za-z0-9._~+/-]{16,}|"
    r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}|\bAKIA[0-9A-Z]{16}\b)"
)
_SHOWN_TEXT = 60


class Check:
    """A field's own rule beyond type and bounds: ``rule(where, value)`` raises ``ConfigError``.

    Used as ``Annotated[str, Meta(...), Check(check_base_url)]``; msgspec ignores it, this
    module runs it after the type and the bounds hold.
    """

    __slots__ = ("rule",)

    def __init__(self, rule: Callable[[str, Any], object]) -> None:
        self.rule = rule

    def __repr__(self) -> str:
        return f"Check({getattr(self.rule, '__name__', self.rule)!r})"


class OneOrMany:
    """Marks a list field that also accepts one item alone (``status: 429``)."""

    __slots__ = ()


Kind = Literal["int", "float", "str", "bool", "date", "literal", "list", "map", "object", "any"]


@dataclasses.dataclass(frozen=True, slots=True)
class Node:
    """One declared type, normalised: its kind, bounds, rules and nested types."""

    kind: Kind
    meta: msgspec.Meta | None = None
    checks: tuple[Check, ...] = ()
    nullable: bool = False
    one_or_many: bool = False
    item: Node | None = None  # list items, mapping values
    cls: type | None = None  # the dataclass of an "object"
    values: tuple[Any, ...] = ()  # a literal's values

    @property
    def description(self) -> str:
        return str(self.meta.description or "") if self.meta else ""


@dataclasses.dataclass(frozen=True, slots=True)
class DeclaredField:
    """One field of a value object as declared."""

    name: str
    node: Node
    required: bool
    default: Any


_META_FIELDS = (
    "gt",
    "ge",
    "lt",
    "le",
    "multiple_of",
    "pattern",
    "min_length",
    "max_length",
    "tz",
    "title",
    "description",
    "examples",
    "extra_json_schema",
    "extra",
)


def _merged(first: msgspec.Meta | None, second: msgspec.Meta | None) -> msgspec.Meta | None:
    """One ``Meta`` from two (``Annotated`` flattens nested ones); ``second`` wins a clash."""
    if first is None or second is None:
        return first or second
    given = {name: getattr(first, name) for name in _META_FIELDS}
    given.update({n: getattr(second, n) for n in _META_FIELDS if getattr(second, n) is not None})
    return msgspec.Meta(**{name: value for name, value in given.items() if value is not None})


_SCALARS: dict[Any, Kind] = {int: "int", float: "float", str: "str", bool: "bool", dt.date: "date"}


def node_of(annotation: Any) -> Node:
    """The ``Node`` for a resolved annotation (``Annotated``, ``X | None``, ``tuple[X, ...]``)."""
    meta: msgspec.Meta | None = None
    checks: list[Check] = []
    one_or_many = False
    if typing.get_origin(annotation) is typing.Annotated:
        annotation, *extras = typing.get_args(annotation)
        for extra in extras:
            if isinstance(extra, msgspec.Meta):
                meta = _merged(meta, extra)
            elif isinstance(extra, Check):
                checks.append(extra)
            elif isinstance(extra, OneOrMany):
                one_or_many = True
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    fields: dict[str, Any] = {"meta": meta, "checks": tuple(checks), "one_or_many": one_or_many}
    if origin in (types.UnionType, typing.Union):
        options = [arg for arg in args if arg is not type(None)]
        if len(options) != 1 or len(args) != 2:  # the declaration uses "X | None" only
            raise TypeError(f"unsupported union {annotation!r}")
        inner = node_of(options[0])
        return dataclasses.replace(
            inner,
            nullable=True,
            meta=_merged(inner.meta, meta),
            checks=tuple(checks) + inner.checks,
            one_or_many=one_or_many or inner.one_or_many,
        )
    if annotation in _SCALARS:
        return Node(kind=_SCALARS[annotation], **fields)
    if annotation is Any:
        return Node(kind="any", **fields)
    if origin is Literal:
        return Node(kind="literal", values=args, **fields)
    if origin in (tuple, list):
        return Node(kind="list", item=node_of(args[0]), **fields)
    if origin in (dict, Mapping, typing.Mapping):
        return Node(kind="map", item=node_of(args[1]), **fields)
    if dataclasses.is_dataclass(annotation) and isinstance(annotation, type):
        return Node(kind="object", cls=annotation, **fields)
    raise TypeError(f"unsupported declared type {annotation!r}")


@functools.cache
def declared_fields(cls: type) -> tuple[DeclaredField, ...]:
    """The declared fields of a value object, in declaration order."""
    hints = typing.get_type_hints(cls, include_extras=True)
    out = []
    for spec in dataclasses.fields(cls):
        no_default = spec.default is dataclasses.MISSING
        required = no_default and spec.default_factory is dataclasses.MISSING
        default = spec.default if not no_default else dataclasses.MISSING
        out.append(
            DeclaredField(
                name=spec.name, node=node_of(hints[spec.name]), required=required, default=default
            )
        )
    return tuple(out)


# ---------------------------------------------------------------------------------------------
# Words


def _number(value: float) -> str:
    """A number as a person writes it: 10, 0.5, 0.000001 (no exponent for a bound)."""
    if isinstance(value, int) or not math.isfinite(value) or abs(value) >= 1e15:
        return str(value)
    return f"{value:f}".rstrip("0").rstrip(".") or "0"


def shown(value: object) -> str:
    """``value`` as a message shows it; text that looks like a secret is never shown."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)  # 2.0, not 2: it is why an integer field refuses it
    if isinstance(value, int):
        if abs(value) < 10**40:
            return str(value)
        return f"a number of {len(str(abs(value)))} digits"
    if isinstance(value, str):
        if SECRET_RE.search(value):
            return "text that looks like a secret (not shown)"
        if len(value) > _SHOWN_TEXT:
            return repr(value[:_SHOWN_TEXT]) + "..."
        return repr(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, Mapping):
        return "a mapping"
    return type(value).__name__


def _range(meta: msgspec.Meta | None) -> str:
    if meta is None:
        return ""
    low, high = meta.ge, meta.le
    if meta.gt is not None and high is not None:
        return f" above {_number(meta.gt)}, at most {_number(high)}"
    if low is not None and high is not None:
        return f" from {_number(low)} to {_number(high)}"
    if low is not None:
        return f" of at least {_number(low)}"
    return ""


def _expected(node: Node) -> str:
    """What to write for ``node``, as a phrase: "an integer from 1 to 10"."""
    if node.kind == "int":
        words = "an integer" + _range(node.meta)
    elif node.kind == "float":
        words = "a number" + _range(node.meta)
    elif node.kind == "literal":
        choices = ", ".join(str(v) for v in node.values)
        words = choices if len(node.values) == 1 else f"one of {choices}"
    else:
        words = {
            "str": "text",
            "bool": "true or false",
            "date": "a date (YYYY-MM-DD)",
            "list": "a list",
            "map": "a mapping",
            "object": f"a mapping ({node.cls.__name__})" if node.cls else "a mapping",
            "any": "a value",
        }[node.kind]
    if node.one_or_many and node.item is not None:
        words = f"{_expected(node.item)}, or a list of them"
    return f"{words} or null" if node.nullable else words


def expected_words(node: Node) -> str:
    """What to write for ``node``, as a phrase: "an integer from 1 to 10" (``init`` comments)."""
    return _expected(node)


def _join(where: str, key: object) -> str:
    text = _key_text(key)
    return f"{where}.{text}" if where else text


def _key_text(key: object) -> str:
    """A document key as a message path shows it: a key that looks like a secret (a credential
    pasted one line too high) is not shown, a long or multi-line one is cut and quoted."""
    text = str(key)
    if SECRET_RE.search(text):
        return "<a key that looks like a secret, not shown>"
    if len(text) > _SHOWN_TEXT or not text.isprintable():
        return repr(text[:_SHOWN_TEXT]) + ("..." if len(text) > _SHOWN_TEXT else "")
    return text


def _label(where: str, index: int, item: object) -> str:
    """``fallbacks[backup]`` for a named row, ``fallbacks[0]`` when the name is unusable."""
    name = item.get("name") if isinstance(item, Mapping) else getattr(item, "name", None)
    clean = isinstance(name, str) and name.strip() and re.fullmatch(r"[\w.:/ +-]{1,60}", name)
    return f"{where}[{name}]" if clean else f"{where}[{index}]"


# ---------------------------------------------------------------------------------------------
# Checks


def _type_holds(node: Node, value: object, *, document: bool) -> bool:
    kind = node.kind
    if kind == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "float":
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind == "str":
        return isinstance(value, str)
    if kind == "bool":
        return isinstance(value, bool)
    if kind == "date":
        if type(value) is dt.date:
            return True
        if document and isinstance(value, str):
            try:
                dt.date.fromisoformat(value)
            except ValueError:
                return False
            return len(value) == 10
        return False
    if kind == "literal":
        return any(type(value) is type(v) and value == v for v in node.values)
    if kind == "list":
        return isinstance(value, list | tuple)
    if kind == "object" and not document and node.cls is not None:
        return isinstance(value, node.cls)
    if kind in ("map", "object"):
        return isinstance(value, Mapping)
    return True


def _bounds_problem(node: Node, value: Any) -> str | None:
    meta = node.meta
    if meta is None:
        return None
    if node.kind in ("int", "float"):
        finite = not isinstance(value, float) or math.isfinite(value)  # 10**400 is an int
        inside = finite and not (
            (meta.ge is not None and value < meta.ge)
            or (meta.gt is not None and value <= meta.gt)
            or (meta.le is not None and value > meta.le)
            or (meta.lt is not None and value >= meta.lt)
        )
        bare = dataclasses.replace(node, nullable=False)  # null is fine, this value is not
        return None if inside else f"expected {_expected(bare)}, got {shown(value)}"
    if node.kind in ("str", "list") and isinstance(value, str | list | tuple):
        if meta.min_length is not None and len(value) < meta.min_length:
            return "must not be empty" if node.kind == "str" else "must list at least one item"
        if meta.max_length is not None and len(value) > meta.max_length:
            if node.kind == "str":
                return f"is {len(value)} characters long; write at most {meta.max_length}"
            return f"lists {len(value)} items; list at most {meta.max_length}"
    if node.kind == "str" and meta.pattern is not None and not re.search(meta.pattern, value):
        return f"{shown(value)} does not match {meta.pattern}"
    return None


def _problems(where: str, value: object, node: Node, *, document: bool) -> list[str]:
    """Every problem of ``value`` against ``node``; a document is raw YAML data."""
    if value is None and node.nullable:
        return []
    if document and node.one_or_many and node.item is not None and not isinstance(value, list):
        if _problems(where, value, node.item, document=document):
            return [f"{where}: expected {_expected(node)}, got {shown(value)}"]
        value = [value]
    if not _type_holds(node, value, document=document):
        return [f"{where}: expected {_expected(node)}, got {shown(value)}"]
    if node.kind == "object" and node.cls is not None:
        if not document:
            return []  # an object validated itself when it was built
        return _object_problems(where, typing.cast(Mapping[str, Any], value), node.cls)
    problem = _bounds_problem(node, value)
    if problem:
        return [f"{where}: {problem}"]
    found: list[str] = []
    if node.kind == "list" and node.item is not None:
        for index, item in enumerate(typing.cast(list[Any], value)):
            label = (
                _label(where, index, item) if node.item.kind == "object" else f"{where}[{index}]"
            )
            found.extend(_problems(label, item, node.item, document=document))
    elif node.kind == "map" and node.item is not None:
        for key, item in typing.cast(Mapping[Any, Any], value).items():
            if not isinstance(key, str):
                found.append(f"{_join(where, key)}: write the key as text")
                continue
            found.extend(_problems(_join(where, key), item, node.item, document=document))
    if found:
        return found
    for check in node.checks:
        try:
            check.rule(where, value)
        except ConfigError as exc:
            return [str(exc)]
    return []


def _unknown_key(where: str, key: object, known: list[str]) -> str:
    near = difflib.get_close_matches(str(key)[:_SHOWN_TEXT], known, n=1)
    hint = f"did you mean {near[0]}? " if near else ""
    return f"{_join(where, key)}: unknown key; {hint}known keys here: {', '.join(known)}"


def _object_problems(where: str, value: Mapping[str, Any], cls: type) -> list[str]:
    fields = declared_fields(cls)
    known = [f.name for f in fields]
    found = [_unknown_key(where, key, known) for key in value if key not in known]
    for spec in fields:
        if spec.name not in value:
            if spec.required:
                text = spec.node.description.split("\n")[0].rstrip(".")
                found.append(f"{_join(where, spec.name)}: missing; write it ({text})")
            continue
        found.extend(_problems(_join(where, spec.name), value[spec.name], spec.node, document=True))
    if found:
        return found
    try:  # the fields hold: what is left are the rules between fields (__post_init__)
        msgspec.convert(normalised(value, cls), cls)
    except ConfigError as exc:
        return [str(exc)]
    except msgspec.ValidationError as exc:  # a type rule this module does not know
        return [f"{where or 'contract'}: {exc}"]
    return []


def document_problems(doc: Mapping[str, Any], cls: type) -> list[str]:
    """Every problem of a raw document against the declared ``cls``, in file order."""
    return _object_problems("", doc, cls)


def check_fields(obj: object, where: str) -> None:
    """Check every declared field of a value object built in code; ``ConfigError`` if not."""
    cls: type = type(obj)
    for spec in declared_fields(cls):
        found = _problems(
            _join(where, spec.name), getattr(obj, spec.name), spec.node, document=False
        )
        if found:
            raise ConfigError(found[0])


class UnknownKeyError(Exception):
    """A document key the declaration does not have (``check_document`` explains it)."""


def _normalise(value: Any, node: Node) -> Any:
    if value is None:
        return None
    if node.one_or_many and node.item is not None and not isinstance(value, list | tuple):
        return [value]
    if node.kind == "object" and node.cls is not None and isinstance(value, Mapping):
        return normalised(value, node.cls)
    if node.kind == "list" and node.item is not None and isinstance(value, list | tuple):
        return [_normalise(item, node.item) for item in value]
    if node.kind == "map" and node.item is not None and isinstance(value, Mapping):
        return {key: _normalise(item, node.item) for key, item in value.items()}
    return value


def normalised(value: Mapping[str, Any], cls: type) -> dict[str, Any]:
    """A copy of a document msgspec can convert: shorthands expanded, unknown keys refused.

    Raises ``UnknownKeyError`` on a key the declaration does not have (msgspec ignores
    extra keys on a dataclass; a typo must not be silently dropped).
    """
    fields = {f.name: f for f in declared_fields(cls)}
    out = {}
    for key, item in value.items():
        spec = fields.get(key)
        if spec is None:
            raise UnknownKeyError(key)
        out[key] = _normalise(item, spec.node)
    return out


def walk(cls: type, where: str = "") -> Iterator[tuple[str, DeclaredField]]:
    """Every declared field under ``cls``, depth first; ``*`` stands for a mapping key."""
    for spec in declared_fields(cls):
        path = _join(where, spec.name)
        yield path, spec
        node = spec.node
        if node.kind == "object" and node.cls is not None:
            yield from walk(node.cls, path)
        elif node.kind in ("list", "map") and node.item is not None and node.item.cls is not None:
            yield from walk(node.item.cls, f"{path}[]" if node.kind == "list" else f"{path}.*")


def number_bounds(cls: type) -> dict[str, tuple[float, float]]:
    """``dotted path -> (lowest, highest)`` for every bounded number under ``cls``."""
    out = {}
    for path, spec in walk(cls):
        meta = spec.node.meta
        if spec.node.kind in ("int", "float") and meta is not None and meta.le is not None:
            low = meta.ge if meta.ge is not None else meta.gt
            if low is not None:
                out[path] = (low, meta.le)
    return out
