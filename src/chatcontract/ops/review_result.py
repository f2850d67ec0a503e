"""A review's outcome: the changes, what could not be told, and its human rendering."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from ._docs_fingerprint import DocumentFacts

__all__ = ["ReviewChange", "ReviewResult", "Verdict", "render_review_text", "review_checklist_line"]

Verdict = Literal["unchanged", "changed", "unknown"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ReviewChange:
    """One thing that moved since the last passing validation, and the clause it touches."""

    source: Literal["contract", "versions", "documentation", "review_date"]
    kind: str
    clause: str
    detail: str
    diff: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "source": self.source,
            "kind": self.kind,
            "clause": self.clause,
            "detail": self.detail,
        }
        if self.diff:
            out["diff"] = list(self.diff)
        return out


@dataclass(frozen=True, slots=True, kw_only=True)
class ReviewResult:
    """The outcome of one review: changes, what could not be told, and notes."""

    contract_name: str
    validated_at: str | None
    changes: tuple[ReviewChange, ...] = ()
    unknown: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    documentation: DocumentFacts | None = None
    baseline: DocumentFacts | None = None
    run_id: str | None = None
    accepted: tuple[Mapping[str, Any], ...] = field(default_factory=tuple)

    @property
    def verdict(self) -> Verdict:
        if self.changes:
            return "changed"
        return "unknown" if self.unknown else "unchanged"

    @property
    def exit_code(self) -> int:
        return {"unchanged": 0, "changed": 1, "unknown": 2}[self.verdict]

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "exit_code": self.exit_code,
            "contract": self.contract_name,
            "validated_at": self.validated_at,
            "changes": [change.to_dict() for change in self.changes],
            "unknown": list(self.unknown),
            "notes": list(self.notes),
            "documentation": None
            if self.documentation is None
            else _doc_summary(self.documentation),
            "accepted": [dict(entry) for entry in self.accepted],
        }


def _doc_summary(facts: DocumentFacts) -> dict[str, str]:
    return {
        "url": facts.url,
        "kind": facts.kind,
        "fingerprint": facts.fingerprint,
        "summary": facts.summary,
    }


def render_review_text(result: ReviewResult, *, contract_path: str = "") -> str:
    """Human lines: a heading, ``!`` per change with its clause, ``?`` per unknown, notes."""
    where = f" ({contract_path})" if contract_path else ""
    since = f"the passing validate of {result.validated_at}" if result.validated_at else "validate"
    lines = [f"review of {result.contract_name}{where} against {since}"]
    for change in result.changes:
        lines.append(f"  ! [{change.clause}] {change.detail}")
        lines.extend(f"      {line}" for line in change.diff)
    lines.extend(f"  ? {reason}" for reason in result.unknown)
    lines.extend(f"  ok {note}" for note in result.notes)
    if result.verdict == "changed":
        lines.append(
            f"verdict: CHANGED ({len(result.changes)}): run 'chatcontract validate', or record a "
            "harmless documentation change with 'chatcontract review --accept --by NAME'"
        )
    elif result.verdict == "unknown":
        count = len(result.unknown)
        lines.append(f"verdict: CANNOT TELL ({count} reason{'s' if count > 1 else ''} above)")
    else:
        lines.append("verdict: UNCHANGED since the last passing validate")
    return "\n".join(lines) + "\n"


def review_checklist_line(result: ReviewResult) -> tuple[Literal["passed", "open"], str]:
    """The checklist's review line from an offline :func:`review`."""
    if result.verdict == "unchanged":
        return "passed", "; ".join(result.notes)
    parts = [f"[{c.clause}] {c.detail}" for c in result.changes] + list(result.unknown)
    return "open", "; ".join(parts)
