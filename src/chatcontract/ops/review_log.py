"""The review log, ``.chatcontract/review.json``: what a person accepted, and the last review.

One entry per validate run: the documentation changes judged harmless (who, when, what) and
the last review's outcome, which ``checklist`` shows without fetching anything.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from chatcontract._jsonfile import read_json_file
from chatcontract.errors import ConfigError

__all__ = ["REVIEW_LOG_PATH", "read_review_log", "write_review_log"]

#: Where ``review`` keeps accepted documentation changes and its last outcome.
REVIEW_LOG_PATH = ".chatcontract/review.json"
_LOG_FORMAT = 1


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def read_review_log(path: str | os.PathLike[str] = REVIEW_LOG_PATH) -> dict[str, Any]:
    """The review log (``{}`` when there is none); ``ConfigError`` when it is unreadable."""
    try:
        data = read_json_file(path, remedy="delete it to start the review log again")
    except FileNotFoundError:
        return {}
    if not isinstance(data, dict) or data.get("chatcontract_review") != _LOG_FORMAT:
        raise ConfigError(
            f"{path}: not a chatcontract review log; delete it to start the review log again"
        )
    return data


def write_review_log(
    log: Mapping[str, Any], path: str | os.PathLike[str] = REVIEW_LOG_PATH
) -> Path:
    """Write the review log atomically (no half-written file on a full disk)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    document = {**log, "chatcontract_review": _LOG_FORMAT}
    try:
        tmp.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        tmp.replace(target)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
    return target


def _run_id(report: Mapping[str, Any], validated: Mapping[str, Any]) -> str:
    started = report.get("started_at")
    contract = validated.get("contract") or {}
    return f"{started}|{contract.get('sha256')}"


def _log_for_run(log: Mapping[str, Any], run_id: str | None) -> Mapping[str, Any]:
    return log if run_id is not None and log.get("validate_run") == run_id else {}
