"""Renderers for a validation ``Report``: a rich table, JSON, JUnit XML and a Markdown record.

Each renderer is pure: a ``Report`` (and, for Markdown, the ``Contract``) in, text out;
``render_table`` is the one that writes, to the console it is given.

Example::

    text = render(report, contract, "junit", console=console)  # -> str
    render(report, contract, "table", console=console)          # prints, -> None
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Mapping
from typing import Any

from rich import box
from rich.console import Console, Group
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from chatcontract.contract.model import Contract, ErrorRule
from chatcontract.errors import UsageError
from chatcontract.failures import Failure, decision_for

from .model import CheckResult, CheckStatus, Report

__all__ = [
    "FORMATS",
    "render",
    "render_json",
    "render_junit",
    "render_markdown",
    "render_table",
]

#: Output formats of ``render``; ``table`` prints, the others return text.
FORMATS: tuple[str, ...] = ("table", "json", "junit", "markdown")

#: The marker shown for each status, in every format (no emoji: logs and CI must read it).
_MARKERS: dict[CheckStatus, str] = {"pass": "PASS", "fail": "FAIL", "warn": "WARN", "skip": "SKIP"}
_STYLES: dict[CheckStatus, str] = {
    "pass": "bold green",
    "fail": "bold red",
    "warn": "bold yellow",
    "skip": "dim",
}

_OBSERVED_WIDTH = 120  # characters of ``observed`` in the terminal table before eliding
_ATTRIBUTE_WIDTH = 500  # characters of a JUnit attribute (CI tools show it on one line)

# Characters XML 1.0 cannot carry even escaped (C0 controls except tab/newline/CR, surrogates,
# U+FFFE/U+FFFF). A provider message can contain them; ElementTree would write them as-is.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


# --------------------------------------------------------------------------------------- json


def render_json(report: Report) -> str:
    """The JSON report (top-level keys exactly ``REPORT_KEYS``), indented, newline-terminated."""
    return json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n"


# -------------------------------------------------------------------------------------- junit


def render_junit(report: Report) -> str:
    """JUnit XML for CI (Jenkins, GitLab): one ``<testcase>`` per check, times in seconds.

    A required check that failed is a ``<failure>`` whose body lists expected, observed, the
    classification and the evidence. A failed check that is *not* required does not fail the
    run (``Report.verdict``), so it is written as a passing test case with its failure in
    ``<system-out>``: the CI status then agrees with the exit code. A skip is ``<skipped>``; a
    warning passes with ``WARN: ...`` in ``<system-out>``. A check's notes (what it saw that is
    another clause's) are ``note:`` lines in its ``<system-out>`` or failure body.
    """
    suite_attributes = {
        "name": f"chatcontract: {report.contract_name}",
        "tests": str(len(report.checks)),
        "failures": str(sum(1 for check in report.checks if _junit_fails(check))),
        "errors": "0",
        "skipped": str(sum(1 for check in report.checks if check.status == "skip")),
        "time": _seconds(report.duration_ms),
    }
    root = ET.Element("testsuites", suite_attributes)
    suite = ET.SubElement(root, "testsuite", {**suite_attributes, "timestamp": report.started_at})
    properties = ET.SubElement(suite, "properties")
    for name, value in _junit_properties(report):
        ET.SubElement(properties, "property", {"name": name, "value": value})

    classname = f"chatcontract.{report.provider}"
    for check in report.checks:
        _junit_testcase(suite, check, classname=classname)

    ET.indent(root)
    # ElementTree escapes markup but writes control characters as they are: clean them once here.
    body = _xml_text(ET.tostring(root, encoding="unicode"))
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"


def _junit_fails(check: CheckResult) -> bool:
    return check.status == "fail" and check.required


def _junit_properties(report: Report) -> list[tuple[str, str]]:
    target = report.target
    properties = [
        ("chatcontract.version", report.version),
        ("contract.name", report.contract_name),
        ("contract.provider", report.provider),
        ("contract.path", report.contract_path or ""),
        ("contract.reviewed_on", report.reviewed_on or ""),
        ("contract.owner", report.owner),
        ("target.base_url", target.base_url),
        ("target.simulated", "true" if target.simulated else "false"),
        ("target.model", target.model),
        ("verdict", report.verdict),
    ]
    if target.scenario is not None:
        properties.append(("target.scenario", target.scenario))
    return properties


def _junit_testcase(suite: ET.Element, check: CheckResult, *, classname: str) -> None:
    case = ET.SubElement(
        suite,
        "testcase",
        {
            "classname": classname,
            "name": f"{check.id}: {check.title}",
            "time": _seconds(check.duration_ms),
        },
    )
    message = _xml_attribute(check.observed)
    if _junit_fails(check):
        failure = ET.SubElement(
            case, "failure", {"message": message, "type": _failure_type(check.failure)}
        )
        failure.text = _details(check)
    elif check.status == "fail":
        out = ET.SubElement(case, "system-out")
        out.text = "FAIL (not required, does not fail the run)\n" + _details(check)
    elif check.status == "skip":
        ET.SubElement(case, "skipped", {"message": message})
    elif check.status == "warn":
        out = ET.SubElement(case, "system-out")
        out.text = f"WARN: {check.observed}\n" + _details(check)
    elif check.notes:
        out = ET.SubElement(case, "system-out")
        out.text = _note_lines(check)


def _failure_type(failure: Failure | None) -> str:
    if failure is None:
        return "check_failed"
    return f"{failure.kind}/{failure.category}/{failure.code}"


def _details(check: CheckResult) -> str:
    """The body of a JUnit failure: ``key: value`` lines a CI log shows as they are."""
    lines = [f"expected: {check.expected}", f"observed: {check.observed}"]
    if check.failure is not None:
        lines += [f"{key}: {_plain(value)}" for key, value in check.failure.to_dict().items()]
    if check.evidence:
        lines.append("evidence:")
        lines += [f"  {key}: {_plain(value)}" for key, value in check.evidence.items()]
    text = "\n".join(lines) + "\n"
    return text + _note_lines(check)


def _note_lines(check: CheckResult) -> str:
    return "".join(f"note: {_one_line(note)}\n" for note in check.notes)


def _seconds(ms: float) -> str:
    return f"{max(ms, 0.0) / 1000:.3f}"


def _xml_text(text: str) -> str:
    """``text`` with the characters XML 1.0 cannot represent replaced by U+FFFD."""
    return _XML_INVALID.sub("\ufffd", text)


def _xml_attribute(text: str) -> str:
    """A one-line attribute value: whitespace collapsed, bounded."""
    return _truncate(_one_line(text), _ATTRIBUTE_WIDTH)


# ----------------------------------------------------------------------------------- markdown


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


# -------------------------------------------------------------------------------------- table


def render_table(report: Report, *, console: Console) -> None:
    """Print the report for a person: target header, results table, failures, each check's
    notes, verdict line.

    A run against the embedded simulator says so on its first line, so nobody mistakes it
    for a proof of the live API.
    """
    for line in _table_header(report):
        console.print(line)

    table = Table(box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    table.add_column("check", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("required", no_wrap=True)
    table.add_column("ms", justify="right", no_wrap=True)
    table.add_column("observed", overflow="fold")
    for check in report.checks:
        table.add_row(
            Text(check.id),
            Text(_MARKERS[check.status], style=_STYLES[check.status]),
            Text(_yes_no(check.required)),
            Text(f"{check.duration_ms:.0f}"),
            Text(_truncate(_one_line(check.observed), _OBSERVED_WIDTH)),
        )
    console.print(table)

    for check in report.checks:
        if check.failure is not None and check.status in ("fail", "warn"):
            console.print(_failure_lines(check, check.failure))
    for check in report.checks:
        for note in check.notes:
            console.print(
                Text.assemble(("note ", "dim"), (check.id, "bold"), f": {_one_line(note)}")
            )

    console.print(_table_footer(report))


def _table_header(report: Report) -> list[Text]:
    target = report.target
    lines = [Text(f"chatcontract validate: {report.contract_name} ({report.provider})", "bold")]
    if target.simulated:
        where = Text.assemble(
            ("target: ", "bold"),
            ("SIMULATED", "bold yellow"),
            f" (embedded simulator {target.base_url}, model {target.model})",
        )
        if target.scenario is not None:
            where.append(f", scenario {target.scenario}")
    else:
        where = Text.assemble(("target: ", "bold"), f"{target.base_url}, model {target.model}")
    lines.append(where)
    lines += [Text(_one_line(note), "dim") for note in report.notes]
    return lines


def _failure_lines(check: CheckResult, failure: Failure) -> Group:
    status = f" HTTP {failure.status}" if failure.status is not None else ""
    request_id = f" (request id {failure.request_id})" if failure.request_id else ""
    what = Text.assemble(
        (f"{_MARKERS[check.status]} ", _STYLES[check.status]),
        (check.id, "bold"),
        f": {_failure_type(failure)}{status}{request_id}",
    )
    who = Text(f"owner {failure.owner}, retry {failure.retry}: {failure.action}")
    return Group(what, Padding(who, (0, 0, 0, 5), expand=False))


def _table_footer(report: Report) -> Text:
    """The verdict first, so that it survives a narrow terminal and ``tail -1`` of a CI log."""
    summary = report.summary
    verdict = report.verdict
    return Text.assemble(
        ("verdict: ", "bold"),
        (verdict.upper(), "bold green" if verdict == "pass" else "bold red"),
        f"  {len(report.checks)} checks: {summary['passed']} passed, "
        f"{summary['failed']} failed, {summary['warned']} warned, {summary['skipped']} skipped "
        f"in {_duration(report.duration_ms)}",
    )


# ----------------------------------------------------------------------------------- dispatch


def render(report: Report, contract: Contract, fmt: str, *, console: Console) -> str | None:
    """Render ``report`` as ``fmt`` (one of ``FORMATS``).

    ``table`` prints to ``console`` and returns ``None``; the others return the text for the
    caller to write. Raises ``UsageError`` for an unknown format.
    """
    if fmt == "table":
        render_table(report, console=console)
        return None
    if fmt == "json":
        return render_json(report)
    if fmt == "junit":
        return render_junit(report)
    if fmt == "markdown":
        return render_markdown(report, contract)
    raise UsageError(f"unknown report format {fmt!r}; use one of {', '.join(FORMATS)}")


# ------------------------------------------------------------------------------------ helpers


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
