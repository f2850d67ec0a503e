"""``chatcontract reconcile``: the usage ledger against the provider's usage export."""

from __future__ import annotations

import argparse
import sys

from ._common import emit_json

REPORT_FORMATS = ("text", "json")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "reconcile",
        help="compare the usage ledger with a provider usage export; exit 1 above tolerance",
        description="Match the usage ledger (UsageLedger) against a provider usage export: "
        "per request where the export has request ids, else per time bucket and model "
        "(OpenAI's usage API). Reports matched calls or buckets, what is only on one side, "
        "duplicates, calls without usage on our side, and token and cost differences per "
        "model and day. Exit 0 within tolerance, 1 above it, 2 bad input.",
    )
    parser.add_argument(
        "--ledger",
        action="append",
        required=True,
        metavar="FILE",
        help="the ledger file (its rotated files beside it are read too); repeat for several",
    )
    parser.add_argument("--export", required=True, metavar="FILE", help="the provider's export")
    parser.add_argument(
        "--format",
        choices=("csv", "json"),
        default=None,
        help="the export's format (default: csv for *.csv, else json)",
    )
    parser.add_argument(
        "--map",
        action="extend",
        nargs="+",
        default=[],
        metavar="COLUMN=FIELD",
        help="name the export column holding a field (request_id, time, start_time, end_time, "
        "model, prompt_tokens, completion_tokens, total_tokens, requests, cost_usd, or ignore)",
    )
    parser.add_argument(
        "--tolerance",
        default="2%",
        metavar="PCT",
        help="largest accepted difference per model and day, and in total (default: 2%%)",
    )
    parser.add_argument(
        "--max-skew",
        default="5m",
        metavar="DURATION",
        help="clock difference allowed between the ledger and the export when matching time "
        "buckets (default: 5m; e.g. 120s)",
    )
    parser.add_argument(
        "--report-format",
        choices=REPORT_FORMATS,
        default="text",
        help="how the report is printed (default: text)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from chatcontract.ops._export import parse_map
    from chatcontract.ops.reconcile import (
        parse_skew,
        parse_tolerance,
        reconcile_files,
        render_text,
    )
    from chatcontract.redact import redact_value

    tolerance = parse_tolerance(args.tolerance)
    skew = parse_skew(args.max_skew)
    overrides = parse_map(args.map)
    report = reconcile_files(
        args.ledger,
        args.export,
        format=args.format,
        overrides=overrides,
        tolerance=tolerance,
        skew_s=skew,
    )
    # Ids and models come from the files: a key-shaped id is not repeated into a CI log.
    data = redact_value(report.to_dict())
    if args.report_format == "json":
        emit_json(data)
    else:
        sys.stdout.write(render_text(data))  # type: ignore[arg-type]
    return report.exit_code
