"""The live progress view: silent off a terminal, drawn on one, never an error either way."""

import io

import pytest
from rich.console import Console

from chatcontract.checks.model import CheckResult
from chatcontract.checks.progress import LiveProgress


def result(check_id, status="pass", duration_ms=12.0):
    return CheckResult(
        id=check_id,
        title=f"title of {check_id}",
        status=status,
        required=True,
        duration_ms=duration_ms,
        expected="-",
        observed="-",
    )


def run_two_checks(progress):
    with progress:
        progress.note("target: the embedded simulator")
        progress.started("basic_completion", "A minimal request completes")
        progress.finished(result("basic_completion"))
        progress.started("canary_repeat", "The canary answers 30 times")
        progress.advance("canary_repeat", 17, 30)
        progress.finished(result("canary_repeat", "fail", 950.0))


def test_non_terminal_console_prints_nothing():
    out = io.StringIO()
    console = Console(file=out, force_terminal=False)
    progress = LiveProgress(console, total=2)
    run_two_checks(progress)
    assert not progress.active
    assert out.getvalue() == ""
    assert progress.completed == 2


def test_disabled_progress_prints_nothing_even_on_a_terminal():
    out = io.StringIO()
    console = Console(file=out, force_terminal=True)
    progress = LiveProgress(console, total=2, enabled=False)
    run_two_checks(progress)
    assert not progress.active
    assert out.getvalue() == ""


def test_terminal_console_draws_the_check_ids_and_counter():
    console = Console(file=io.StringIO(), force_terminal=True, record=True, width=100)
    progress = LiveProgress(console, total=2)
    run_two_checks(progress)
    text = console.export_text()
    assert progress.active
    assert "basic_completion" in text
    assert "canary_repeat" in text
    assert "2/2 checks" in text


def test_running_row_shows_sub_progress_and_elapsed_time():
    now = [100.0]
    console = Console(file=io.StringIO(), force_terminal=True, record=True, width=100)
    progress = LiveProgress(console, total=3, clock=lambda: now[0])
    progress.started("canary_repeat", "The canary answers 30 times")
    progress.advance("canary_repeat", 17, 30)
    now[0] = 100.25
    console.print(progress._renderable())
    text = console.export_text()
    assert "17/30  250 ms" in text
    assert "0/3 checks" in text


@pytest.mark.parametrize(
    ("status", "marker"),
    [("pass", "PASS"), ("fail", "FAIL"), ("warn", "WARN"), ("skip", "SKIP")],
    ids=["pass", "fail", "warn", "skip"],
)
def test_finished_row_shows_status_and_duration(status, marker):
    console = Console(file=io.StringIO(), force_terminal=True, record=True, width=100)
    progress = LiveProgress(console, total=1)
    progress.started("basic_completion", "A minimal request completes")
    progress.finished(result("basic_completion", status, 412.4))
    console.print(progress._renderable())
    line = next(line for line in console.export_text().splitlines() if "basic_completion" in line)
    assert marker in line
    assert "412 ms" in line


def test_finished_and_advance_without_started_do_not_raise():
    progress = LiveProgress(Console(file=io.StringIO()), total=2)
    with progress:
        progress.advance("rate_limit_burst", 3, 10)
        progress.finished(result("latency"))
        progress.finished(result("latency"))
    assert progress.completed == 1


def test_only_the_latest_notes_are_kept():
    console = Console(file=io.StringIO(), force_terminal=True, record=True, width=100)
    progress = LiveProgress(console, total=1)
    for index in range(5):
        progress.note(f"note number {index}")
    console.print(progress._renderable())
    text = console.export_text()
    assert "note number 1" not in text
    assert "note number 4" in text


def test_exiting_on_an_exception_stops_the_display_and_propagates():
    console = Console(file=io.StringIO(), force_terminal=True, record=True, width=100)
    progress = LiveProgress(console, total=1)

    def crash_while_running():
        with progress:
            progress.started("basic_completion", "A minimal request completes")
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        crash_while_running()
    assert progress._live is None
