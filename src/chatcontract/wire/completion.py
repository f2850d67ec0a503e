"""Non-streaming completion bodies: strict where the application reads, tolerant elsewhere.

:func:`parse_completion` checks the paths the contract says the application reads (present,
right type, ``choices`` a non-empty array) and the JSON types of every field it knows, and
tolerates the rest: unknown fields, empty ``{}`` detail objects, ``null`` ``logprobs``,
``refusal``, ``annotations``, ``service_tier``, ``usage.latency_checkpoint``,
``claude_cache_creation_*``, ``reasoning_content``. It never raises for bad input: problems are
:class:`~chatcontract.wire.violation.Violation` values::

    result = parse_completion(body, contract=contract)
    if result.ok:
        answer = result.completion.content
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from msgspec import Struct, field

from chatcontract.contract.model import Contract, ResponseSpec
from chatcontract.wire._body import Body, decode_body
from chatcontract.wire._json import OUT_OF_RANGE_EXPECTED, loads, out_of_range
from chatcontract.wire.error_body import ErrorBody, error_from_document, is_error_envelope
from chatcontract.wire.known_types import JsonType, level
from chatcontract.wire.required import check_required, compile_required
from chatcontract.wire.violation import MISSING, Violation, ViolationKind, describe

__all__ = [
    "Completion",
    "CompletionResult",
    "ToolCall",
    "Usage",
    "parse_completion",
    "parse_usage",
]

_DEFAULT_SPEC = ResponseSpec()


class ToolCall(Struct, frozen=True, kw_only=True, gc=False):
    """One tool call: ``function.name`` and its JSON ``arguments`` text (unparsed)."""

    index: int
    id: str | None
    type: str | None
    name: str | None
    arguments: str


class Usage(Struct, frozen=True, kw_only=True, gc=False):
    """Token counts; ``details`` holds every other usage member as sent (detail objects,
    ``claude_cache_creation_*``, ``latency_checkpoint``, ...)."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    details: Mapping[str, Any] = field(default_factory=dict)


class Completion(Struct, frozen=True, kw_only=True):
    """The parts of a completion an application reads, from ``choices[0]`` and the top level.

    A field whose value had the wrong type is ``None`` here (and reported as a violation).
    """

    id: str | None
    model: str | None
    created: int | None
    system_fingerprint: str | None
    content: str | None
    refusal: str | None
    reasoning_content: str | None
    tool_calls: tuple[ToolCall, ...]
    finish_reason: str | None
    usage: Usage | None
    choice_count: int


class CompletionResult(Struct, frozen=True, kw_only=True):
    """The outcome of parsing a completion body.

    ``completion`` is filled whenever the body is a JSON object that is not an error
    envelope, even with violations (best effort, for diagnostics); ``error`` holds the parsed
    envelope when a 2xx body carried ``{"error": …}`` instead of a completion.
    """

    completion: Completion | None
    violations: tuple[Violation, ...] = ()
    error: ErrorBody | None = None

    @property
    def ok(self) -> bool:
        """True when the body is a completion that honours the contract."""
        return not self.violations and self.error is None and self.completion is not None


# --------------------------------------------------------------------------- reading

_TOP = level("")  # id, object, model, created, system_fingerprint
_CHOICE = level("choices[]")  # index, finish_reason
_MESSAGE = level("choices[].message")  # role, content, refusal, reasoning_content
_TOOL_CALL = level("choices[].message.tool_calls[]")  # id, type
_FUNCTION = level("choices[].message.tool_calls[].function")  # name, arguments
_ABSENT_KINDS = {"missing": ViolationKind.MISSING, "empty array": ViolationKind.EMPTY}
_STANDARD_COUNTS = ("prompt_tokens", "completion_tokens", "total_tokens")


def _fields(
    obj: dict[str, Any], table: tuple[tuple[str, JsonType], ...], where: str, out: list[Violation]
) -> list[Any]:
    """Read the ``table`` members of ``obj``; a wrong type is reported and read as None."""
    values = []
    for name, kind in table:
        value = obj.get(name)
        if type(value) not in kind.types:
            out.append(_type_violation(f"{where}.{name}", kind.label, value))
            value = None
        values.append(value)
    return values


def _type_violation(path: str, expected: str, value: object) -> Violation:
    return Violation(kind=ViolationKind.TYPE, path=path, expected=expected, got=describe(value))


# --------------------------------------------------------------------------- parsing


def parse_completion(body: bytes, *, contract: Contract | None = None) -> CompletionResult:
    """Parse a non-streaming chat completion body against ``contract``.

    Args:
        body: the raw response body.
        contract: its ``response.required_paths`` must be present with the right type;
            ``None`` uses the OpenAI-compatible defaults of ``ResponseSpec()``.

    Returns a :class:`CompletionResult`; never raises for any ``body``.
    """
    typed = decode_body(body)
    if typed is not None:
        fast = _typed_completion(typed)
        if fast is not None:
            required = (contract.response if contract is not None else _DEFAULT_SPEC).required_paths
            if _fast_plan(required) <= fast[1]:
                return CompletionResult(completion=fast[0])
    doc, error_at = loads(body)
    if error_at is not None:
        if not body.strip():
            return _rejected(ViolationKind.EMPTY_BODY, "JSON", "empty body")
        wide = out_of_range(body, error_at)
        if wide is not None:  # valid JSON, but a number no JSON decoder holds: name it
            path, length = wide
            violation = Violation(
                kind=ViolationKind.INVALID_JSON,
                path=f"${path}",
                expected=OUT_OF_RANGE_EXPECTED,
                got=f"a {length}-character number at byte {error_at}",
            )
            return CompletionResult(completion=None, violations=(violation,))
        return _rejected(ViolationKind.INVALID_JSON, "JSON", f"invalid JSON at byte {error_at}")
    if type(doc) is not dict:
        return _rejected(ViolationKind.NOT_OBJECT, "a completion object", describe(doc))
    if "error" in doc and is_error_envelope(doc):
        pattern = contract.errors.request_id_pattern if contract is not None else None
        error = error_from_document(doc, request_id_pattern=pattern)
        return CompletionResult(completion=None, violations=(_ENVELOPE_VIOLATION,), error=error)
    required = required_paths_of(contract)
    fast = _fast_completion(doc)
    if fast is not None:
        completion, usage_complete = fast
        if _fast_plan(required) <= usage_complete:
            return CompletionResult(completion=completion)
        out: list[Violation] = []
    else:
        out = []
        completion = _read_completion(doc, out)
    check_required(doc, compile_required(required), out)
    return CompletionResult(completion=completion, violations=tuple(out))


def _parse_document_slowly(
    doc: dict[str, Any], required_paths: tuple[str, ...]
) -> CompletionResult:
    """The full walk alone (no fast path); the equivalence tests compare both."""
    out: list[Violation] = []
    completion = _read_completion(doc, out)
    check_required(doc, compile_required(required_paths), out)
    return CompletionResult(completion=completion, violations=tuple(out))


_ENVELOPE_VIOLATION = Violation(
    kind=ViolationKind.ERROR_ENVELOPE,
    path="$",
    expected="a completion",
    got="an error envelope",
)


def _rejected(kind: ViolationKind, expected: str, got: str) -> CompletionResult:
    violation = Violation(kind=kind, path="$", expected=expected, got=got)
    return CompletionResult(completion=None, violations=(violation,))


def _read_completion(doc: dict[str, Any], out: list[Violation]) -> Completion:
    id_, _object, model, created, fingerprint = _fields(doc, _TOP, "$", out)
    choices = doc.get("choices", MISSING)
    first: list[Any] = [None, None, None, None, None, ()]
    if type(choices) is not list or not choices:
        out.append(
            Violation(
                kind=_ABSENT_KINDS.get(describe(choices), ViolationKind.TYPE),
                path="$.choices",
                expected="non-empty array",
                got=describe(choices),
            )
        )
        choices = ()
    for index, choice in enumerate(choices):
        read = _read_choice(choice, f"$.choices[{index}]", out)
        if index == 0:
            first = read
    content, refusal, reasoning, finish_reason, _role, tool_calls = first
    return Completion(
        id=id_,
        model=model,
        created=created,
        system_fingerprint=fingerprint,
        content=content,
        refusal=refusal,
        reasoning_content=reasoning,
        tool_calls=tool_calls,
        finish_reason=finish_reason,
        usage=_read_usage(doc.get("usage"), "$.usage", out),
        choice_count=len(choices),
    )


def _read_choice(choice: object, where: str, out: list[Violation]) -> list[Any]:
    """``[content, refusal, reasoning_content, finish_reason, role, tool_calls]`` of a choice."""
    if type(choice) is not dict:
        out.append(_type_violation(where, "object", choice))
        return [None, None, None, None, None, ()]
    _index, finish_reason = _fields(choice, _CHOICE, where, out)
    message = choice.get("message")
    if message is None:
        return [None, None, None, finish_reason, None, ()]
    if type(message) is not dict:
        out.append(_type_violation(f"{where}.message", "object", message))
        return [None, None, None, finish_reason, None, ()]
    role, content, refusal, reasoning = _fields(message, _MESSAGE, f"{where}.message", out)
    tool_calls = _read_tool_calls(message.get("tool_calls"), f"{where}.message.tool_calls", out)
    return [content, refusal, reasoning, finish_reason, role, tool_calls]


def _read_tool_calls(value: object, where: str, out: list[Violation]) -> tuple[ToolCall, ...]:
    if value is None:
        return ()
    if type(value) is not list:
        out.append(_type_violation(where, "array or null", value))
        return ()
    calls = []
    for index, item in enumerate(value):
        at = f"{where}[{index}]"
        if type(item) is not dict:
            out.append(_type_violation(at, "object", item))
            continue
        call_id, call_type = _fields(item, _TOOL_CALL, at, out)
        function = item.get("function")
        name = arguments = None
        if type(function) is dict:
            name, arguments = _fields(function, _FUNCTION, f"{at}.function", out)
        elif function is not None:
            out.append(_type_violation(f"{at}.function", "object", function))
        calls.append(
            ToolCall(index=index, id=call_id, type=call_type, name=name, arguments=arguments or "")
        )
    return tuple(calls)


def parse_usage(value: object, where: str, out: list[Violation]) -> Usage | None:
    """Read a ``usage`` object; every ``*_tokens`` member must be a non-negative integer.

    ``null`` or absent gives None. Violations are appended to ``out`` with paths under
    ``where`` (``$.usage`` in a body, ``$[chunk 7].usage`` in a stream).
    """
    return _read_usage(value, where, out)


def _read_usage(value: object, where: str, out: list[Violation]) -> Usage | None:
    if value is None:
        return None
    if type(value) is not dict:
        out.append(_type_violation(where, "object or null", value))
        return None
    details = {}
    for name, count in value.items():
        if name.endswith("_tokens") and count is not None and (type(count) is not int or count < 0):
            out.append(_type_violation(f"{where}.{name}", "non-negative integer", count))
        if name not in _STANDARD_COUNTS:
            details[name] = count
    prompt = value.get("prompt_tokens")
    completion = value.get("completion_tokens")
    total = value.get("total_tokens")
    return Usage(
        prompt_tokens=prompt if type(prompt) is int and prompt >= 0 else None,
        completion_tokens=completion if type(completion) is int and completion >= 0 else None,
        total_tokens=total if type(total) is int and total >= 0 else None,
        details=details,
    )


# --------------------------------------------------------------------------- fast path

#: Required paths the fast path proves present and non-null by accepting a body, and those
#: it proves when ``usage`` carries the three standard counts.
_FAST_BASE = frozenset(
    {
        "id",
        "model",
        "choices",
        "choices[0]",
        "choices[0].message",
        "choices[0].message.content",
        "choices[0].finish_reason",
    }
)
_FAST_WITH_USAGE = _FAST_BASE | {
    "usage",
    "usage.prompt_tokens",
    "usage.completion_tokens",
    "usage.total_tokens",
}


@lru_cache(maxsize=64)
def _fast_plan(required_paths: tuple[str, ...]) -> int:
    """0: the fast path proves every required path; 1: it does when usage is complete;
    2: the required paths must be checked one by one."""
    wanted = frozenset(required_paths)
    if wanted <= _FAST_BASE:
        return 0
    return 1 if wanted <= _FAST_WITH_USAGE else 2


def required_paths_of(contract: Contract | None) -> tuple[str, ...]:
    """The response paths ``contract`` requires (the defaults without one)."""
    return (contract.response if contract is not None else _DEFAULT_SPEC).required_paths


def _typed_completion(body: Body) -> tuple[Completion, bool] | None:
    """What :func:`_fast_completion` gives for the same document, from its typed decode."""
    raw_usage = body.usage
    usage = None
    usage_complete = False
    if raw_usage is not None:
        read = _fast_usage(raw_usage)
        if read is None:
            return None
        usage, usage_complete = read
    choice = body.choices[0]
    message = choice.message
    completion = Completion(
        id=body.id,
        model=body.model,
        created=body.created,
        system_fingerprint=body.system_fingerprint,
        content=message.content,
        refusal=message.refusal,
        reasoning_content=message.reasoning_content,
        tool_calls=(),
        finish_reason=choice.finish_reason,
        usage=usage,
        choice_count=1,
    )
    return completion, usage_complete


#: The members besides the three counts that most usage objects carry (detail objects).
_USUAL_DETAILS = frozenset({"prompt_tokens_details", "completion_tokens_details"})


def _fast_usage(raw_usage: dict[str, Any]) -> tuple[Usage, bool] | None:
    """The fast path's reading of a ``usage`` object: None when a ``*_tokens`` member is
    neither null nor a non-negative integer (the full walk reports it)."""
    details = dict(raw_usage)  # every other member, in order
    prompt = details.pop("prompt_tokens", None)
    completion = details.pop("completion_tokens", None)
    total = details.pop("total_tokens", None)
    if (
        (prompt is not None and (type(prompt) is not int or prompt < 0))
        or (completion is not None and (type(completion) is not int or completion < 0))
        or (total is not None and (type(total) is not int or total < 0))
    ):
        return None
    if not details.keys() <= _USUAL_DETAILS:  # other members: any of them may be a count
        for name, count in details.items():
            if (
                name.endswith("_tokens")
                and count is not None
                and (type(count) is not int or count < 0)
            ):
                return None
    complete = prompt is not None and completion is not None and total is not None
    usage = Usage(
        prompt_tokens=prompt, completion_tokens=completion, total_tokens=total, details=details
    )
    return usage, complete


def _fast_completion(doc: dict[str, Any]) -> tuple[Completion, bool] | None:
    """Read the common shape in one pass, or return None at the first unusual thing.

    The common shape: one choice, string ``content`` and ``finish_reason``, no tool calls,
    every known field of the right type, ``usage`` absent, null or well formed. Anything
    else goes through the full walk, which also produces the violations; the fast path
    never reports, so it must accept only documents the full walk finds clean (a property
    test checks that both agree).
    """
    get = doc.get
    id_ = get("id")
    model = get("model")
    created = get("created")
    obj = get("object")
    fingerprint = get("system_fingerprint")
    choices = get("choices")
    if (
        type(id_) is not str
        or type(model) is not str
        or (created is not None and type(created) is not int)
        or (obj is not None and type(obj) is not str)
        or (fingerprint is not None and type(fingerprint) is not str)
        or type(choices) is not list
        or len(choices) != 1
    ):
        return None
    choice = choices[0]
    if type(choice) is not dict:
        return None
    finish_reason = choice.get("finish_reason")
    index = choice.get("index")
    message = choice.get("message")
    if (
        type(finish_reason) is not str
        or (index is not None and type(index) is not int)
        or type(message) is not dict
    ):
        return None
    content = message.get("content")
    role = message.get("role")
    refusal = message.get("refusal")
    reasoning = message.get("reasoning_content")
    tool_calls = message.get("tool_calls")
    if (
        type(content) is not str
        or (role is not None and type(role) is not str)
        or (refusal is not None and type(refusal) is not str)
        or (reasoning is not None and type(reasoning) is not str)
        or (tool_calls is not None and tool_calls != [])
    ):
        return None
    raw_usage = get("usage")
    usage = None
    usage_complete = False
    if raw_usage is not None:
        if type(raw_usage) is not dict:
            return None
        read = _fast_usage(raw_usage)
        if read is None:
            return None
        usage, usage_complete = read
    return (
        Completion(
            id=id_,
            model=model,
            created=created,
            system_fingerprint=fingerprint,
            content=content,
            refusal=refusal,
            reasoning_content=reasoning,
            tool_calls=(),
            finish_reason=finish_reason,
            usage=usage,
            choice_count=1,
        ),
        usage_complete,
    )
