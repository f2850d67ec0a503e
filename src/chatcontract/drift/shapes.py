"""Shape samples: the value-free facts of one response, and the sections they fall in."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from chatcontract.transport import Exchange

#: Shapes of bodies that are not JSON (they have no paths of their own).
EMPTY_BODY = "$:empty"
NON_JSON_BODY = "$:non_json"

_RESPONSE, _STREAM, _USAGE, _ERROR = "response", "stream", "usage", "error:"
_SECTION_NAMES = {_RESPONSE: "response", _STREAM: "stream chunk", _USAGE: "usage"}
_USAGE_OBJECT = "usage:object"


@dataclass(frozen=True, slots=True, kw_only=True)
class ShapeSample:
    """The value-free facts of one response that drift detection compares.

    ``paths`` are the body's shape entries (``choices[].message.content:string``), the union
    of the chunk shapes for a stream, or ``$:empty`` / ``$:non_json`` for a body without JSON.
    """

    status: int
    stream: bool
    paths: tuple[str, ...]
    finish_reason: str | None = None
    model: str | None = None
    in_band_error: bool = False


def response_shape(exchange: Exchange) -> tuple[str, ...]:
    """The shape entries of an exchange's response (``()`` when there was no response)."""
    response = exchange.response
    if response is None:
        return ()
    paths = tuple(getattr(response, "shape_paths", ()) or ())
    if paths:
        return paths
    if response.stream_verdict is not None:
        return ()  # a stream without a decodable chunk: the classifier already says why
    return (EMPTY_BODY,) if response.body_bytes == 0 else (NON_JSON_BODY,)


def sample_of(exchange: Exchange) -> ShapeSample | None:
    """The :class:`ShapeSample` of an exchange, or None when no response came back."""
    response = exchange.response
    if response is None:
        return None
    failure = exchange.failure
    success_status = 200 <= response.status < 300
    return ShapeSample(
        status=response.status,
        stream=response.stream_verdict is not None,
        paths=response_shape(exchange),
        finish_reason=response.finish_reason,
        model=response.model,
        in_band_error=success_status and failure is not None and failure.kind == "api_error",
    )


def _path_of(entry: str) -> str:
    return entry.rpartition(":")[0]


def _is_usage(entry: str) -> bool:
    path = _path_of(entry)
    return path == "usage" or path.startswith(("usage.", "usage["))


def _sections(sample: ShapeSample) -> dict[str, tuple[str, ...]]:
    """The sections a sample contributes to, with the entries of each."""
    if not sample.paths:
        return {}
    if sample.in_band_error or not 200 <= sample.status < 300:
        return {f"{_ERROR}{sample.status}": sample.paths}
    body = tuple(entry for entry in sample.paths if not _is_usage(entry))
    sections = {(_STREAM if sample.stream else _RESPONSE): body}
    if _USAGE_OBJECT in sample.paths:  # ``usage: null`` chunks say nothing about its shape
        sections[_USAGE] = tuple(
            entry for entry in sample.paths if _is_usage(entry) and entry != "usage:null"
        )
    return sections


def _ordered(entries: Iterable[str]) -> list[str]:
    """Parents right before their children (the order of ``wire.shape_paths``)."""
    return sorted(entries, key=lambda entry: entry.rpartition(":")[::2])


def _error_order(name: str) -> tuple[int, str]:
    suffix = name[len(_ERROR) :]
    return (int(suffix) if suffix.isdigit() else 0, name)
