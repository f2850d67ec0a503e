"""Failure taxonomy and classification: pure, no I/O. Every failure named, routed, decided."""

from __future__ import annotations

from .classify import (
    REQUEST_ID_HEADERS,
    classify,
    classify_error_body,
    classify_response,
    classify_stream,
    semantic_failure,
)
from .failure import FAILURE_KEYS, Failure, make_failure
from .taxonomy import CATEGORY_TABLE, KINDS, OWNERS, CategoryInfo, Decision, Kind, decision_for
from .transport_errors import (
    SILENCE_CODES,
    DeadlineExceeded,
    Silence,
    classify_exception,
    silence_failure,
)

__all__ = [
    "CATEGORY_TABLE",
    "FAILURE_KEYS",
    "KINDS",
    "OWNERS",
    "REQUEST_ID_HEADERS",
    "SILENCE_CODES",
    "CategoryInfo",
    "DeadlineExceeded",
    "Decision",
    "Failure",
    "Kind",
    "Silence",
    "classify",
    "classify_error_body",
    "classify_exception",
    "classify_response",
    "classify_stream",
    "decision_for",
    "make_failure",
    "semantic_failure",
    "silence_failure",
]
