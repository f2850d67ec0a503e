"""Reconcile the usage ledger with the provider's usage export: what we recorded vs what we pay.

The runbooks: "compare a sample of application logs with downstream accounting. Do not treat
usage fields as final billing records." ``reconcile`` reads ledger records
(``chatcontract.telemetry.ledger``) and a provider export (``_export.ExportReader``) and:

1. **Per request** where the export has request ids: an export row matches the ledger call that
   recorded the same id (any of its request ids, or its response id where no other call has
   the same). A request id seen again, on either side, is reported as a duplicate and counted
   once.
2. **Per time bucket and model** otherwise (OpenAI's usage API returns buckets; timed rows
   without ids are counted per hour). Each remaining ledger call is assigned to a bucket of its
   model. The rule for clock skew: a call may belong to any bucket overlapping
   ``[time - skew, time + duration + skew]``; calls are taken in time order and each goes to the
   earliest such bucket whose request count (``num_model_requests``) is not yet filled, else to
   the bucket holding its own time, else the first candidate. With the clocks ``skew`` apart or
   less, and as many calls on both sides, every call lands in the bucket the provider counted it
   in. A ledger model without an exact match in the export matches the one export model named
   ``<model>-<suffix>`` (OpenAI reports dated snapshots: ``gpt-4o-mini-2024-07-18``).

The period compared is the export's: from the first bucket's start to the last one's end, and
whole UTC days from the first to the last timed row; ledger calls outside it (plus ``skew``) are
counted apart. Ledger calls that could not have been billed (an error status and no usage, or a
local refusal) are not expected in the export and counted apart unless the export lists them.

Totals per model and UTC day compare requests, prompt, completion and total tokens, and cost:
the export's ``cost_usd`` when it has one, else its tokens at the prices the ledger recorded for
that model. A difference exceeds the tolerance when ``|ledger - export| > tolerance * |export|``
(any difference when the export says 0).
"""

from __future__ import annotations

import bisect
import datetime as dt
import math
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from chatcontract.errors import UsageError

from ._export import ExportReader, ExportRow
from ._reconcile_ledger import LedgerCall, LoadedLedger, load_ledger
from ._reconcile_text import COMPARED, render_text

__all__ = [
    "COMPARED",
    "DEFAULT_SKEW_S",
    "DEFAULT_TOLERANCE",
    "MAX_EXPORT_ONLY_IDS",
    "SAMPLE",
    "LedgerCall",
    "LoadedLedger",
    "ReconcileReport",
    "load_ledger",
    "parse_skew",
    "parse_tolerance",
    "reconcile",
    "reconcile_files",
    "render_text",
]

DEFAULT_TOLERANCE = 0.02
DEFAULT_SKEW_S = 300.0
#: How many examples each list of the report holds (counts are always complete).
SAMPLE = 20
#: Export-only ids remembered to find their duplicates: memory stays bounded on a huge export
#: (beyond this many, duplicates among rows unknown to the ledger are no longer detected).
MAX_EXPORT_ONLY_IDS = 50_000
_DAY = 86_400.0
_EPSILON = 1e-9


def parse_tolerance(text: str) -> float:
    """``"2%"`` → 0.02."""
    value = text.strip()
    if not value.endswith("%"):
        raise UsageError(f"--tolerance {text!r}: write a percentage, e.g. --tolerance 2%")
    try:
        number = float(value[:-1])
    except ValueError:
        raise UsageError(f"--tolerance {text!r}: write a percentage, e.g. --tolerance 2%") from None
    if not math.isfinite(number) or not 0 <= number <= 100:
        raise UsageError(f"--tolerance {text!r}: write a percentage from 0% to 100%")
    return number / 100.0


def parse_skew(text: str) -> float:
    """``"120"``, ``"120s"``, ``"2m"`` → seconds (0 to 1 day)."""
    value = text.strip().lower()
    scale = 1.0
    if value.endswith("m"):
        value, scale = value[:-1], 60.0
    elif value.endswith("s"):
        value = value[:-1]
    try:
        number = float(value) * scale
    except ValueError:
        raise UsageError(
            f"--max-skew {text!r}: write seconds or minutes, e.g. 120s or 2m"
        ) from None
    if not math.isfinite(number) or not 0 <= number <= _DAY:
        raise UsageError(f"--max-skew {text!r}: write a duration from 0s to 1440m")
    return number


def _day(timestamp: float | None) -> str:
    if timestamp is None:
        return "unknown"
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).date().isoformat()


def _iso(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    moment = dt.datetime.fromtimestamp(timestamp, dt.UTC)
    return moment.isoformat(timespec="seconds").replace("+00:00", "Z")


# -- sums --------------------------------------------------------------------------------------


#: The token fields a cost is derived from (a total alone cannot be priced).
_SPLIT = frozenset({"prompt_tokens", "completion_tokens"})


@dataclass(slots=True)
class _Side:
    """Sums for one side of one model-day (or bucket, or the totals)."""

    requests: int = 0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    cost_usd: float | None = None

    def add(
        self,
        *,
        requests: int,
        prompt: int | None,
        completion: int | None,
        total: int | None,
        cost: float | None,
    ) -> None:
        self.requests += requests
        if total is None and prompt is not None and completion is not None:
            # Both halves or nothing: an export without its prompt column would otherwise
            # report its completion tokens as the total (+500% on a matching export).
            total = prompt + completion
        for name, value in (
            ("prompt_tokens", prompt),
            ("completion_tokens", completion),
            ("total_tokens", total),
        ):
            if value is not None:
                setattr(self, name, (getattr(self, name) or 0) + value)
        if cost is not None:
            self.cost_usd = (self.cost_usd or 0.0) + cost

    def merge(self, other: _Side) -> None:
        self.add(
            requests=other.requests,
            prompt=other.prompt_tokens,
            completion=other.completion_tokens,
            total=other.total_tokens,
            cost=other.cost_usd,
        )

    def value(self, name: str) -> float | int | None:
        return getattr(self, name)  # type: ignore[no-any-return]

    def to_dict(self) -> dict[str, Any]:
        cost = None if self.cost_usd is None else round(self.cost_usd, 9)
        return {
            "requests": self.requests,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
            "cost_usd": cost,
        }


def _ledger_add(side: _Side, call: LedgerCall) -> None:
    side.add(
        requests=1,
        prompt=call.prompt_tokens,
        completion=call.completion_tokens,
        total=call.total_tokens,
        cost=call.cost_usd,
    )


@dataclass(slots=True)
class _Group:
    ledger: _Side = field(default_factory=_Side)
    export: _Side = field(default_factory=_Side)
    usage_missing: int = 0
    only_in_ledger: int = 0
    only_in_export: int = 0
    priced: bool = False


def _diff(ledger: float | int | None, export: float | int | None) -> dict[str, Any] | None:
    if export is None:
        return None
    mine = ledger or 0
    difference = mine - export
    if isinstance(difference, float):
        difference = round(difference, 9)
    if export:
        pct: float | None = round(100.0 * difference / abs(export), 4)
    else:
        pct = None if difference else 0.0
    return {"diff": difference, "diff_pct": pct}


def _exceeds(ledger: float | int | None, export: float | int | None, tolerance: float) -> bool:
    if export is None:
        return False
    return abs((ledger or 0) - export) > tolerance * abs(export) + _EPSILON


# -- the report --------------------------------------------------------------------------------


@dataclass(slots=True, kw_only=True)
class ReconcileReport:
    """Everything ``reconcile`` found, as plain data (``to_dict``) and a verdict (``exit_code``)."""

    data: dict[str, Any]

    @property
    def exceeded(self) -> list[dict[str, Any]]:
        return list(self.data["exceeded"])

    @property
    def exit_code(self) -> int:
        return 1 if self.data["exceeded"] else 0

    def to_dict(self) -> dict[str, Any]:
        return self.data


@dataclass(slots=True)
class _Bucket:
    start: float
    end: float
    model: str
    export: _Side = field(default_factory=_Side)
    ledger: _Side = field(default_factory=_Side)
    assigned: int = 0


class _Reconciler:
    def __init__(
        self,
        ledger: LoadedLedger,
        *,
        tolerance: float,
        skew_s: float,
    ) -> None:
        self.ledger = ledger
        self.tolerance = tolerance
        self.skew = skew_s
        self.groups: dict[tuple[str, str], _Group] = {}
        self.index: dict[str, int] = {}
        self.duplicates_ledger: dict[str, int] = {}
        self.duplicates_export: dict[str, int] = {}
        self.export_only_ids: set[str] = set()
        self.export_only_ids_full = False
        self.export_only = 0
        self.export_only_sample: list[dict[str, Any]] = []
        self.export_rows_without_id = 0
        self.export_has: set[str] = set()
        self.export_cost_column = False
        self.matched_calls = 0
        self.token_mismatches = 0
        self.token_mismatch_sample: list[dict[str, Any]] = []
        self.export_of_call: dict[int, ExportRow] = {}
        self.buckets: dict[tuple[float, float, str], _Bucket] = {}
        self.period_start: float | None = None
        self.period_end: float | None = None
        self.request_rows_first: float | None = None
        self.request_rows_last: float | None = None
        self._index_ledger()

    # -- ids -----------------------------------------------------------------------------------

    def _index_ledger(self) -> None:
        for position, call in enumerate(self.ledger.calls):
            seen = [self.index[i] for i in call.ids if i in self.index]
            if seen:
                call.duplicate = True
                for value in call.ids:
                    if value in self.index:
                        self.duplicates_ledger[value] = self.duplicates_ledger.get(value, 1) + 1
                continue
            for value in call.ids:
                self.index[value] = position
        # Response ids match too, but only where they are unique: some servers reuse one, and
        # a reused response id says nothing about duplicated calls.
        owners: dict[str, int | None] = {}
        for position, call in enumerate(self.ledger.calls):
            if call.response_id is not None and not call.duplicate:
                key = call.response_id
                owners[key] = position if key not in owners else None
        for key, owner in owners.items():
            if owner is not None and key not in self.index:
                self.index[key] = owner

    def _group(self, day: str, model: str) -> _Group:
        key = (day, model)
        group = self.groups.get(key)
        if group is None:
            group = self.groups[key] = _Group()
        return group

    def _price(self, model: str | None) -> tuple[float, float] | None:
        if model is None:
            return None
        return self.ledger.prices.get(model)

    def _export_cost(self, row: ExportRow, model: str | None) -> float | None:
        if row.cost_usd is not None:
            return row.cost_usd
        price = self._price(model)
        if price is None or row.prompt_tokens is None or row.completion_tokens is None:
            return None  # half the tokens priced is not the cost
        return (row.prompt_tokens * price[0] + row.completion_tokens * price[1]) / 1e6

    def _export_add(self, side: _Side, row: ExportRow, model: str | None) -> None:
        side.add(
            requests=row.requests,
            prompt=row.prompt_tokens,
            completion=row.completion_tokens,
            total=row.total_tokens,
            cost=self._export_cost(row, model),
        )

    def _note_fields(self, row: ExportRow) -> None:
        for name in ("prompt_tokens", "completion_tokens", "total_tokens"):
            if getattr(row, name) is not None:
                self.export_has.add(name)
        if row.prompt_tokens is not None and row.completion_tokens is not None:
            self.export_has.add("total_tokens")
        if row.cost_usd is not None:
            self.export_cost_column = True

    # -- export rows ---------------------------------------------------------------------------

    def feed(self, rows: Iterable[ExportRow]) -> None:
        for row in rows:
            self._note_fields(row)
            if row.start is not None and row.end is not None:
                self._bucket_row(row, row.start, row.end)
            elif row.request_id is not None:
                self._request_row(row, row.request_id)
            else:
                self.export_rows_without_id += 1
                self._export_only(row, None)

    def _request_row(self, row: ExportRow, request_id: str) -> None:
        if row.time is not None:
            first, last = self.request_rows_first, self.request_rows_last
            self.request_rows_first = row.time if first is None else min(first, row.time)
            self.request_rows_last = row.time if last is None else max(last, row.time)
        position = self.index.get(request_id)
        if position is not None:
            call = self.ledger.calls[position]
            if call.matched:
                self.duplicates_export[request_id] = self.duplicates_export.get(request_id, 1) + 1
                return
            call.matched = True
            self.matched_calls += 1
            self.export_of_call[position] = row
            return
        if request_id in self.export_only_ids:
            self.duplicates_export[request_id] = self.duplicates_export.get(request_id, 1) + 1
            return
        if len(self.export_only_ids) < MAX_EXPORT_ONLY_IDS:
            self.export_only_ids.add(request_id)
        else:
            self.export_only_ids_full = True
        self._export_only(row, request_id)

    def _export_only(self, row: ExportRow, request_id: str | None) -> None:
        self.export_only += row.requests
        model = row.model or "unknown"
        group = self._group(_day(row.time), model)
        group.only_in_export += row.requests
        self._export_add(group.export, row, model)
        if len(self.export_only_sample) < SAMPLE:
            self.export_only_sample.append(
                {
                    "request_id": request_id,
                    "time": _iso(row.time),
                    "model": row.model,
                    "line": row.line,
                    "prompt_tokens": row.prompt_tokens,
                    "completion_tokens": row.completion_tokens,
                }
            )

    def _bucket_row(self, row: ExportRow, start: float, end: float) -> None:
        self.period_start = start if self.period_start is None else min(self.period_start, start)
        self.period_end = end if self.period_end is None else max(self.period_end, end)
        if row.requests == 0 and row.model is None and row.prompt_tokens is None:
            return  # an empty bucket: it only says the period was covered
        model = row.model or "*"
        key = (start, end, model)
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = _Bucket(start, end, model)
        self._export_add(bucket.export, row, None if model == "*" else model)

    # -- after the export ----------------------------------------------------------------------

    def _period(self) -> tuple[float | None, float | None]:
        start, end = self.period_start, self.period_end
        if self.request_rows_first is not None and self.request_rows_last is not None:
            first = math.floor(self.request_rows_first / _DAY) * _DAY
            last = math.floor(self.request_rows_last / _DAY) * _DAY + _DAY
            start = first if start is None else min(start, first)
            end = last if end is None else max(end, last)
        return start, end

    def finish(self) -> dict[str, Any]:
        start, end = self._period()
        by_model = all(bucket.model != "*" for bucket in self.buckets.values())
        if not by_model:  # the export is not grouped by model: compare all models together
            merged: dict[tuple[float, float, str], _Bucket] = {}
            for bucket in self.buckets.values():
                key = (bucket.start, bucket.end, "*")
                target = merged.setdefault(key, _Bucket(bucket.start, bucket.end, "*"))
                target.export.merge(bucket.export)
            self.buckets = merged
        outside = not_billable = 0
        ledger_only: list[LedgerCall] = []
        to_assign: list[LedgerCall] = []
        usage_missing_sample: list[dict[str, Any]] = []
        usage_missing = 0
        for position, call in enumerate(self.ledger.calls):
            if call.duplicate:
                continue
            if call.matched:
                row = self.export_of_call[position]
                group = self._group(_day(call.time), call.model)
                _ledger_add(group.ledger, call)
                self._export_add(group.export, row, call.model)
                self._compare_tokens(call, row)
                if call.usage_missing:
                    usage_missing += 1
                    group.usage_missing += 1
                    if len(usage_missing_sample) < SAMPLE:
                        usage_missing_sample.append(self._missing_entry(call, row))
                continue
            if (
                start is not None
                and end is not None
                and not (start - self.skew <= call.time < end + self.skew)
            ):
                outside += 1
                continue
            if not call.billable:
                not_billable += 1
                continue
            if call.usage_missing:
                usage_missing += 1
                if len(usage_missing_sample) < SAMPLE:
                    usage_missing_sample.append(self._missing_entry(call, None))
            if self.buckets:
                to_assign.append(call)
            else:
                ledger_only.append(call)
        ledger_only += self._assign(to_assign, by_model)
        for bucket in self.buckets.values():
            group = self._group(_day(bucket.start), bucket.model)
            group.ledger.merge(bucket.ledger)
            group.export.merge(bucket.export)
            if bucket.assigned == 0 and bucket.export.requests:
                group.only_in_export += bucket.export.requests
        only_sample: list[dict[str, Any]] = []
        for call in ledger_only:
            model = call.model if by_model or not self.buckets else "*"
            group = self._group(_day(call.time), model)
            _ledger_add(group.ledger, call)
            group.only_in_ledger += 1
            if call.usage_missing:
                group.usage_missing += 1
            if len(only_sample) < SAMPLE:
                only_sample.append(
                    {
                        "request_id": call.ids[0] if call.ids else call.response_id,
                        "time": _iso(call.time),
                        "model": call.model,
                    }
                )
        return self._report(
            start=start,
            end=end,
            outside=outside,
            not_billable=not_billable,
            ledger_only=len(ledger_only),
            ledger_only_sample=only_sample,
            usage_missing=usage_missing,
            usage_missing_sample=usage_missing_sample,
            by_model=by_model,
        )

    def _missing_entry(self, call: LedgerCall, row: ExportRow | None) -> dict[str, Any]:
        return {
            "request_id": call.ids[0] if call.ids else call.response_id,
            "time": _iso(call.time),
            "model": call.model,
            "status": call.status,
            "export_prompt_tokens": None if row is None else row.prompt_tokens,
            "export_completion_tokens": None if row is None else row.completion_tokens,
        }

    def _compare_tokens(self, call: LedgerCall, row: ExportRow) -> None:
        if call.usage_missing:
            return
        differs = [
            name
            for name in ("prompt_tokens", "completion_tokens", "total_tokens")
            if getattr(row, name) is not None and getattr(row, name) != getattr(call, name)
        ]
        if not differs:
            return
        self.token_mismatches += 1
        if len(self.token_mismatch_sample) < SAMPLE:
            entry: dict[str, Any] = {
                "request_id": row.request_id,
                "time": _iso(call.time),
                "model": call.model,
            }
            for name in differs:
                entry[name] = {"ledger": getattr(call, name), "export": getattr(row, name)}
            self.token_mismatch_sample.append(entry)

    def _model_key(self, model: str, known: Mapping[str, list[_Bucket]]) -> str:
        if model in known:
            return model
        dated = [name for name in known if name.startswith(model + "-")]
        return dated[0] if len(dated) == 1 else model

    def _assign(self, calls: list[LedgerCall], by_model: bool) -> list[LedgerCall]:
        """Put each call in a bucket by the skew rule; returns the calls no bucket takes."""
        per_model: dict[str, list[_Bucket]] = {}
        for bucket in sorted(self.buckets.values(), key=lambda b: (b.start, b.end)):
            per_model.setdefault(bucket.model, []).append(bucket)
        starts = {model: [b.start for b in items] for model, items in per_model.items()}
        leftover: list[LedgerCall] = []
        for call in calls:
            model = self._model_key(call.model, per_model) if by_model else "*"
            items = per_model.get(model)
            if not items:
                leftover.append(call)
                continue
            low, high = call.time - self.skew, call.time + call.duration_s + self.skew
            first = max(bisect.bisect_right(starts[model], low) - 1, 0)
            candidates = []
            for bucket in items[first:]:
                if bucket.start > high:
                    break
                if bucket.end > low:
                    candidates.append(bucket)
            if not candidates:
                leftover.append(call)
                continue
            chosen = next((b for b in candidates if b.assigned < b.export.requests), None)
            if chosen is None:
                chosen = next(
                    (b for b in candidates if b.start <= call.time < b.end), candidates[0]
                )
            chosen.assigned += 1
            _ledger_add(chosen.ledger, call)
            if call.usage_missing:
                self._group(_day(chosen.start), chosen.model).usage_missing += 1
        return leftover

    # -- the report ----------------------------------------------------------------------------

    def _report(
        self,
        *,
        start: float | None,
        end: float | None,
        outside: int,
        not_billable: int,
        ledger_only: int,
        ledger_only_sample: list[dict[str, Any]],
        usage_missing: int,
        usage_missing_sample: list[dict[str, Any]],
        by_model: bool,
    ) -> dict[str, Any]:
        exceeded: list[dict[str, Any]] = []
        rows = []
        totals = _Group()
        for (day, model), group in sorted(self.groups.items()):
            self._fill_export(group.export, model)
            totals.ledger.merge(group.ledger)
            totals.export.merge(group.export)
            totals.usage_missing += group.usage_missing
            totals.only_in_ledger += group.only_in_ledger
            totals.only_in_export += group.only_in_export
            entry = self._compare(group, day=day, model=model, exceeded=exceeded)
            rows.append(entry)
        self._fill_export(totals.export, None)
        total_entry = self._compare(totals, day=None, model=None, exceeded=exceeded)
        matched_buckets = sum(1 for b in self.buckets.values() if b.assigned and b.export.requests)
        buckets_only_export = sum(
            1 for b in self.buckets.values() if not b.assigned and b.export.requests
        )
        bucket_differences: list[dict[str, Any]] = []
        for bucket in sorted(self.buckets.values(), key=lambda b: (b.start, b.model)):
            differs = [
                name
                for name in COMPARED
                if bucket.export.value(name) is not None
                and bucket.ledger.value(name) != bucket.export.value(name)
                and name != "cost_usd"
            ]
            if differs and len(bucket_differences) < SAMPLE:
                bucket_differences.append(
                    {
                        "start": _iso(bucket.start),
                        "end": _iso(bucket.end),
                        "model": bucket.model,
                        "ledger": bucket.ledger.to_dict(),
                        "export": bucket.export.to_dict(),
                    }
                )
        dup_ledger = [{"id": k, "count": v} for k, v in sorted(self.duplicates_ledger.items())]
        dup_export = [{"id": k, "count": v} for k, v in sorted(self.duplicates_export.items())]
        return {
            "tolerance_pct": round(self.tolerance * 100, 6),
            "max_skew_s": self.skew,
            "period": {"start": _iso(start), "end": _iso(end)},
            "by_model": by_model,
            "ledger": {
                "files": list(self.ledger.files),
                "records": len(self.ledger.calls),
                "outside_period": outside,
                "not_billable": not_billable,
                "skipped_lines": [issue.to_dict() for issue in self.ledger.issues],
            },
            "matched": {"calls": self.matched_calls, "buckets": matched_buckets},
            "only_in_ledger": {"calls": ledger_only, "sample": ledger_only_sample},
            "only_in_export": {
                "calls": self.export_only,
                "rows_without_request_id": self.export_rows_without_id,
                "buckets": buckets_only_export,
                "sample": self.export_only_sample,
                "duplicates_checked": not self.export_only_ids_full,
            },
            "duplicates": {
                "ledger": dup_ledger[:SAMPLE],
                "export": dup_export[:SAMPLE],
                "ledger_ids": len(dup_ledger),
                "export_ids": len(dup_export),
            },
            "usage_missing": {"calls": usage_missing, "sample": usage_missing_sample},
            "token_mismatches": {
                "calls": self.token_mismatches,
                "sample": self.token_mismatch_sample,
            },
            "bucket_differences": bucket_differences,
            "by_model_day": rows,
            "totals": total_entry,
            "exceeded": exceeded,
        }

    def _fill_export(self, side: _Side, model: str | None) -> None:
        """Fields the export provides are 0, not unknown, where it has no rows."""
        for name in ("prompt_tokens", "completion_tokens", "total_tokens"):
            if name in self.export_has and getattr(side, name) is None:
                setattr(side, name, 0)
        priced = model is not None and self._price(model) is not None
        if side.cost_usd is None and (
            self.export_cost_column or (priced and self.export_has >= _SPLIT)
        ):
            side.cost_usd = 0.0

    def _compare(
        self,
        group: _Group,
        *,
        day: str | None,
        model: str | None,
        exceeded: list[dict[str, Any]],
    ) -> dict[str, Any]:
        diff: dict[str, Any] = {}
        over = []
        for name in COMPARED:
            mine, theirs = group.ledger.value(name), group.export.value(name)
            diff[name] = _diff(mine, theirs)
            if _exceeds(mine, theirs, self.tolerance):
                over.append(name)
                exceeded.append(
                    {
                        "day": day,
                        "model": model,
                        "field": name,
                        "ledger": mine or 0,
                        "export": theirs,
                        **(diff[name] or {}),
                    }
                )
        entry: dict[str, Any] = {}
        if day is not None:
            entry["day"] = day
            entry["model"] = model
        entry.update(
            {
                "ledger": group.ledger.to_dict(),
                "export": group.export.to_dict(),
                "diff": diff,
                "usage_missing": group.usage_missing,
                "only_in_ledger": group.only_in_ledger,
                "only_in_export": group.only_in_export,
                "exceeds": over,
            }
        )
        return entry


def reconcile(
    ledger: LoadedLedger,
    rows: Iterable[ExportRow],
    *,
    tolerance: float = DEFAULT_TOLERANCE,
    skew_s: float = DEFAULT_SKEW_S,
) -> ReconcileReport:
    """Match ``rows`` (a provider export, streamed) against ``ledger``."""
    engine = _Reconciler(ledger, tolerance=tolerance, skew_s=skew_s)
    engine.feed(rows)
    return ReconcileReport(data=engine.finish())


def reconcile_files(
    ledger_paths: Sequence[str | os.PathLike[str]],
    export_path: str | os.PathLike[str],
    *,
    format: str | None = None,
    overrides: Mapping[str, str] | None = None,
    tolerance: float = DEFAULT_TOLERANCE,
    skew_s: float = DEFAULT_SKEW_S,
) -> ReconcileReport:
    """Read the ledger files and stream the export through ``reconcile``."""
    reader = ExportReader(export_path, format=format, overrides=overrides)
    ledger = load_ledger(ledger_paths)
    report = reconcile(ledger, _rows(reader), tolerance=tolerance, skew_s=skew_s)
    report.data["export"] = {
        "file": os.fspath(export_path),
        "format": reader.format,
        "mapping": reader.mapping,
        "rows": reader.rows_read,
        "ignored_columns": list(reader.ignored),
    }
    return report


def _rows(reader: ExportReader) -> Iterator[ExportRow]:
    try:
        yield from reader
    except OSError as exc:
        raise UsageError(f"--export: cannot read {reader.path} ({exc.strerror})") from exc
