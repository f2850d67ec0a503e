"""``contract lint``: errors (the file cannot be used) and warnings (it can, but should not be)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from ._declare import SECRET_RE as _SECRET_RE
from .loader import check_document, contract_from_document

__all__ = ["REVIEW_MAX_AGE_DAYS", "LintFinding", "lint_document"]

#: The default review interval (the contract's ``review_every_days``): providers change error
#: codes and defaults.
REVIEW_MAX_AGE_DAYS = 90


@dataclass(frozen=True, slots=True, kw_only=True)
class LintFinding:
    """One lint result: ``error`` makes the file unusable, ``warning`` asks for attention."""

    level: Literal["error", "warning"]
    message: str

    def __str__(self) -> str:
        return f"{self.level}: {self.message}"


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, str):
        yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _strings(item, f"{path}[{index}]")


def lint_document(doc: object, *, today: dt.date | None = None) -> list[LintFinding]:
    """Every problem of a contract document, errors first.

    Warnings: no owner, a review older than ``review_every_days`` (or none), no reference
    URL, a value that looks like a secret (the secret belongs in the environment).
    """
    findings = [LintFinding(level="error", message=m) for m in check_document(doc)]
    if isinstance(doc, Mapping):
        for path, text in _strings(doc, ""):
            if _SECRET_RE.search(text):
                findings.append(
                    LintFinding(
                        level="warning",
                        message=f"{path}: looks like a secret; remove it and list the environment "
                        "variable that holds it under auth.env",
                    )
                )
    if any(f.level == "error" for f in findings) or not isinstance(doc, Mapping):
        return findings
    contract = contract_from_document(doc)
    today = today or dt.date.today()
    if not contract.owner.strip():
        findings.append(
            LintFinding(level="warning", message="owner: empty; name the team that gets the alerts")
        )
    if contract.reviewed_on is None:
        findings.append(
            LintFinding(level="warning", message="reviewed_on: missing; write the review date")
        )
    else:
        age = (today - contract.reviewed_on).days
        if age > contract.review_every_days:
            findings.append(
                LintFinding(
                    level="warning",
                    message=f"reviewed_on: {contract.reviewed_on.isoformat()} is {age} days old "
                    f"(more than review_every_days: {contract.review_every_days}); re-check the "
                    "reference and update it",
                )
            )
        elif age < 0:
            findings.append(
                LintFinding(
                    level="warning",
                    message=f"reviewed_on: {contract.reviewed_on.isoformat()} is in the future",
                )
            )
    if not contract.reference_url.strip():
        findings.append(
            LintFinding(
                level="warning",
                message="reference_url: missing; write the API reference page you checked",
            )
        )
    return findings
