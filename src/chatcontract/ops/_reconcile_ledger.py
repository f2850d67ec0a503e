"""The ledger side of a reconciliation: ``UsageLedger`` files read into compact calls."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chatcontract.errors import UsageError
from chatcontract.telemetry.ledger import LedgerReadIssue, ledger_files, read_ledger_lines

from ._export import parse_time

__all__ = ["LedgerCall", "LoadedLedger", "load_ledger"]


@dataclass(slots=True, kw_only=True)
class LedgerCall:
    """One ledger record, reduced to what reconciliation reads."""

    time: float
    duration_s: float
    ids: tuple[str, ...]  # the provider's request ids
    response_id: str | None = None
    model: str
    status: int | None
    prompt_tokens: int | None
    completion_tokens: int | None
    total_tokens: int | None
    usage_missing: bool
    cost_usd: float | None
    billable: bool
    duplicate: bool = False
    matched: bool = False


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _opt_int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _call(record: Mapping[str, Any], where: str) -> LedgerCall:
    time = parse_time(record["time"], where=where)
    ids: list[str] = []
    for value in record.get("request_ids") or ():
        if isinstance(value, str) and value and value not in ids:
            ids.append(value)
    response_id = record.get("response_id")
    status = _opt_int(record.get("status"))
    prompt = _opt_int(record.get("prompt_tokens"))
    completion = _opt_int(record.get("completion_tokens"))
    total = _opt_int(record.get("total_tokens"))
    missing = bool(record.get("usage_missing", prompt is None and completion is None))
    refused = record.get("kind") == "budget"
    billable = not refused and (status is None or 200 <= status < 300 or not missing)
    cost = record.get("cost_usd")
    duration = record.get("duration_ms")
    return LedgerCall(
        time=time,
        duration_s=max(float(duration), 0.0) / 1000.0 if isinstance(duration, int | float) else 0.0,
        ids=tuple(ids),
        response_id=response_id if isinstance(response_id, str) and response_id else None,
        model=str(record.get("model_answered") or record.get("model_requested") or "unknown"),
        status=status,
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=total,
        usage_missing=missing,
        cost_usd=float(cost) if isinstance(cost, int | float) else None,
        billable=billable,
    )


@dataclass(slots=True)
class LoadedLedger:
    """Every call read from the ledger files, the prices they recorded, the lines skipped."""

    calls: list[LedgerCall]
    prices: dict[str, tuple[float, float]]
    files: list[str]
    issues: list[LedgerReadIssue]


def load_ledger(paths: Sequence[str | os.PathLike[str]]) -> LoadedLedger:
    """Read every file of each ledger (rotated ones included), skipping torn lines."""
    files: list[str] = []
    for path in paths:
        found = ledger_files(path)
        if not found:
            raise UsageError(
                f"--ledger {os.fspath(path)}: no such ledger file; give the path the "
                "UsageLedger writes to"
            )
        for file in found:
            if file.exists() and not (file.is_file() or file.is_dir()):
                raise UsageError(
                    f"--ledger {os.fspath(file)}: not a regular file (a pipe or a device); give "
                    "the path the UsageLedger writes to"
                )
        files += [os.fspath(file) for file in found]
    issues: list[LedgerReadIssue] = []
    calls: list[LedgerCall] = []
    prices: dict[str, tuple[float, float]] = {}
    try:
        for name, line, record in read_ledger_lines(files, issues):
            try:
                call = _call(record, "time")
            except UsageError as exc:
                issues.append(
                    LedgerReadIssue(file=name, line=line, kind="corrupt", detail=str(exc))
                )
                continue
            calls.append(call)
            price = record.get("price")
            if isinstance(price, dict):
                pair = (
                    _number(price.get("input_per_million")),
                    _number(price.get("output_per_million")),
                )
                for key in (record.get("model_answered"), record.get("model_requested")):
                    if isinstance(key, str) and key:
                        prices.setdefault(key, pair)
    except OSError as exc:
        raise UsageError(f"--ledger: cannot read {exc.filename} ({exc.strerror})") from exc
    calls.sort(key=lambda call: call.time)
    return LoadedLedger(calls, prices, files, issues)
