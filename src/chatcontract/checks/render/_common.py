"""What every report format shares: the status markers and the small text helpers."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from chatcontract.checks.model import CheckStatus
from chatcontract.failures import Failure

#: The marker shown for each status, in every format (no emoji: logs and CI must read it).
_MARKERS: dict[CheckStatus, str] = {"pass": "PASS", "fail": "FAIL", "warn": "WARN", "skip": "SKIP"}
_STYLES: dict[CheckStatus, str] = {
    "pass": "bold green",
    "fail": "bold red",
    "warn": "bold yellow",
    "skip": "dim",
}


def _failure_type(failure: Failure | None) -> str:
    if failure is None:
        return "check_failed"
    return f"{failure.kind}/{failure.category}/{failure.code}"


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _truncate(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _plain(value: Any) -> str:
    """Evidence and failure values as text: scalars as they are, containers as compact JSON."""
    if value is None:
        return "none"
    if isinstance(value, str):
        return value
    if isinstance(value, Mapping | list | tuple):
        return json.dumps(value, ensure_ascii=False, default=str, separators=(", ", ": "))
    return str(value)


def _yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def _duration(ms: float) -> str:
    return f"{ms:.0f} ms" if ms < 1000 else f"{ms / 1000:.1f} s"
