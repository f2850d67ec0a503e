"""The Markdown record: the contract's facts and this run's results, for a runbook."""

from __future__ import annotations

import re
from collections.abc import Iterable

from chatcontract.checks.model import CheckResult, Report
from chatcontract.contract.model import Contract, ErrorRule
from chatcontract.failures import decision_for

from ._common import _MARKERS, _duration, _failure_type, _one_line, _plain, _yes_no


def render_markdown(report: Report, contract: Contract) -> str:
    """A runbook-ready record of the contract and this run, as GitHub-flavoured Markdown.

    Facts (endpoint, auth pattern with the environment variable names, model and fallbacks,
    request/response shape, streaming, error classes with their retry decision, retry policy,
    owner, review date, reference, target, run date), then the results, the failures with
    their classification and owner, and the run's notes. Never contains a secret: the
    contract holds only the names of the variables the key is read from.
    """
    verdict = report.verdict.upper()
    sections = [
        f"# Contract record: {contract.name} ({verdict})",
        _markdown_lead(report),
        "## Contract facts",
        _md_table(("fact", "value"), _fact_rows(report, contract)),
        "## Error classes",
        "Rows are tried in order; the first that matches decides. The retry decision comes from "
        "the category and the contract's retryable / non-retryable sets.",
        _md_table(
            ("rule", "match", "category", "retry decision", "note"),
            [_error_row(rule, contract) for rule in contract.errors.rules],
        )
        if contract.errors.rules
        else "_The contract lists no error rules; the built-in classification applies._",
        "## Results",
        _md_table(
            ("check", "title", "status", "required", "duration", "observed"),
            [_result_row(check) for check in report.checks],
        )
        if report.checks
        else "_No checks ran._",
        "## Failures",
        _markdown_failures(report.checks),
        "## Check notes",
        "What a check saw on the way that is another clause's (that check counts it); a note "
        "never changes a verdict.",
        _markdown_check_notes(report.checks),
        "## Notes",
        "\n".join(f"- {_one_line(note)}" for note in report.notes) if report.notes else "None.",
    ]
    return "\n\n".join(sections) + "\n"


def _markdown_lead(report: Report) -> str:
    summary = report.summary
    target = "the embedded simulator" if report.target.simulated else "the live API"
    return (
        f"Validated against {target} at `{report.target.base_url}` on {_date(report.started_at)}: "
        f"**{report.verdict.upper()}** ({summary['passed']} passed, {summary['failed']} failed, "
        f"{summary['warned']} warned, {summary['skipped']} skipped in "
        f"{_duration(report.duration_ms)}), chatcontract {report.version}."
    )


def _fact_rows(report: Report, contract: Contract) -> list[tuple[str, ...]]:
    endpoint, auth, policy = contract.endpoint, contract.auth, contract.policy
    timeouts, retry = policy.timeouts, policy.retry
    streaming = contract.streaming
    target = report.target
    auth_value = f"<${auth.env[0]}>"
    if auth.scheme:
        auth_value = f"{auth.scheme} {auth_value}"
    key_sources = ", then ".join(_code(name) for name in auth.env)
    target_text = f"{_code(target.base_url)}, simulated: {_yes_no(target.simulated)}"
    if target.scenario is not None:
        target_text += f" (scenario {_code(target.scenario)})"
    target_text += f", model {_code(target.model)}"
    return [
        ("endpoint", _code(f"{endpoint.method.upper()} {endpoint.url}")),
        ("model list", _code(f"GET {endpoint.models_url}")),
        ("auth", f"{_code(f'{auth.header}: {auth_value}')}; key read from {key_sources}"),
        ("model", _code(contract.model)),
        ("fallbacks", _fallbacks(contract)),
        ("required request fields", _codes(contract.request.required)),
        ("optional request fields in use", _codes(contract.request.optional_in_use)),
        ("request cautions", "; ".join(contract.request.cautions) or "none"),
        ("required response paths", _codes(contract.response.required_paths)),
        ("optional response paths", _codes(contract.response.optional_paths)),
        ("accepted finish reasons", _codes(contract.response.finish_reasons)),
        (
            "streaming",
            f"used: {_yes_no(streaming.used)}; include_usage: {_yes_no(streaming.include_usage)}; "
            f"[DONE] required: {_yes_no(streaming.require_done)}",
        ),
        ("usage fields", _codes(policy.usage_fields)),
        ("retryable categories", _codes(contract.errors.retryable)),
        ("non-retryable categories", _codes(contract.errors.non_retryable)),
        (
            "retry policy",
            f"{retry.max_attempts} attempt(s); backoff {retry.backoff_initial_ms} ms "
            f"x{retry.backoff_multiplier:g} up to {retry.backoff_max_ms} ms; "
            f"jitter {retry.jitter:g}; Retry-After honoured up to {retry.retry_after_cap_ms} ms",
        ),
        ("fallback reserve", f"{policy.fallback_reserve_ms} ms of the total deadline"),
        (
            "timeouts",
            f"connect {timeouts.connect_ms} ms, first byte {timeouts.first_byte_ms} ms, "
            f"first token {timeouts.first_token_ms} ms, total {timeouts.total_ms} ms",
        ),
        ("owner", contract.owner or "not set"),
        ("reviewed on", contract.reviewed_on.isoformat() if contract.reviewed_on else "not set"),
        ("reference", contract.reference_url or "not set"),
        ("environment", contract.environment),
        ("target", target_text),
        ("run", f"{report.started_at} ({_duration(report.duration_ms)})"),
    ]


def _fallbacks(contract: Contract) -> str:
    if not contract.fallbacks:
        return "none"
    routes = []
    for route in contract.fallbacks:
        parts = []
        if route.model is not None:
            parts.append(f"model {_code(route.model)}")
        if route.base_url is not None:
            parts.append(f"base URL {_code(route.base_url)}")
        if route.auth_env:
            parts.append(f"key from {_codes(route.auth_env)}")
        routes.append(f"{_code(route.name)}: {', '.join(parts)}")
    return "; ".join(routes)


def _error_row(rule: ErrorRule, contract: Contract) -> tuple[str, ...]:
    decision = decision_for(
        rule.category,
        retryable=contract.errors.retryable,
        non_retryable=contract.errors.non_retryable,
    )
    return (_code(rule.name), _rule_match(rule), rule.category, decision, rule.note)


def _rule_match(rule: ErrorRule) -> str:
    """The rule's matchers in words; every one given must hold."""
    parts = []
    if rule.status is not None:
        parts.append("status " + ", ".join(str(status) for status in rule.status))
    if rule.code is not None:
        parts.append(f"code {_code(rule.code)}" if rule.code else "code empty or missing")
    if rule.type is not None:
        parts.append(f"type {_code(rule.type)}" if rule.type else "type empty or missing")
    if rule.message is not None:
        parts.append(f"message ~ {_code(rule.message)}")
    if rule.body != "any":
        parts.append(f"body {rule.body}")
    return " and ".join(parts) or "any response"


def _result_row(check: CheckResult) -> tuple[str, ...]:
    return (
        _code(check.id),
        check.title,
        _MARKERS[check.status],
        _yes_no(check.required),
        f"{check.duration_ms:.0f} ms",
        check.observed,
    )


def _markdown_failures(checks: Iterable[CheckResult]) -> str:
    failed = [check for check in checks if check.status == "fail"]
    if not failed:
        return "None."
    return "\n\n".join(_markdown_failure(check) for check in failed)


def _markdown_failure(check: CheckResult) -> str:
    heading = f"### {_code(check.id)}: {_one_line(check.title)}"
    if not check.required:
        heading += " (not required)"
    lines = [heading, ""]
    failure = check.failure
    if failure is not None:
        status = f" (HTTP {failure.status})" if failure.status is not None else ""
        lines += [
            f"- classification: {_code(_failure_type(failure))}{status}",
            f"- retry decision: {failure.retry}",
            f"- owner: {failure.owner}",
            f"- first action: {_one_line(failure.action)}",
            f"- request id: {_code(failure.request_id) if failure.request_id else 'none'}",
            f"- message: {_one_line(failure.message)}",
        ]
    lines += [
        f"- expected: {_one_line(check.expected)}",
        f"- observed: {_one_line(check.observed)}",
    ]
    lines += [
        f"- evidence {_code(key)}: {_one_line(_plain(v))}" for key, v in check.evidence.items()
    ]
    lines += [f"- note: {_one_line(note)}" for note in check.notes]
    return "\n".join(lines)


def _markdown_check_notes(checks: Iterable[CheckResult]) -> str:
    lines = [f"- {_code(check.id)}: {_one_line(note)}" for check in checks for note in check.notes]
    return "\n".join(lines) if lines else "None."


def _md_table(header: tuple[str, ...], rows: Iterable[tuple[str, ...]]) -> str:
    lines = [_md_row(header), "|" + "|".join("---" for _ in header) + "|"]
    lines += [_md_row(row) for row in rows]
    return "\n".join(lines)


def _md_row(cells: tuple[str, ...]) -> str:
    return "| " + " | ".join(_cell(cell) for cell in cells) + " |"


def _cell(text: str) -> str:
    """A table cell: one line, ``|`` escaped (GFM needs it escaped even inside code spans)."""
    return _one_line(text).replace("|", "\\|")


def _code(text: str) -> str:
    """``text`` as an inline code span, with a fence longer than any backtick run inside."""
    longest = max((len(run) for run in re.findall("`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if longest else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _codes(values: Iterable[str]) -> str:
    return ", ".join(_code(value) for value in values) or "none"


def _date(started_at: str) -> str:
    """The date part of an ISO timestamp (``2026-02-05T13:28:59Z`` → ``2026-02-05``)."""
    return started_at.split("T", 1)[0] or started_at
