"""Request shape checks: field names and JSON types, never the text of a message.

:func:`check_request` looks at the body about to be sent: the contract's required fields,
the types of the fields OpenAI-compatible APIs define, each message's ``role`` / ``content``
/ ``tool_call_id``, and the contract's cautions (``temperature+top_p: …``) as warnings. The
result carries request *facts* for the Exchange (field names, model, stream flag, message
count, roles, ``max_tokens``, ``include_usage``) and nothing copied from message text.

    >>> check = check_request({"model": "gpt-4.1-nano", "messages": [{"role": "user"}]})
    >>> [str(e) for e in check.errors]
    ['$.messages[0].content: expected string or array, got missing']
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from math import isfinite
from typing import Any, TypeGuard

from chatcontract.contract.model import Contract, RequestSpec
from chatcontract.wire._json import loads
from chatcontract.wire.violation import MISSING, Violation, ViolationKind, describe

__all__ = [
    "ROLES",
    "RequestCheck",
    "check_request",
    "check_request_bytes",
    "request_errors",
    "requested_max_tokens",
]

#: Message roles an OpenAI-compatible chat completions API accepts.
ROLES: tuple[str, ...] = ("system", "developer", "user", "assistant", "tool")

_DEFAULT_SPEC = RequestSpec(
    cautions=("temperature+top_p: OpenAI recommends altering one or the other, not both",)
)
_STREAM_OPTIONS_WARNING = "stream_options: set without stream: true; the API ignores or rejects it"


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestCheck:
    """The verdict on a request body, and facts about it that are safe to record.

    ``errors`` break the contract (the API would reject or misread the request);
    ``warnings`` are the contract's cautions that apply. ``fields`` are the top-level field
    names present; ``roles`` the known roles used, in order of first use.
    """

    errors: tuple[Violation, ...]
    warnings: tuple[str, ...]
    fields: tuple[str, ...]
    model: str | None
    stream: bool
    include_usage: bool
    message_count: int
    roles: tuple[str, ...]
    max_tokens: int | None

    @property
    def ok(self) -> bool:
        """True when the request has no errors (warnings allowed)."""
        return not self.errors


# --------------------------------------------------------------------------- type table


def _is_number(value: object) -> bool:
    """A JSON number: an int, or a float other than NaN and the infinities (JSON has none)."""
    return type(value) is int or (type(value) is float and isfinite(value))


def _is_array(value: object) -> TypeGuard[list[Any] | tuple[Any, ...]]:
    return isinstance(value, list | tuple)


def _is_object(value: object) -> TypeGuard[Mapping[str, Any]]:
    # A parsed JSON object is a dict: no ABC check for it.
    return type(value) is dict or isinstance(value, Mapping)


def _is_positive_int(value: object) -> TypeGuard[int]:
    return type(value) is int and value > 0


def _is_non_negative_int(value: object) -> bool:
    return type(value) is int and value >= 0


def _is_non_empty_str(value: object) -> bool:
    return type(value) is str and bool(value.strip())


_Check = tuple[str, Callable[[object], bool]]

#: Top-level request fields with the JSON type they must have when set (``null`` is accepted
#: for any field that is not required). Unknown fields are left alone.
FIELD_TYPES: Mapping[str, _Check] = {
    "model": ("non-empty string", _is_non_empty_str),
    "messages": ("non-empty array", lambda v: isinstance(v, list | tuple) and bool(v)),
    "stream": ("boolean", lambda v: type(v) is bool),
    "stream_options": ("object", _is_object),
    "temperature": ("number", _is_number),
    "top_p": ("number", _is_number),
    "max_tokens": ("positive integer", _is_positive_int),
    "max_completion_tokens": ("positive integer", _is_positive_int),
    "n": ("positive integer", _is_positive_int),
    "tools": ("array", _is_array),
    "tool_choice": ("string or object", lambda v: type(v) is str or _is_object(v)),
    "response_format": ("object", _is_object),
    "stop": ("string or array", lambda v: type(v) is str or _is_array(v)),
    "seed": ("integer", lambda v: type(v) is int),
    "presence_penalty": ("number", _is_number),
    "frequency_penalty": ("number", _is_number),
    "logprobs": ("boolean", lambda v: type(v) is bool),
    "top_logprobs": ("non-negative integer", _is_non_negative_int),
    "user": ("string", lambda v: type(v) is str),
    "reasoning_effort": ("string", lambda v: type(v) is str),
    "parallel_tool_calls": ("boolean", lambda v: type(v) is bool),
}

_STREAM_OPTION_TYPES: Mapping[str, _Check] = {
    "include_usage": ("boolean", lambda v: type(v) is bool),
}


# --------------------------------------------------------------------------- checking


def check_request(body: Mapping[str, Any], *, contract: Contract | None = None) -> RequestCheck:
    """Check a chat completions request body (field names and types only).

    Args:
        body: the JSON object about to be sent.
        contract: ``request.required`` and ``request.cautions``; ``None`` uses
            ``RequestSpec()`` with OpenAI's temperature/top_p caution.

    Raises ``TypeError`` if ``body`` is not a mapping (a programming error).
    """
    spec = _spec("check_request", body, contract)
    roles: list[str] = []
    errors = _errors(body, spec.required, roles)
    options = body.get("stream_options")
    messages = body.get("messages")
    return RequestCheck(
        errors=errors,
        warnings=_warnings(body, spec.cautions),
        fields=tuple(sorted(map(str, body))),
        model=body.get("model") if type(body.get("model")) is str else None,
        stream=body.get("stream") is True,
        include_usage=_is_object(options) and options.get("include_usage") is True,
        message_count=len(messages) if _is_array(messages) else 0,
        roles=tuple(roles),
        max_tokens=requested_max_tokens(body),
    )


def request_errors(
    body: Mapping[str, Any], *, contract: Contract | None = None
) -> tuple[Violation, ...]:
    """``check_request(body, contract=contract).errors`` alone: the verdict a client needs
    before it sends, without the facts (warnings, field names, roles) recorded elsewhere.

    Raises ``TypeError`` if ``body`` is not a mapping (a programming error).
    """
    if type(body) is not dict and not _is_object(body):
        raise TypeError(f"request_errors() takes a mapping, got {type(body).__name__}")
    spec = contract.request if contract is not None else _DEFAULT_SPEC
    return _errors(body, spec.required, [])


def requested_max_tokens(body: Mapping[str, Any]) -> int | None:
    """The completion cap a request sets: ``max_completion_tokens``, else ``max_tokens``
    (a positive integer; None when neither is one)."""
    for name in ("max_completion_tokens", "max_tokens"):
        value = body.get(name)
        if type(value) is int and value > 0:  # ``_is_positive_int``, without its call
            return value
    return None


def _spec(caller: str, body: Mapping[str, Any], contract: Contract | None) -> RequestSpec:
    if not _is_object(body):
        raise TypeError(f"{caller}() takes a mapping, got {type(body).__name__}")
    return contract.request if contract is not None else _DEFAULT_SPEC


def _errors(
    body: Mapping[str, Any], required: Sequence[str], roles: list[str]
) -> tuple[Violation, ...]:
    """What breaks the contract in ``body``; the known roles its messages use go to
    ``roles``, in order of first use."""
    errors: list[Violation] = []
    plain = type(body) is dict
    for name in required:
        # ``_lookup``, without its call for a top-level field of a dict
        value = body.get(name, MISSING) if plain and "." not in name else _lookup(body, name)
        if value is MISSING or value is None:
            kind = ViolationKind.MISSING if value is MISSING else ViolationKind.NULL
            expected = FIELD_TYPES[name][0] if name in FIELD_TYPES else "a value"
            errors.append(_violation(kind, f"$.{name}", expected, value))
    if not plain or not _types_ok(body):
        for name, (expected, accepts) in FIELD_TYPES.items():
            value = body.get(name)
            if value is not None and not accepts(value):
                errors.append(_violation(ViolationKind.TYPE, f"$.{name}", expected, value))
    options = body.get("stream_options")
    if options is not None and _is_object(options):
        for name, (expected, accepts) in _STREAM_OPTION_TYPES.items():
            value = options.get(name)
            if value is not None and not accepts(value):
                path = f"$.stream_options.{name}"
                errors.append(_violation(ViolationKind.TYPE, path, expected, value))
    messages = body.get("messages")
    if isinstance(messages, list | tuple):
        for index, message in enumerate(messages):
            _check_message(message, index, errors, roles)
    return tuple(errors)


def _types_ok(body: Mapping[str, Any]) -> bool:
    """Whether every field of ``body`` that :data:`FIELD_TYPES` types has its type: checked
    over the body's own fields (a few), not the table's; False sends the caller through the
    table in its order, which reports the wrong ones in that order."""
    for name, value in body.items():
        check = FIELD_TYPES.get(name)
        if check is not None and value is not None and not check[1](value):
            return False
    return True


def check_request_bytes(body: bytes, *, contract: Contract | None = None) -> RequestCheck:
    """Check a serialised request body (what an instrumented HTTP client sends)."""
    doc, error_at = loads(body)
    if error_at is None and isinstance(doc, dict):
        return check_request(doc, contract=contract)
    if error_at is not None:
        got = "empty body" if not body.strip() else f"invalid JSON at byte {error_at}"
        error = Violation(kind=ViolationKind.INVALID_JSON, path="$", expected="JSON", got=got)
    else:
        error = _violation(ViolationKind.NOT_OBJECT, "$", "a request object", doc)
    return RequestCheck(
        errors=(error,),
        warnings=(),
        fields=(),
        model=None,
        stream=False,
        include_usage=False,
        message_count=0,
        roles=(),
        max_tokens=None,
    )


# A role is shown in an error only when it looks like a role name, never free text.
_ROLE_LIKE = re.compile(r"^[a-z_]{1,24}$")


def _check_message(message: object, index: int, errors: list[Violation], roles: list[str]) -> None:
    """One message's errors (its path built only for an error, never per message)."""
    if type(message) is not dict and not _is_object(message):
        errors.append(_violation(ViolationKind.TYPE, f"$.messages[{index}]", "object", message))
        return
    role = message.get("role", MISSING)
    if role in ROLES:
        if role not in roles:
            roles.append(role)
    else:
        kind = ViolationKind.MISSING if role is MISSING else ViolationKind.TYPE
        got = f"{role!r}" if type(role) is str and _ROLE_LIKE.match(role) else describe(role)
        errors.append(
            Violation(
                kind=kind,
                path=f"$.messages[{index}].role",
                expected=f"one of {', '.join(ROLES)}",
                got=got,
            )
        )
    content = message.get("content", MISSING)
    calls = message.get("tool_calls")
    if type(content) is str:
        pass
    elif content is MISSING or content is None:
        # an assistant turn that only calls tools carries no content
        if not (role == "assistant" and (calls or message.get("function_call"))):
            kind = ViolationKind.MISSING if content is MISSING else ViolationKind.NULL
            path = f"$.messages[{index}].content"
            errors.append(_violation(kind, path, "string or array", content))
    elif _is_array(content):
        for part_index, part in enumerate(content):
            if not isinstance(part, Mapping) or type(part.get("type")) is not str:
                path = f"$.messages[{index}].content[{part_index}]"
                errors.append(_violation(ViolationKind.TYPE, path, 'object with a "type"', part))
    else:
        path = f"$.messages[{index}].content"
        errors.append(_violation(ViolationKind.TYPE, path, "string or array", content))
    if calls is not None and not _is_array(calls):
        path = f"$.messages[{index}].tool_calls"
        errors.append(_violation(ViolationKind.TYPE, path, "array", calls))
    if role == "tool" and not _is_non_empty_str(message.get("tool_call_id")):
        value = message.get("tool_call_id", MISSING)
        kind = ViolationKind.MISSING if value is MISSING else ViolationKind.TYPE
        path = f"$.messages[{index}].tool_call_id"
        errors.append(_violation(kind, path, "non-empty string", value))


def _warnings(body: Mapping[str, Any], cautions: Sequence[str]) -> tuple[str, ...]:
    found = []
    for caution in cautions:
        names = _caution_fields(caution)
        if names and all(_lookup(body, name) not in (MISSING, None) for name in names):
            found.append(caution)
    if body.get("stream_options") is not None and body.get("stream") is not True:
        found.append(_STREAM_OPTIONS_WARNING)
    return tuple(found)


@functools.lru_cache(maxsize=256)
def _caution_fields(caution: str) -> tuple[str, ...]:
    """The fields a caution names before its colon (``temperature+top_p: ...``); none
    without a colon. Read once per caution text (a contract has a few)."""
    head, colon, _ = caution.partition(":")
    return tuple(name.strip() for name in head.split("+")) if colon else ()


def _lookup(body: Mapping[str, Any], dotted: str) -> object:
    """A top-level or dotted field (``stream_options.include_usage``); MISSING if absent."""
    if type(body) is dict and "." not in dotted:
        return body.get(dotted, MISSING)
    current: object = body
    for name in dotted.split("."):
        if not isinstance(current, Mapping) or name not in current:
            return MISSING
        current = current[name]
    return current


def _violation(kind: ViolationKind, path: str, expected: str, value: object) -> Violation:
    return Violation(kind=kind, path=path, expected=expected, got=describe(value))
