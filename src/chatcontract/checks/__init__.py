"""The validation suite: checks, the runner that emits progress, and the report renderers."""

from __future__ import annotations

from .context import CheckContext, SuiteOptions
from .model import REPORT_KEYS, CheckResult, CheckStatus, Report, TargetInfo
from .outcome import Outcome
from .render import FORMATS, render, render_json, render_junit, render_markdown, render_table
from .runner import run_suite, select_checks
from .suite import CHECKS, CheckSpec, check_ids

__all__ = [
    "CHECKS",
    "FORMATS",
    "REPORT_KEYS",
    "CheckContext",
    "CheckResult",
    "CheckSpec",
    "CheckStatus",
    "Outcome",
    "Report",
    "SuiteOptions",
    "TargetInfo",
    "check_ids",
    "render",
    "render_json",
    "render_junit",
    "render_markdown",
    "render_table",
    "run_suite",
    "select_checks",
]
