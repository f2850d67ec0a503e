"""The JSON report: ``Report.to_dict()``, indented (top-level keys exactly ``REPORT_KEYS``)."""

from __future__ import annotations

import json

from chatcontract.checks.model import Report


def render_json(report: Report) -> str:
    """The JSON report (top-level keys exactly ``REPORT_KEYS``), indented, newline-terminated."""
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"
