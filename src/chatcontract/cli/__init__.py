"""Command line entry point: parse, build config, run, render, exit code.

Each command lives in its own module exposing ``register(subparsers)``; the module sets
``handler`` on its parser, a function ``(args) -> int``. Exit codes: 0 success, 1 the thing
checked failed, 2 usage or configuration error (one clear line on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from chatcontract._version import __version__
from chatcontract.errors import ChatContractError

from . import (
    alerts_cmd,
    checklist_cmd,
    classify_cmd,
    contract_cmds,
    drift_cmd,
    init_cmd,
    probe_cmd,
    reconcile_cmd,
    simulate,
    validate_cmd,
)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

_COMMANDS = (
    init_cmd,
    contract_cmds,
    validate_cmd,
    classify_cmd,
    simulate,
    probe_cmd,
    drift_cmd,
    alerts_cmd,
    checklist_cmd,
    reconcile_cmd,
)


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"chatcontract: error: {message} (see '{self.prog} --help')\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="chatcontract",
        # Wide enough that every command's help stays on one line.
        formatter_class=lambda prog: argparse.HelpFormatter(prog, width=110),
        description="Freeze, validate, classify and watch the contract your code has with an "
        "LLM chat completions API (CometAPI first, any OpenAI-compatible endpoint).",
    )
    parser.add_argument("--version", action="version", version=f"chatcontract {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for module in _COMMANDS:
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return int(handler(args))
    except ChatContractError as exc:
        print(f"chatcontract: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("chatcontract: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
