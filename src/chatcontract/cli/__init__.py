"""Command line entry point: parse, build config, run, render, exit code.

Each command lives in its own module exposing ``register(subparsers)``; the module sets
``handler`` on its parser, a function ``(args) -> int``. Exit codes: 0 success, 1 the thing
checked failed, 2 usage or configuration error (one clear line on stderr, no traceback), 141
when stdout's reader left early (``| head``; nothing printed).

Adding a command is one line in ``COMMANDS`` below, ``"name": ("name_cmd", "help line")``,
next to its module ``name_cmd.py`` (``register`` adds the parser named ``name``). The module is
imported only when its command runs; ``--help`` lists it from that line.

Start-up is kept small (``chatcontract --version`` and ``--help``): this module imports no
``argparse`` (``_parser`` does, when a parser is built), no ``typing`` and no command module.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Sequence

TYPE_CHECKING = False  # ``typing`` stays unimported on ``--help``; type checkers read True
if TYPE_CHECKING:
    import argparse

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
#: A command whose output's reader left early (``chatcontract ... | head -1``): 128 + SIGPIPE,
#: what a shell reports for a filter stopped by a closed pipe.
EXIT_PIPE = 141

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


def build_parser(commands: Iterable[str] | None = None) -> argparse.ArgumentParser:
    """The command line parser.

    Args:
        commands: the commands whose modules are imported and registered in full (default:
            all). Every other command is listed with its help line only, enough for ``--help``
            and for argparse to name an unknown command.
    """
    from ._parser import build  # argparse: not imported by ``import chatcontract.cli``

    return build(COMMANDS, commands)


def _command_in(argv: Sequence[str]) -> str | None:
    """The command named on the line: the first word that is not an option (the top-level
    options, ``--help`` and ``--version``, take no value)."""
    return next((word for word in argv if not word.startswith("-")), None)


def print_version() -> None:
    """``chatcontract --version``: the version literal, no metadata read."""
    from chatcontract._version import __version__

    sys.stdout.write(f"chatcontract {__version__}\n")


def main(argv: Sequence[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else list(argv)
    if words == ["--version"]:  # the one answer that needs no parser (nor argparse)
        print_version()
        return EXIT_OK
    command = _command_in(words)
    parser = build_parser([command] if command in COMMANDS else [])
    args = parser.parse_args(words)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return EXIT_USAGE
    from chatcontract.errors import ChatContractError  # only once a command runs

    try:
        code = int(handler(args))
        sys.stdout.flush()  # a closed pipe shows here, not as an ignored error at exit
        return code
    except ChatContractError as exc:
        from chatcontract.redact import redact_text  # a key in a URL the message quotes

        print(f"chatcontract: error: {redact_text(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("chatcontract: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        if not _stdout_reader_left():
            raise
        return EXIT_PIPE


def _stdout_reader_left() -> bool:
    """True when stdout is a pipe nobody reads any more (``| head`` exited); stdout then goes
    to ``/dev/null``, so the interpreter's last flush cannot fail again. A broken pipe anywhere
    else (a socket) is not this and is raised as it came."""
    import os
    import select

    try:
        fd = sys.stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        gone = any(event & select.POLLERR for _, event in poller.poll(0))
        if gone:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, fd)
            os.close(devnull)
    except (AttributeError, OSError, ValueError):
        return False
    return gone


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
