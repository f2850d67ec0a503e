"""Failure taxonomy and classification: pure, no I/O. Every failure named, routed, decided."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .classify import (
    REQUEST_ID_HEADERS,
    classify,
    classify_error_body,
    classify_received,
    classify_response,
    classify_stream,
    semantic_failure,
)
from .failure import FAILURE_KEYS, Failure, make_failure
from .taxonomy import (
    CATEGORY_TABLE,
    KINDS,
    OWNERS,
    RULES,
    CategoryInfo,
    Kind,
    RetryDecision,
    Rule,
    decision_for,
    rule_of,
)

if TYPE_CHECKING:
    from .transport_errors import (
        SILENCE_CODES,
        DeadlineExceeded,
        Silence,
        classify_exception,
        silence_failure,
    )

_LAZY_TRANSPORT = frozenset(
    {"DeadlineExceeded", "SILENCE_CODES", "Silence", "classify_exception", "silence_failure"}
)


def __getattr__(name: str) -> Any:
    # The httpx2 boundary loads on first use: the pure modules (``chatcontract.exchange``)
    # import the taxonomy without pulling in the network stack.
    if name in _LAZY_TRANSPORT:
        from . import transport_errors

        return getattr(transport_errors, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "CATEGORY_TABLE",
    "FAILURE_KEYS",
    "KINDS",
    "OWNERS",
    "REQUEST_ID_HEADERS",
    "RULES",
    "SILENCE_CODES",
    "CategoryInfo",
    "DeadlineExceeded",
    "Failure",
    "Kind",
    "RetryDecision",
    "Rule",
    "Silence",
    "classify",
    "classify_error_body",
    "classify_exception",
    "classify_received",
    "classify_response",
    "classify_stream",
    "decision_for",
    "make_failure",
    "rule_of",
    "semantic_failure",
    "silence_failure",
]
