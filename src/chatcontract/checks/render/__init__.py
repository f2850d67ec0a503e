"""Renderers for a validation ``Report``: a rich table, JSON, JUnit XML and a Markdown record.

One module per format (``table``, ``json_report``, ``junit``, ``markdown``); this module
holds the dispatch and re-exports each renderer.

Each renderer is pure: a ``Report`` (and, for Markdown, the ``Contract``) in, text out;
``render_table`` is the one that writes, to the console it is given.

Example::

    text = render(report, contract, "junit", console=console)  # -> str
    render(report, contract, "table", console=console)          # prints, -> None
"""

from __future__ import annotations

from rich.console import Console

from chatcontract.checks.model import Report
from chatcontract.contract.model import Contract
from chatcontract.errors import UsageError

from .json_report import render_json
from .junit import render_junit
from .markdown import render_markdown
from .table import render_table

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
