"""The terminal table: header, one row a check, failures, notes, the verdict line."""

from __future__ import annotations

from rich import box
from rich.console import Console, Group
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from chatcontract.checks.model import CheckResult, Report
from chatcontract.failures import Failure

from ._common import _MARKERS, _STYLES, _duration, _failure_type, _one_line, _truncate, _yes_no

_OBSERVED_WIDTH = 120  # characters of ``observed`` in the terminal table before eliding


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
