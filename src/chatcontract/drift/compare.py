"""Comparison: the differences between a baseline observation and a newer one."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from .observation import Observation
from .shapes import (
    _ERROR,
    _RESPONSE,
    _SECTION_NAMES,
    _STREAM,
    _USAGE,
    _error_order,
    _ordered,
    _path_of,
)

DriftKind = Literal[
    "new_field", "missing_field", "new_finish_reason", "usage_shape", "error_shape", "new_model"
]

#: Every drift kind, the values of the ``kind`` label of ``llm_contract_drift_total``.
DRIFT_KINDS: tuple[DriftKind, ...] = (
    "new_field",
    "missing_field",
    "new_finish_reason",
    "usage_shape",
    "error_shape",
    "new_model",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Difference:
    """One way an observation departs from the baseline."""

    kind: DriftKind
    section: str
    detail: str

    @property
    def key(self) -> str:
        """Stable identity: the same difference seen twice has the same key."""
        return f"{self.kind}|{self.section}|{self.detail}"

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "section": self.section, "detail": self.detail}


def _topmost(entries: Iterable[str]) -> list[str]:
    """Drop entries whose parent path is also listed: a new object is one change, not many."""
    listed = {_path_of(entry) for entry in entries}
    kept = []
    for entry in entries:
        path = _path_of(entry)
        parents = {path[:i] for i, char in enumerate(path) if char in ".[" and i > 0}
        if not parents & listed:
            kept.append(entry)
    return _ordered(kept)


def _section_label(name: str) -> str:
    if name.startswith(_ERROR):
        return f"error body HTTP {name[len(_ERROR) :]}"
    return _SECTION_NAMES.get(name, name)


def _shape_kind(name: str, added: bool) -> DriftKind:
    if name == _USAGE:
        return "usage_shape"
    if name.startswith(_ERROR):
        return "error_shape"
    return "new_field" if added else "missing_field"


def compare(baseline: Observation, observed: Observation) -> list[Difference]:
    """The differences between ``baseline`` and ``observed``, in a stable order.

    Per section present on both sides: entries never seen in the baseline are added; entries
    the baseline saw in every sample but ``observed`` lacks in some sample are missing. A
    section the baseline never saw (e.g. no stream) is not compared. Then each finish_reason
    and response model the baseline did not see.
    """
    differences: list[Difference] = []
    for name in sorted(observed.sections, key=_section_sort):
        mine = baseline.sections.get(name)
        theirs = observed.sections[name]
        if mine is None or theirs.samples == 0:
            continue
        label = _section_label(name)
        differences.extend(
            Difference(kind=_shape_kind(name, True), section=name, detail=f"{label}: +{entry}")
            for entry in _topmost(sorted(theirs.seen - mine.seen))
        )
        differences.extend(
            Difference(kind=_shape_kind(name, False), section=name, detail=f"{label}: -{entry}")
            for entry in _topmost(sorted(mine.always - theirs.always))
        )
    differences.extend(
        Difference(
            kind="new_finish_reason", section="finish_reason", detail=f"finish_reason: {reason}"
        )
        for reason in sorted(observed.finish_reasons - baseline.finish_reasons)
    )
    differences.extend(
        Difference(kind="new_model", section="model", detail=f"model: {model}")
        for model in sorted(observed.models - baseline.models)
    )
    return differences


def _section_sort(name: str) -> tuple[int, int, str]:
    order = {_RESPONSE: 0, _STREAM: 1, _USAGE: 2}
    if name in order:
        return (order[name], 0, name)
    return (3, *_error_order(name))
