"""Request validation, in the order and with the words each provider uses.

CometAPI (new-api) decodes the body three times: the distributor reads ``model`` loosely (a broken
body or a non-string model is a 400 "Invalid request"), picks a channel (unknown model → 503), then
the relay decodes the typed ``GeneralOpenAIRequest`` (a wrong type is a Go ``json: cannot
unmarshal ...`` error, served as 500 ``invalid_request``) and checks ``messages`` (500 as well).
OpenAI checks types, then required parameters, then ranges, then whether the model exists.

Each flavor's order is a tuple of small check functions (``CHECKS``): a reader can see it at once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import orjson

from chatcontract.simulator.catalogue import Catalogue
from chatcontract.simulator.flavors import Flavor, Situation

__all__ = ["CHECKS", "ChatRequest", "Problem", "parse_chat_request"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ChatRequest:
    """The parts of a valid chat completions request the simulator acts on."""

    model: str
    messages: tuple[Any, ...]
    stream: bool = False
    include_usage: bool = False
    max_tokens: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    """A request the provider would refuse, and the values its error message quotes."""

    situation: Situation
    params: Mapping[str, str] = field(default_factory=dict)


Kind = Literal["string", "integer", "uint", "number", "boolean", "array", "object"]


@dataclass(frozen=True, slots=True)
class FieldType:
    """A request field's JSON kind and the Go type new-api decodes it into."""

    kind: Kind
    go_type: str


# The typed fields of new-api's GeneralOpenAIRequest that the simulator checks.
FIELD_TYPES: Mapping[str, FieldType] = {
    "model": FieldType("string", "string"),
    "messages": FieldType("array", "[]dto.Message"),
    "stream": FieldType("boolean", "bool"),
    "stream_options": FieldType("object", "dto.StreamOptions"),
    "max_tokens": FieldType("uint", "uint"),
    "max_completion_tokens": FieldType("uint", "uint"),
    "n": FieldType("integer", "int"),
    "temperature": FieldType("number", "float64"),
    "top_p": FieldType("number", "float64"),
    "presence_penalty": FieldType("number", "float64"),
    "frequency_penalty": FieldType("number", "float64"),
    "seed": FieldType("number", "float64"),
    "user": FieldType("string", "string"),
    "tools": FieldType("array", "[]dto.ToolCallRequest"),
    "response_format": FieldType("object", "dto.ResponseFormat"),
    "logprobs": FieldType("boolean", "bool"),
    "top_logprobs": FieldType("integer", "int"),
    "reasoning_effort": FieldType("string", "string"),
}

_ACCEPTS: Mapping[Kind, Callable[[object], bool]] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "uint": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "array": lambda v: isinstance(v, list),
    "object": lambda v: isinstance(v, dict),
}

_EXPECTED_WORDS: Mapping[Kind, str] = {
    "string": "a string",
    "integer": "an integer",
    "uint": "an integer",
    "number": "a number",
    "boolean": "a boolean",
    "array": "an array",
    "object": "an object",
}

# Fields OpenAI requires to be at least 1 (new-api's uint has no such rule, 0 means "unset").
_POSITIVE = ("max_tokens", "max_completion_tokens", "n")


_GO_KINDS: Mapping[type, str] = {str: "string", list: "array", dict: "object"}
_OPENAI_KINDS: Mapping[type, str] = {str: "a string", list: "an array", dict: "an object"}


def _go_kind(value: object) -> str:
    """How Go's ``UnmarshalTypeError`` names a JSON value (numbers quote their literal)."""
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return f"number {orjson.dumps(value).decode()}"
    return _GO_KINDS.get(type(value), "value")


def _openai_kind(value: object) -> str:
    """How OpenAI names the type it got."""
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    return _OPENAI_KINDS.get(type(value), "a value")


def _wrong_fields(payload: Mapping[str, Any]) -> list[tuple[str, FieldType, object]]:
    """Known fields with a non-null value of the wrong kind, in document order (as Go reports)."""
    wrong = []
    for name, value in payload.items():
        ftype = FIELD_TYPES.get(name)
        if ftype is not None and value is not None and not _ACCEPTS[ftype.kind](value):
            wrong.append((name, ftype, value))
    return wrong


def _stray_message(payload: Mapping[str, Any]) -> tuple[int, object] | None:
    """The first element of ``messages`` that is not an object."""
    messages = payload.get("messages")
    if not isinstance(messages, list):
        return None
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            return index, message
    return None


Check = Callable[[Mapping[str, Any], Catalogue], Problem | None]


def _comet_model_decodes(payload: Mapping[str, Any], _: Catalogue) -> Problem | None:
    model = payload.get("model")
    if model is None or isinstance(model, str):
        return None
    detail = (
        f"json: cannot unmarshal {_go_kind(model)} into Go struct field "
        "ModelRequest.model of type string"
    )
    return Problem(situation=Situation.MALFORMED_JSON, params={"detail": detail})


def _model_present(payload: Mapping[str, Any], _: Catalogue) -> Problem | None:
    return None if payload.get("model") else Problem(situation=Situation.MISSING_MODEL)


def _model_known(payload: Mapping[str, Any], catalogue: Catalogue) -> Problem | None:
    model = str(payload["model"])
    return (
        None
        if model in catalogue
        else Problem(situation=Situation.UNKNOWN_MODEL, params={"model": model})
    )


def _go_problem(path: str, go_type: str, value: object, *, field: str) -> Problem:
    detail = (
        f"json: cannot unmarshal {_go_kind(value)} into Go struct field {path} of type {go_type}"
    )
    return Problem(situation=Situation.INVALID_FIELD, params={"detail": detail, "field": field})


def _go_types(payload: Mapping[str, Any], _: Catalogue) -> Problem | None:
    for name, ftype, value in _wrong_fields(payload):
        return _go_problem(f"GeneralOpenAIRequest.{name}", ftype.go_type, value, field=name)
    for name in ("max_tokens", "max_completion_tokens"):
        value = payload.get(name)
        if isinstance(value, int) and value < 0:  # Go's uint takes no negative number
            return _go_problem(f"GeneralOpenAIRequest.{name}", "uint", value, field=name)
    stray = _stray_message(payload)
    if stray is not None:
        path = "GeneralOpenAIRequest.messages"
        return _go_problem(path, "dto.Message", stray[1], field="messages")
    options = payload.get("stream_options")
    if isinstance(options, dict) and not isinstance(
        options.get("include_usage", False), bool | None
    ):
        path = "StreamOptions.stream_options.include_usage"
        return _go_problem(path, "bool", options["include_usage"], field="stream_options")
    return None


def _openai_types(payload: Mapping[str, Any], _: Catalogue) -> Problem | None:
    for name, ftype, value in _wrong_fields(payload):
        return _openai_type_problem(name, _EXPECTED_WORDS[ftype.kind], value)
    stray = _stray_message(payload)
    if stray is not None:
        return _openai_type_problem(f"messages[{stray[0]}]", "an object", stray[1])
    options = payload.get("stream_options")
    if isinstance(options, dict) and not isinstance(
        options.get("include_usage", False), bool | None
    ):
        return _openai_type_problem(
            "stream_options.include_usage", "a boolean", options["include_usage"]
        )
    return None


def _openai_type_problem(name: str, expected: str, value: object) -> Problem:
    return Problem(
        situation=Situation.INVALID_FIELD,
        params={"field": name, "expected": expected, "got": _openai_kind(value)},
    )


def _messages_present(payload: Mapping[str, Any], _: Catalogue) -> Problem | None:
    if "messages" not in payload or payload["messages"] is None:
        return Problem(situation=Situation.MISSING_MESSAGES)
    if not payload["messages"]:
        return Problem(situation=Situation.EMPTY_MESSAGES)
    return None


def _openai_ranges(payload: Mapping[str, Any], _: Catalogue) -> Problem | None:
    for name in _POSITIVE:
        value = payload.get(name)
        if isinstance(value, int) and value < 1:
            return Problem(
                situation=Situation.BELOW_MINIMUM, params={"field": name, "value": str(value)}
            )
    return None


CHECKS: Mapping[str, tuple[Check, ...]] = {
    "cometapi": (_comet_model_decodes, _model_present, _model_known, _go_types, _messages_present),
    "openai": (_openai_types, _model_present, _messages_present, _openai_ranges, _model_known),
}


def _max_tokens(payload: Mapping[str, Any]) -> int | None:
    """``max_completion_tokens`` wins over ``max_tokens``; 0 means unset (Go's zero value)."""
    for name in ("max_completion_tokens", "max_tokens"):
        value = payload.get(name)
        if isinstance(value, int) and value > 0:
            return value
    return None


def parse_chat_request(flavor: Flavor, body: bytes) -> ChatRequest | Problem:
    """Validate a chat completions body as ``flavor`` does.

    Returns the request, or the ``Problem`` the provider would answer with.
    """
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        payload = None
    if not isinstance(payload, dict):
        return Problem(
            situation=Situation.MALFORMED_JSON, params={"detail": "invalid JSON request body"}
        )
    for check in CHECKS[flavor.name]:
        problem = check(payload, flavor.catalogue)
        if problem is not None:
            return problem
    options = payload.get("stream_options")
    return ChatRequest(
        model=payload["model"],
        messages=tuple(payload["messages"]),
        stream=payload.get("stream") is True,
        include_usage=isinstance(options, dict) and options.get("include_usage") is True,
        max_tokens=_max_tokens(payload),
    )
