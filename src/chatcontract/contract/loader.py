"""Contract file I/O: YAML document <-> ``Contract``, derived from the declaration in ``model``.

``load(path)`` returns a ``Contract`` or raises ``ContractFileError`` naming the field and
what to write. ``check_document(doc)`` returns every problem at once (for ``contract lint``).
``dump(contract)`` writes the commented YAML that ``init`` puts on disk, one comment per
field from its declared description.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Mapping
from typing import Any

import msgspec
import yaml

from chatcontract._textfile import FileProblemError, read_text
from chatcontract.errors import ConfigError, ContractFileError

from ._declare import (
    Node,
    UnknownKeyError,
    declared_fields,
    document_problems,
    expected_words,
    normalised,
    shown,
)
from .model import Contract, ErrorRule, FallbackRoute
from .presets import PRESETS, preset_document

__all__ = [
    "DEFAULT_PATH",
    "MAX_CONTRACT_BYTES",
    "check_document",
    "contract_from_document",
    "contract_to_document",
    "dump",
    "load",
    "load_preset",
    "read_document",
]

DEFAULT_PATH = "chatcontract.yaml"
#: The largest contract file read (a preset is ~13 KB): ``/dev/zero`` or a wrong 10 GB file
#: is refused after 1 MiB instead of filling memory.
MAX_CONTRACT_BYTES = 1024 * 1024
#: The most values a contract document may stand for once YAML aliases are expanded: more
#: than a 1 MiB file can write out, far fewer than an alias bomb expands to.
MAX_DOCUMENT_VALUES = 1_000_000

# libyaml's safe loader parses a contract file ~7x faster than the pure-Python one, the
# largest part of loading a contract; same safe constructors, same error marks.
_BaseSafeLoader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _DuplicateKeyError(yaml.MarkedYAMLError):
    """A mapping writes one key twice (YAML says keys are unique; PyYAML keeps the last)."""


class _SafeLoader(_BaseSafeLoader):  # type: ignore[valid-type,misc]
    """The safe loader, refusing a key written twice in one mapping.

    PyYAML silently keeps the last value: ``model:`` written twice in a long file would
    change the contract without a word. A merge key (``<<: *defaults``) still overrides.
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[str] = set()
        for key_node, _ in node.value:
            if (
                not isinstance(key_node, yaml.ScalarNode)
                or key_node.tag == "tag:yaml.org,2002:merge"
            ):
                continue
            if key_node.value in seen:
                raise _DuplicateKeyError(
                    problem=f"the key {shown(key_node.value)} is written twice in one mapping; "
                    "keep one",
                    problem_mark=key_node.start_mark,
                )
            seen.add(key_node.value)
        return super().construct_mapping(node, deep=deep)  # type: ignore[no-any-return]


# Rows written compactly: a field left at its default is not written.
_OMIT_DEFAULTS = (ErrorRule, FallbackRoute)


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str | int | float):
        return "text" if isinstance(value, str) else "a number"
    return type(value).__name__


def check_document(doc: object) -> list[str]:
    """Every problem of a contract document: unknown keys, wrong types, bounds, rules.

    Each message names the field (dotted path) and says what to write.
    """
    if not isinstance(doc, Mapping):
        return [f"the file must hold a mapping of contract fields, got {shown(doc)}"]
    return document_problems(doc, Contract)


def _build(doc: Mapping[str, Any]) -> Contract | list[str]:
    """The contract msgspec builds from ``doc``, or every problem explained in words."""
    try:
        return msgspec.convert(normalised(doc, Contract), Contract)
    except (ConfigError, UnknownKeyError, msgspec.ValidationError) as exc:
        # Explained from the declaration; the fast path above stays one C call.
        return check_document(doc) or [str(exc)]


def contract_from_document(doc: Mapping[str, Any]) -> Contract:
    """Build a ``Contract`` from a parsed document; ``ConfigError`` names the first bad field."""
    built = _build(doc)
    if isinstance(built, list):
        raise ConfigError(built[0])
    return built


def read_document(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and parse the YAML file; ``ContractFileError`` if it is missing or not YAML."""
    shown = os.fspath(path)
    try:
        text = read_text(path, limit=MAX_CONTRACT_BYTES)
    except FileNotFoundError as exc:
        raise ContractFileError(
            shown, "no such file; create one with 'chatcontract init' or pass --contract FILE"
        ) from exc
    except FileProblemError as exc:
        raise ContractFileError(shown, str(exc)) from exc
    try:
        doc = yaml.load(text, Loader=_SafeLoader)  # noqa: S506 (a safe loader: libyaml's when built)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ContractFileError(shown, f"is not valid YAML{where}: {problem}") from exc
    except ValueError as exc:  # a date like 2026-02-30, an integer of more than 4300 digits
        reason = str(exc)
        if "integer string conversion" in reason:  # Python's advice is not the user's remedy
            reason = "a number of more than 4300 digits"
        raise ContractFileError(
            shown,
            f"holds a value YAML cannot convert ({reason}); write dates as YYYY-MM-DD and "
            "numbers a field can hold",
        ) from exc
    if not isinstance(doc, dict):
        raise ContractFileError(
            shown, f"must hold a mapping of contract fields, got {_type_name(doc)}"
        )
    if not _within(doc, MAX_DOCUMENT_VALUES):
        raise ContractFileError(
            shown,
            f"expands to more than {MAX_DOCUMENT_VALUES:,} values (YAML aliases '*name' "
            "repeating an anchor's value); write the values out instead of nesting aliases",
        )
    return doc


def _within(doc: object, budget: int) -> bool:
    """Whether ``doc`` holds at most ``budget`` values, counting each alias use again.

    libyaml shares an anchored value between its aliases, so a 300-byte file can stand for a
    billion strings ("billion laughs"); every later walk (checks, lint, msgspec) would visit
    them all. This walk stops as soon as the budget is spent: at most ``budget`` steps.
    """
    stack = [doc]
    while stack:
        budget -= 1
        if budget < 0:
            return False
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


def load(path: str | os.PathLike[str] = DEFAULT_PATH) -> Contract:
    """Load and validate a contract file.

    Raises:
        ContractFileError: the file is missing, not YAML, or a field is wrong (the first
            problem is named; ``chatcontract contract lint`` lists them all).
    """
    doc = read_document(path)
    built = _build(doc)
    if isinstance(built, Contract):
        return built
    more = f" (and {len(built) - 1} more: run 'chatcontract contract lint')" if built[1:] else ""
    raise ContractFileError(os.fspath(path), built[0] + more)


def load_preset(name: str) -> Contract:
    """The built-in preset as a ``Contract``; ``ConfigError`` for an unknown name."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; use one of {', '.join(sorted(PRESETS))}")
    return contract_from_document(preset_document(name))


def contract_to_document(contract: Contract) -> dict[str, Any]:
    """The plain document for a contract (what ``dump`` writes and ``diff`` compares)."""
    document: dict[str, Any] = _plain(contract)
    return document


def _plain(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        omit_defaults = isinstance(value, _OMIT_DEFAULTS)
        for spec in dataclasses.fields(value):
            item = getattr(value, spec.name)
            if omit_defaults and spec.default is not dataclasses.MISSING and item == spec.default:
                continue
            out[spec.name] = _plain(item)
        return out
    if isinstance(value, tuple | list):
        return [_plain(item) for item in value]
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


_HEADER = (
    "# chatcontract contract file: what production code relies on in a chat completions API.\n"
    "# Check it with 'chatcontract contract lint'; prove it with 'chatcontract validate'.\n"
)


def _comment(description: str, indent: str) -> list[str]:
    return [f"{indent}# {line}" for line in description.splitlines()]


def _emit(key: str, value: Any, node: Node | None, indent: str, out: list[str]) -> None:
    if node is not None:
        bounded = node.kind in ("int", "float") and node.meta is not None
        bounds = f"\nWrite {expected_words(node)}." if bounded else ""
        out.extend(_comment(node.description + bounds, indent))
    if node is not None and node.kind == "object" and node.cls and isinstance(value, Mapping):
        out.append(f"{indent}{key}:")
        fields = {f.name: f.node for f in declared_fields(node.cls)}
        for sub_key, sub_value in value.items():
            _emit(str(sub_key), sub_value, fields.get(str(sub_key)), indent + "  ", out)
        return
    if node is not None and node.kind == "date" and isinstance(value, str):
        value = dt.date.fromisoformat(value)
    block = yaml.safe_dump(
        {key: value}, sort_keys=False, default_flow_style=False, allow_unicode=True, width=100
    )
    out.extend(indent + line for line in block.rstrip("\n").splitlines())


def dump(contract: Contract | Mapping[str, Any]) -> str:
    """The contract as commented YAML in declaration order, each field under its description."""
    doc = contract_to_document(contract) if isinstance(contract, Contract) else dict(contract)
    fields = {f.name: f.node for f in declared_fields(Contract)}
    keys = [k for k in fields if k in doc] + [k for k in doc if k not in fields]
    out = [_HEADER]
    for key in keys:
        _emit(key, doc[key], fields.get(key), "", out)
        out.append("")
    return "\n".join(out)
