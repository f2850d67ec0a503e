"""Contract file I/O: YAML document <-> ``Contract``, strict about keys and types.

``load(path)`` returns a ``Contract`` or raises ``ContractFileError`` naming the field and
what to write. ``check_document(doc)`` returns every problem at once (for ``contract lint``).
``dump(contract)`` writes the commented YAML that ``init`` puts on disk.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

from chatcontract.errors import ConfigError, ContractFileError

from .model import (
    Auth,
    Contract,
    CostCaps,
    Endpoint,
    ErrorRule,
    ErrorTable,
    FallbackRoute,
    Policy,
    Prices,
    ProbeSettings,
    RequestSpec,
    ResponseSpec,
    RetryPolicy,
    Streaming,
    Timeouts,
)
from .presets import PRESETS, preset_document

__all__ = [
    "DEFAULT_PATH",
    "check_document",
    "contract_from_document",
    "contract_to_document",
    "dump",
    "load",
    "load_preset",
    "read_document",
]

DEFAULT_PATH = "chatcontract.yaml"

# The keys each section accepts, with the Python type each value must have. A section
# given as a mapping of keys is checked recursively; ``list`` means a list of scalars.
_Spec = Mapping[str, Any]

_TIMEOUTS: _Spec = {"connect_ms": int, "first_byte_ms": int, "first_token_ms": int, "total_ms": int}
_RETRY: _Spec = {
    "max_attempts": int,
    "backoff_initial_ms": int,
    "backoff_max_ms": int,
    "backoff_multiplier": float,
    "jitter": float,
    "retry_after_cap_ms": int,
}
_CAPS: _Spec = {
    "max_tokens_per_call": (int, type(None)),
    "max_cost_per_call_usd": (float, type(None)),
    "max_cost_per_day_usd": (float, type(None)),
}
_PROBE: _Spec = {"interval_s": int, "max_tokens": int, "daily_cost_cap_usd": float}
_RULE: _Spec = {
    "name": str,
    "category": str,
    "status": (list, int, type(None)),
    "code": (str, type(None)),
    "type": (str, type(None)),
    "message": (str, type(None)),
    "body": str,
    "note": str,
}
SCHEMA: _Spec = {
    "version": int,
    "name": str,
    "provider": str,
    "reference_url": str,
    "reviewed_on": (dt.date, str, type(None)),
    "review_every_days": int,
    "owner": str,
    "revalidate_when": list,
    "environment": str,
    "endpoint": {"base_url": str, "path": str, "method": str, "models_path": str},
    "auth": {"header": str, "scheme": str, "env": list},
    "model": str,
    "fallbacks": [
        {"name": str, "model": (str, type(None)), "base_url": (str, type(None)), "auth_env": list}
    ],
    "request": {"required": list, "fixture": dict, "optional_in_use": list, "cautions": list},
    "response": {"required_paths": list, "optional_paths": list, "finish_reasons": list},
    "streaming": {"used": bool, "include_usage": bool, "require_done": bool},
    "errors": {
        "rules": [_RULE],
        "retryable": list,
        "non_retryable": list,
        "request_id_pattern": str,
    },
    "policy": {
        "timeouts": _TIMEOUTS,
        "retry": _RETRY,
        "fallback_reserve_ms": int,
        "usage_fields": list,
        "caps": _CAPS,
        "prices": {"*": {"input_per_million": float, "output_per_million": float}},
        "probe": _PROBE,
        "kill_switch_env": (str, type(None)),
    },
    "attestations": {"*": str},
}

# Rows written compactly: a field left at its default ("any") is not written.
_OMIT_DEFAULTS = (ErrorRule, FallbackRoute)

_REQUIRED_TOP = ("name", "provider", "endpoint", "auth", "model")
_YAML_NAMES = {
    bool: "true or false",
    int: "a whole number",
    float: "a number",
    str: "text",
    list: "a list",
    dict: "a mapping",
    type(None): "null",
    dt.date: "a date (YYYY-MM-DD)",
}


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _accepts(expected: Any, value: object) -> bool:
    kinds = expected if isinstance(expected, tuple) else (expected,)
    for kind in kinds:
        if kind is float and isinstance(value, int | float) and not isinstance(value, bool):
            return True
        if kind is int and isinstance(value, bool):
            continue
        if isinstance(value, kind):
            return True
    return False


def _expected_words(expected: Any) -> str:
    kinds = expected if isinstance(expected, tuple) else (expected,)
    return " or ".join(_YAML_NAMES.get(kind, kind.__name__) for kind in kinds)


def check_document(doc: object) -> list[str]:
    """Every structural problem of a contract document: unknown keys, wrong types, missing keys.

    Each message names the field (dotted path) and says what to write.
    """
    if not isinstance(doc, dict):
        return [f"the file must hold a mapping of contract fields, got {_type_name(doc)}"]
    problems = [
        f"{key}: missing; every contract needs {', '.join(_REQUIRED_TOP)}"
        for key in _REQUIRED_TOP
        if key not in doc
    ]
    _walk(doc, SCHEMA, "", problems)
    if not problems:
        problems = _all_problems(doc)
    return problems


def _walk(value: Mapping[str, Any], spec: _Spec, prefix: str, problems: list[str]) -> None:
    wildcard = spec.get("*")
    for key, item in value.items():
        where = f"{prefix}{key}"
        expected = spec.get(str(key), wildcard)
        if expected is None:
            known = ", ".join(k for k in spec if k != "*")
            problems.append(f"{where}: unknown key; known keys here: {known}")
            continue
        if isinstance(expected, Mapping):
            if not isinstance(item, dict):
                problems.append(f"{where}: expected a mapping, got {_type_name(item)}")
            else:
                _walk(item, expected, f"{where}.", problems)
        elif isinstance(expected, list):
            if not isinstance(item, list):
                problems.append(f"{where}: expected a list of mappings, got {_type_name(item)}")
                continue
            for index, element in enumerate(item):
                if not isinstance(element, dict):
                    problems.append(
                        f"{where}[{index}]: expected a mapping, got {_type_name(element)}"
                    )
                else:
                    _walk(element, expected[0], f"{where}[{index}].", problems)
        elif not _accepts(expected, item):
            problems.append(
                f"{where}: expected {_expected_words(expected)}, got {_type_name(item)}"
            )


def _tuple(value: object) -> tuple[Any, ...]:
    if value is None:
        return ()
    if isinstance(value, list | tuple):
        return tuple(value)
    return (value,)


def _section(doc: Mapping[str, Any], key: str) -> dict[str, Any]:
    value = doc.get(key) or {}
    return dict(value)


def _build(cls: Callable[..., Any], where: str, values: Mapping[str, Any]) -> Any:
    try:
        return cls(**values)
    except TypeError as exc:  # a key the dataclass does not take; check_document names it first
        raise ConfigError(f"{where}: {exc}") from exc


def _date(value: object) -> dt.date | None:
    if value is None or value == "":
        return None
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError as exc:
        raise ConfigError(f"reviewed_on: {value!r} is not a date; write YYYY-MM-DD") from exc


def _parts(doc: Mapping[str, Any]) -> dict[str, Callable[[], Any]]:
    """One builder per section, so ``check_document`` can report each section's problem."""

    def fallbacks() -> tuple[FallbackRoute, ...]:
        return tuple(
            _build(FallbackRoute, "fallbacks", {**item, "auth_env": _tuple(item.get("auth_env"))})
            for item in doc.get("fallbacks") or ()
        )

    def auth() -> Auth:
        auth_doc = _section(doc, "auth")
        auth_doc["env"] = _tuple(auth_doc.get("env"))
        built: Auth = _build(Auth, "auth", auth_doc)
        return built

    def request() -> RequestSpec:
        request_doc = _section(doc, "request")
        for key in ("required", "optional_in_use", "cautions"):
            if key in request_doc:
                request_doc[key] = _tuple(request_doc[key])
        built: RequestSpec = _build(RequestSpec, "request", request_doc)
        return built

    def errors() -> ErrorTable:
        errors_doc = _section(doc, "errors")
        rules = tuple(
            _build(ErrorRule, "errors.rules", {**rule, "status": _status(rule.get("status"))})
            for rule in errors_doc.pop("rules", None) or ()
        )
        for key in ("retryable", "non_retryable"):
            if key in errors_doc:
                errors_doc[key] = _tuple(errors_doc[key])
        built: ErrorTable = _build(ErrorTable, "errors", {**errors_doc, "rules": rules})
        return built

    return {
        "endpoint": lambda: _build(Endpoint, "endpoint", _section(doc, "endpoint")),
        "auth": auth,
        "fallbacks": fallbacks,
        "request": request,
        "response": lambda: _build(
            ResponseSpec,
            "response",
            {k: _tuple(v) for k, v in _section(doc, "response").items()},
        ),
        "streaming": lambda: _build(Streaming, "streaming", _section(doc, "streaming")),
        "errors": errors,
        "policy": lambda: _policy(_section(doc, "policy")),
    }


def _contract(doc: Mapping[str, Any], parts: Mapping[str, Any]) -> Contract:
    return Contract(
        version=doc.get("version", 1),
        name=doc.get("name", ""),
        provider=doc.get("provider", ""),
        reference_url=doc.get("reference_url") or "",
        reviewed_on=_date(doc.get("reviewed_on")),
        review_every_days=doc.get("review_every_days", 90),
        owner=doc.get("owner") or "",
        revalidate_when=_tuple(doc.get("revalidate_when")),
        environment=doc.get("environment", "staging"),
        model=doc.get("model", ""),
        attestations=dict(doc.get("attestations") or {}),
        **parts,
    )


# Stand-ins for a section that failed, so the top-level fields are still checked.
_STAND_INS: dict[str, Any] = {
    "endpoint": Endpoint(base_url="https://stand-in.invalid"),
    "auth": Auth(env=("STAND_IN",)),
}


def _all_problems(doc: Mapping[str, Any]) -> list[str]:
    """Every section's first problem, then the top-level fields' first problem."""
    problems: list[str] = []
    built: dict[str, Any] = {}
    for name, build in _parts(doc).items():
        try:
            built[name] = build()
        except ConfigError as exc:
            more = _policy_problems(_section(doc, "policy")) if name == "policy" else []
            problems.extend(more if len(more) > 1 else [str(exc)])
            if name in _STAND_INS:
                built[name] = _STAND_INS[name]
    try:
        _contract(doc, built)
    except ConfigError as exc:
        problems.append(str(exc))
    return problems


def contract_from_document(doc: Mapping[str, Any]) -> Contract:
    """Build a ``Contract`` from a parsed document; ``ConfigError`` names the first bad field."""
    return _contract(doc, {name: build() for name, build in _parts(doc).items()})


def _status(value: object) -> tuple[int, ...] | None:
    if value is None:
        return None
    return tuple(_tuple(value))


def _policy_parts(doc: dict[str, Any]) -> dict[str, Callable[[], Any]]:
    """One builder per policy sub-section; pops them from ``doc``."""
    timeouts, retry = doc.pop("timeouts", None) or {}, doc.pop("retry", None) or {}
    caps, probe = doc.pop("caps", None) or {}, doc.pop("probe", None) or {}
    prices = doc.pop("prices", None) or {}
    return {
        "timeouts": lambda: _build(Timeouts, "policy.timeouts", timeouts),
        "retry": lambda: _build(RetryPolicy, "policy.retry", retry),
        "caps": lambda: _build(CostCaps, "policy.caps", caps),
        "probe": lambda: _build(ProbeSettings, "policy.probe", probe),
        "prices": lambda: {
            str(model): _build(Prices, f"policy.prices.{model}", item)
            for model, item in prices.items()
        },
    }


def _policy_problems(doc: dict[str, Any]) -> list[str]:
    """Each policy sub-section's first problem (``lint`` lists them all)."""
    problems = []
    for build in _policy_parts(doc).values():
        try:
            build()
        except ConfigError as exc:
            problems.append(str(exc))
    return problems


def _policy(doc: dict[str, Any]) -> Policy:
    nested: dict[str, Any] = {name: build() for name, build in _policy_parts(doc).items()}
    if "usage_fields" in doc:
        doc["usage_fields"] = _tuple(doc["usage_fields"])
    policy: Policy = _build(Policy, "policy", {**doc, **nested})
    return policy


def read_document(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and parse the YAML file; ``ContractFileError`` if it is missing or not YAML."""
    shown = os.fspath(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ContractFileError(
            shown, "no such file; create one with 'chatcontract init' or pass --contract FILE"
        ) from exc
    except OSError as exc:
        raise ContractFileError(shown, f"cannot be read ({exc.strerror})") from exc
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or "invalid YAML"
        raise ContractFileError(shown, f"is not valid YAML{where}: {problem}") from exc
    if not isinstance(doc, dict):
        raise ContractFileError(
            shown, f"must hold a mapping of contract fields, got {_type_name(doc)}"
        )
    return doc


def load(path: str | os.PathLike[str] = DEFAULT_PATH) -> Contract:
    """Load and validate a contract file.

    Raises:
        ContractFileError: the file is missing, not YAML, or a field is wrong (the first
            problem is named; ``chatcontract contract lint`` lists them all).
    """
    doc = read_document(path)
    problems = check_document(doc)
    if problems:
        more = (
            f" (and {len(problems) - 1} more: run 'chatcontract contract lint')"
            if len(problems) > 1
            else ""
        )
        raise ContractFileError(os.fspath(path), problems[0] + more)
    return contract_from_document(doc)


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


# What `init` writes above each key, so the file documents itself. Top-level keys are
# written in this order; nested keys get their comment when they have one here.
COMMENTS: dict[str, str] = {
    "version": "Contract file format version (this chatcontract reads 1).",
    "name": "A name for this dependency, used in reports and metrics.",
    "provider": "Who serves the API (cometapi, openai, ...).",
    "reference_url": "The API reference page this contract was checked against.",
    "reviewed_on": "When a person last checked this file against the reference (YYYY-MM-DD).\n"
    "'contract lint' and 'chatcontract review' report it when older than review_every_days.",
    "review_every_days": "Days between reviews of this file against the reference (1-3650).\n"
    "'chatcontract review' exits 1 when reviewed_on is older than this.",
    "owner": "The team or person who owns this dependency and gets its alerts.",
    "revalidate_when": "Events that must trigger 'chatcontract validate' again (free text).",
    "environment": "staging or production; negative and invalid-request probes are staging-only.",
    "endpoint": "Where requests go.",
    "endpoint.base_url": "Everything before the path; CometAPI: https://api.cometapi.com/v1.",
    "endpoint.path": "The chat completions path, appended to base_url.",
    "endpoint.method": "The HTTP method of the call.",
    "endpoint.models_path": "The model list (auth required), appended to base_url.",
    "auth": "How the secret is sent. The secret is NEVER written here.",
    "auth.header": "The header carrying the secret.",
    "auth.scheme": "Written before the secret in the header value ('' for a bare key).",
    "auth.env": "Environment variables to read the secret from, in order; the first set wins.",
    "model": "The model to call. Override without a code change: $CHATCONTRACT_MODEL or --model.",
    "fallbacks": "Ordered named routes tried when the primary fails in a way a fallback helps:\n"
    "another model, and/or another base_url with its own auth_env.",
    "request": "What the application sends.",
    "request.required": "Fields every request must carry.",
    "request.fixture": "A minimal valid request: the canary sends it.",
    "request.optional_in_use": "Optional fields the application sends (dotted for nested ones).",
    "request.cautions": "The provider's documented cautions, checked before sending (warnings).",
    "response": "What the application reads from a completion.",
    "response.required_paths": "Paths that must be present with the right type after a 200.",
    "response.optional_paths": "Paths read when present; their type is checked if they are.",
    "response.finish_reasons": "finish_reason values the application handles.",
    "streaming": "How the application streams.",
    "streaming.used": "The application sends stream: true.",
    "streaming.include_usage": "It sends stream_options.include_usage and needs the usage chunk.",
    "streaming.require_done": "A stream must end with data: [DONE] (after a finish_reason).",
    "errors": "The provider's error codes as data.",
    "errors.retryable": "Failure categories worth another attempt (backoff with jitter).",
    "errors.non_retryable": "Failure categories never retried: retrying repeats the mistake.",
    "errors.request_id_pattern": "Where the request id hides in error messages (one group).",
    "errors.rules": "Tried in order; the first rule whose status, code, type, message (regex)\n"
    "and body (json, empty, html, text) all match names the failure and its category.",
    "policy": "Budgets and decisions.",
    "policy.timeouts": "One deadline for the whole call (total_ms) and its phases, in ms.",
    "policy.retry": "Attempts per route and exponential backoff with jitter between them.",
    "policy.fallback_reserve_ms": "Time kept back from the primary's attempts for a fallback.",
    "policy.usage_fields": "Usage fields the budget logic reads.",
    "policy.caps": "Local guards checked before sending; null means no cap.",
    "policy.prices": "USD per million tokens, per model, for cost caps.",
    "policy.probe": "Synthetic probes: interval, max_tokens (reasoning-safe), daily cost cap.",
    "policy.kill_switch_env": "When this environment variable is set, calls go to the fallback.",
    "attestations": "Facts a person confirmed that no request can check, e.g.\n"
    "rate_limits_reviewed: 'no per-key RPM/TPM limit documented (2026-11-24, J. Doe)'.",
}

_HEADER = (
    "# chatcontract contract file: what production code relies on in a chat completions API.\n"
    "# Check it with 'chatcontract contract lint'; prove it with 'chatcontract validate'.\n"
)


def _emit(key: str, value: Any, path: str, indent: str, out: list[str]) -> None:
    out.extend(f"{indent}# {line}" for line in COMMENTS.get(path, "").splitlines())
    nested = isinstance(value, Mapping) and value and any(f"{path}.{k}" in COMMENTS for k in value)
    if nested:
        out.append(f"{indent}{key}:")
        for sub_key, sub_value in value.items():
            _emit(str(sub_key), sub_value, f"{path}.{sub_key}", indent + "  ", out)
        return
    if key == "reviewed_on" and isinstance(value, str):
        value = _date(value)
    block = yaml.safe_dump(
        {key: value}, sort_keys=False, default_flow_style=False, allow_unicode=True, width=100
    )
    out.extend(indent + line for line in block.rstrip("\n").splitlines())


def dump(contract: Contract | Mapping[str, Any]) -> str:
    """The contract as commented YAML, top-level keys in reading order."""
    doc = contract_to_document(contract) if isinstance(contract, Contract) else dict(contract)
    order = [key for key in COMMENTS if "." not in key]
    keys = [k for k in order if k in doc] + [k for k in doc if k not in order]
    out = [_HEADER]
    for key in keys:
        _emit(key, doc[key], key, "", out)
        out.append("")
    return "\n".join(out)
