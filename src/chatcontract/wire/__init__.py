"""The wire layer: sans-IO parsing of what crosses the wire. Bytes in, values out, no I/O.

- :func:`parse_completion`: a non-streaming body against the contract's response paths.
- :class:`SSEDecoder`, :class:`StreamAssembler`, :class:`StreamParser`, :func:`parse_stream`:
  streamed completions and their completeness :class:`StreamVerdict`.
- :func:`parse_error_body`, :func:`is_error_envelope`: error bodies, JSON or not.
- :func:`check_request`: the request's field names and types (never its text).
- :func:`shape_fingerprint`, :func:`fingerprint_bytes`, :func:`union_of_shape_paths`: value-free
  shapes for drift detection.

Bad input from the wire never raises: problems come back as :class:`Violation` values.
"""

from __future__ import annotations

from chatcontract.wire.completion import (
    Completion,
    CompletionResult,
    ToolCall,
    Usage,
    parse_completion,
)
from chatcontract.wire.error_body import (
    BodyKind,
    ErrorBody,
    ErrorShape,
    error_from_document,
    is_error_envelope,
    parse_error_body,
)
from chatcontract.wire.fingerprint import (
    Fingerprint,
    fingerprint_bytes,
    shape_fingerprint,
    shape_paths,
    union_of_shape_paths,
)
from chatcontract.wire.request import RequestCheck, check_request, check_request_bytes
from chatcontract.wire.sse import SSEDecoder, SSEEvent
from chatcontract.wire.stream import (
    StreamAssembler,
    StreamParser,
    StreamResult,
    StreamVerdict,
    parse_stream,
)
from chatcontract.wire.violation import Violation, ViolationKind

__all__ = [
    "BodyKind",
    "Completion",
    "CompletionResult",
    "ErrorBody",
    "ErrorShape",
    "Fingerprint",
    "RequestCheck",
    "SSEDecoder",
    "SSEEvent",
    "StreamAssembler",
    "StreamParser",
    "StreamResult",
    "StreamVerdict",
    "ToolCall",
    "Usage",
    "Violation",
    "ViolationKind",
    "check_request",
    "check_request_bytes",
    "error_from_document",
    "fingerprint_bytes",
    "is_error_envelope",
    "parse_completion",
    "parse_error_body",
    "parse_stream",
    "shape_fingerprint",
    "shape_paths",
    "union_of_shape_paths",
]
