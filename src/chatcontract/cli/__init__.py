"""Command line entry point: parse, build config, run, render, exit code.

Each command lives in its own module exposing ``register(subparsers)``; the module sets
``handler`` on its parser, a function ``(args) -> int``. Exit codes: 0 success, 1 the thing
checked failed, 2 usage or configuration error (one clear line on stderr, no traceback).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from chatcontract.errors import ChatContractError

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

#: Every command, in ``--help`` order: the module that registers it and its one-line help.
#: ``--help`` and ``--version`` import none of these modules (they answer in milliseconds, with
#: no HTTP client, server or terminal UI loaded); running a command imports only its module.
#: ``tests/test_import_cost.py`` checks each line against what the module registers.
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("init_cmd", "write a commented contract file from a preset (cometapi, openai)"),
    "contract": ("contract_cmds", "lint, show, diff or print the JSON Schema of a contract file"),
    "validate": (
        "validate_cmd",
        "run the pre-deploy contract suite; exit 0 pass, 1 fail, 2 bad configuration",
    ),
    "classify": (
        "classify_cmd",
        "classify a captured response (status, headers, body) as success or a named failure",
    ),
    "simulate": ("simulate", "serve a local CometAPI/OpenAI stand-in with every fault on demand"),
    "probe": (
        "probe_cmd",
        "run synthetic probes on a schedule; serve /metrics, /api/summary and a dashboard",
    ),
    "baseline": ("drift_cmd", "manage the accepted response shapes drift is measured against"),
    "drift": (
        "drift_cmd",
        "compare the latest observations with the baseline; exit 0 none, 1 drift, 2 bad input",
    ),
    "alerts": (
        "alerts_cmd",
        "write Prometheus alerting rules for the contract (check with promtool)",
    ),
    "dashboards": ("alerts_cmd", "write a Grafana dashboard (contract health) for the contract"),
    "checklist": (
        "checklist_cmd",
        "the rollout checklist; exit 0 all passed, 1 a line is open, 2 bad input",
    ),
    "review": (
        "review_cmd",
        "is the last passing validation still valid? exit 0 unchanged, 1 changed, 2 cannot tell",
    ),
    "reconcile": (
        "reconcile_cmd",
        "compare the usage ledger with a provider usage export; exit 1 above tolerance",
    ),
    "gateway": (
        "gateway_cmd",
        "serve the contract to any language as an OpenAI-compatible sidecar",
    ),
}


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USAGE, f"chatcontract: error: {message} (see '{self.prog} --help')\n")


class _VersionAction(argparse.Action):
    """``--version``, reading the installed metadata only when asked."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        kwargs.update(nargs=0, default=argparse.SUPPRESS)
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *_: Any) -> None:
        from chatcontract._version import __version__

        sys.stdout.write(f"chatcontract {__version__}\n")
        parser.exit()


def build_parser(commands: Iterable[str] | None = None) -> argparse.ArgumentParser:
    """The command line parser.

    Args:
        commands: the commands whose modules are imported and registered in full (default:
            all). Every other command is listed with its help line only, enough for ``--help``
            and for argparse to name an unknown command.
    """
    parser = _Parser(
        prog="chatcontract",
        # Wide enough that every command's help stays on one line.
        formatter_class=lambda prog: argparse.HelpFormatter(prog, width=110),
        description="Freeze, validate, classify and watch the contract your code has with an "
        "LLM chat completions API (CometAPI first, any OpenAI-compatible endpoint).",
    )
    parser.add_argument(
        "--version", action=_VersionAction, help="show the installed version and exit"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    wanted = {COMMANDS[name][0] for name in COMMANDS if commands is None or name in commands}
    for name, (module_name, help_line) in COMMANDS.items():
        if name in sub.choices:  # registered with an earlier command of the same module
            continue
        if module_name in wanted:
            importlib.import_module(f"{__name__}.{module_name}").register(sub)
        else:
            sub.add_parser(name, help=help_line)
    return parser


def _command_in(argv: Sequence[str]) -> str | None:
    """The command named on the line: the first word that is not an option (the top-level
    options, ``--help`` and ``--version``, take no value)."""
    return next((word for word in argv if not word.startswith("-")), None)


def main(argv: Sequence[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    command = _command_in(words)
    parser = build_parser([command] if command in COMMANDS else [])
    args = parser.parse_args(words)
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
