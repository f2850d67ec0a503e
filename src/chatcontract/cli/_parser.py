"""The argparse side of the CLI, imported only when a parser is built (``--version`` alone
never builds one)."""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Iterable, Mapping, Sequence

from . import EXIT_USAGE, TYPE_CHECKING, print_version

if TYPE_CHECKING:
    from typing import Any

__all__ = ["build"]


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"chatcontract: error: {message} (see '{self.prog} --help')\n")


class _VersionAction(argparse.Action):
    """``--version`` among other words (alone, ``main`` answers it before any parser)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        kwargs.update(nargs=0, default=argparse.SUPPRESS)
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        print_version()
        parser.exit()


def build(
    table: Mapping[str, tuple[str, str]], commands: Iterable[str] | None
) -> argparse.ArgumentParser:
    """The parser for the commands of ``table`` (``chatcontract.cli.COMMANDS``); see
    ``chatcontract.cli.build_parser``."""
    parser = _Parser(
        prog="chatcontract",
        # Wide enough that every command and its help stay on one line.
        formatter_class=lambda prog: argparse.HelpFormatter(prog, width=110, max_help_position=32),
        description="Freeze, validate, classify and watch the contract your code has with an "
        "LLM chat completions API (CometAPI first, any OpenAI-compatible endpoint).",
    )
    parser.add_argument(
        "--version", action=_VersionAction, help="show the installed version and exit"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    wanted = {table[name][0] for name in table if commands is None or name in commands}
    for name, (module_name, help_line) in table.items():
        if name in sub.choices:  # registered with an earlier command of the same module
            continue
        if module_name in wanted:
            importlib.import_module(f"{__package__}.{module_name}").register(sub)
        else:
            # Listed only (its module registers it when it runs): no options, not even -h,
            # whose help formatter would measure the terminal (shutil: 2 ms) for nothing.
            sub.add_parser(name, help=help_line, add_help=False)
    return parser
