"""Run ``chatcontract`` with the probe and drift commands registered (for subprocess tests).

The lead registers ``probe_cmd`` and ``drift_cmd`` in ``chatcontract.cli``; until then (and
independently of it) this entry point builds the same parser with them added.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

from chatcontract.cli import _Parser, drift_cmd, probe_cmd
from chatcontract.errors import ChatContractError


def main(argv: Sequence[str] | None = None) -> int:
    parser = _Parser(prog="chatcontract")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    probe_cmd.register(sub)
    drift_cmd.register(sub)
    args = parser.parse_args(argv)
    handler = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 2
    try:
        return int(handler(args))
    except ChatContractError as exc:
        print(f"chatcontract: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
