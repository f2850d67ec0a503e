"""A live view of the validation suite while it runs: one row per check, and ``n/total``.

The view is only drawn on an interactive terminal. In CI logs, pipes and files it stays
silent, because the final report is rendered separately (``chatcontract.checks.render``)
and a half-drawn live table would only add noise there. It is transient: once the run ends
it clears itself, and the report takes its place.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Self

from rich import box
from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.progress_bar import ProgressBar
from rich.spinner import Spinner
from rich.table import Table
from rich.text import Text

from .model import CheckResult, CheckStatus

__all__ = ["LiveProgress"]

_MARKERS: dict[CheckStatus, tuple[str, str]] = {
    "pass": ("PASS", "bold green"),
    "fail": ("FAIL", "bold red"),
    "warn": ("WARN", "bold yellow"),
    "skip": ("SKIP", "dim"),
}
_NOTES_SHOWN = 3  # the latest notes under the table; older ones scroll away
_REFRESH_PER_SECOND = 10


@dataclass(slots=True, kw_only=True)
class _Row:
    """The display state of one check (mutable: it changes as the check runs)."""

    check_id: str
    title: str
    started: float
    spinner: Spinner
    result: CheckResult | None = None
    done: int | None = None
    total: int | None = None


class LiveProgress:
    """Show each check's state while the suite runs (running → PASS/FAIL/WARN/SKIP with ms).

    Args:
        console: where to draw; nothing is drawn unless ``console.is_terminal``.
        total: how many checks will run (the ``n/total`` counter).
        enabled: ``None`` (default) draws on a terminal; ``False`` never draws. The display
            never writes to a non-terminal, whatever ``enabled`` says.
        clock: monotonic seconds, for the running rows' elapsed time (injectable for tests).

    Every method is safe to call whether or not the display is drawn, and from the thread
    that runs the checks while rich refreshes the view from its own.

    Example::

        with LiveProgress(console, total=len(checks)) as progress:
            for check in checks:
                progress.started(check.id, check.title)
                progress.finished(run(check))
    """

    def __init__(
        self,
        console: Console,
        total: int,
        *,
        enabled: bool | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._console = console
        self._total = max(total, 0)
        self._active = enabled is not False and console.is_terminal
        self._clock = clock
        self._lock = threading.Lock()
        self._rows: dict[str, _Row] = {}
        self._notes: list[str] = []
        self._live: Live | None = None

    @property
    def active(self) -> bool:
        """Whether the view is drawn (a terminal, and not disabled)."""
        return self._active

    @property
    def completed(self) -> int:
        """How many checks have finished."""
        with self._lock:
            return sum(1 for row in self._rows.values() if row.result is not None)

    def __enter__(self) -> Self:
        if self._active:
            self._live = Live(
                console=self._console,
                get_renderable=self._renderable,
                refresh_per_second=_REFRESH_PER_SECOND,
                transient=True,
                # Never capture the process's stdout/stderr: a JSON or JUnit report written
                # to stdout during the run must not end up inside the live view.
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._live.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        live, self._live = self._live, None
        if live is not None:
            live.stop()

    def started(self, check_id: str, title: str) -> None:
        """Mark ``check_id`` as running (a spinner and its elapsed time)."""
        with self._lock:
            self._rows[check_id] = self._new_row(check_id, title)
        self._refresh()

    def advance(self, check_id: str, done: int, total: int) -> None:
        """Show sub-progress of a long check in its row, e.g. ``17/30`` repeated calls."""
        with self._lock:
            row = self._rows.get(check_id)
            if row is None:
                row = self._rows[check_id] = self._new_row(check_id, check_id)
            row.done, row.total = done, total
        self._refresh()

    def finished(self, result: CheckResult) -> None:
        """Replace the check's spinner with its status and duration."""
        with self._lock:
            row = self._rows.get(result.id)
            if row is None:
                row = self._rows[result.id] = self._new_row(result.id, result.title)
            row.result = result
        self._refresh()

    def note(self, text: str) -> None:
        """Show a short line under the table (the latest few are kept)."""
        with self._lock:
            self._notes.append(" ".join(text.split()))
            del self._notes[:-_NOTES_SHOWN]
        self._refresh()

    def _new_row(self, check_id: str, title: str) -> _Row:
        return _Row(
            check_id=check_id,
            title=title,
            started=self._clock(),
            spinner=Spinner("dots", style="cyan"),
        )

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.refresh()

    def _renderable(self) -> RenderableType:
        """The current view; called by rich on every refresh, from its refresh thread."""
        with self._lock:
            now = self._clock()
            table = Table(box=box.SIMPLE, show_header=False, show_edge=False, pad_edge=False)
            table.add_column("state", no_wrap=True, width=4)
            table.add_column("check", no_wrap=True)
            table.add_column("title", overflow="ellipsis", no_wrap=True)
            table.add_column("detail", justify="right", no_wrap=True)
            for row in self._rows.values():
                table.add_row(*self._cells(row, now))
            completed = sum(1 for row in self._rows.values() if row.result is not None)
            footer = Table.grid(padding=(0, 1))
            footer.add_row(
                ProgressBar(total=self._total or 1, completed=completed, width=30),
                Text(f"{completed}/{self._total} checks", style="bold"),
            )
            notes = [Text(note, style="dim") for note in self._notes]
        return Group(table, footer, *notes)

    def _cells(self, row: _Row, now: float) -> tuple[RenderableType, ...]:
        result = row.result
        if result is not None:
            marker, style = _MARKERS[result.status]
            return (
                Text(marker, style=style),
                Text(row.check_id),
                Text(row.title, style="dim"),
                Text(f"{result.duration_ms:.0f} ms"),
            )
        detail = f"{(now - row.started) * 1000:.0f} ms"
        if row.done is not None and row.total is not None:
            detail = f"{row.done}/{row.total}  {detail}"
        return (row.spinner, Text(row.check_id, style="bold"), Text(row.title), Text(detail))
