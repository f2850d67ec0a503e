"""The ``Failure`` value: every failure named, routed to an owner, with a retry decision."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from chatcontract.redact import redact_text

from .taxonomy import CATEGORY_TABLE, KINDS, Kind, RetryDecision

__all__ = ["FAILURE_KEYS", "Failure", "make_failure"]

#: The keys of ``Failure.to_dict()``, in order: the JSON of ``chatcontract classify``.
FAILURE_KEYS = (
    "kind",
    "category",
    "code",
    "status",
    "retry",
    "owner",
    "action",
    "message",
    "request_id",
)

_MESSAGE_LIMIT = 300


@dataclass(frozen=True, slots=True, kw_only=True)
class Failure:
    """What kind of failure happened, what it means, who acts, and whether to try again.

    Example::

        Failure(kind="api_error", category="model", code="model_not_found", status=503,
                retry="none", owner="application", action="check the configured model ...",
                message="no available channel for group default and model x (distributor)",
                request_id="20260205132859798638387SIHCnxzJ")
    """

    kind: Kind
    category: str
    code: str
    status: int | None
    retry: RetryDecision
    owner: str
    action: str
    message: str
    request_id: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown failure kind {self.kind!r}")
        if self.category not in CATEGORY_TABLE:
            raise ValueError(f"unknown failure category {self.category!r}")

    def to_dict(self) -> dict[str, Any]:
        """The classification as plain data, keys as in ``FAILURE_KEYS``."""
        return {key: getattr(self, key) for key in FAILURE_KEYS}

    def __str__(self) -> str:
        status = f" HTTP {self.status}" if self.status is not None else ""
        rid = f" (request id {self.request_id})" if self.request_id else ""
        return f"{self.kind}/{self.category}/{self.code}{status}: {self.message}{rid}"


def make_failure(
    *,
    kind: Kind,
    category: str,
    code: str,
    message: str,
    status: int | None = None,
    request_id: str | None = None,
    decision: RetryDecision | None = None,
    secrets: tuple[str, ...] = (),
) -> Failure:
    """A ``Failure`` with owner, action and decision from the taxonomy; the message redacted."""
    info = CATEGORY_TABLE[category]
    text = " ".join(redact_text(message, secrets).split())
    if len(text) > _MESSAGE_LIMIT:
        text = text[: _MESSAGE_LIMIT - 1] + "…"
    return Failure(
        kind=kind,
        category=category,
        code=code,
        status=status,
        retry=decision or info.decision,
        owner=info.owner,
        action=info.action,
        message=text,
        request_id=request_id,
    )
