"""``chatcontract checklist``: the rollout checklist from the contract and the last validate run."""

from __future__ import annotations

import argparse
from pathlib import Path

from chatcontract.contract import Contract, read_document
from chatcontract.ops.alerts import ALERTS_DEFAULT_PATH
from chatcontract.ops.checklist import (
    LAST_VALIDATE_PATH,
    ChecklistInputs,
    ChecklistStatus,
    checklist_exit_code,
    evaluate_checklist,
    inspect_alerts,
    inspect_dashboard,
    read_validate_report,
    render_checklist_text,
    secret_paths,
)
from chatcontract.ops.grafana import DASHBOARD_DEFAULT_PATH

from ._common import add_contract_option, contract_path, emit_json, load_contract, write_out

FORMATS = ("text", "json")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "checklist",
        help="the rollout checklist; exit 0 all passed, 1 a line is open, 2 bad input",
        description="Evaluate the rollout checklist from the contract, the last "
        "'chatcontract validate' run and the generated alert rules and dashboard. "
        "Each line is passed or open, with its evidence.",
    )
    add_contract_option(parser, flag="--contract")
    parser.add_argument(
        "--report",
        default=LAST_VALIDATE_PATH,
        metavar="FILE",
        help=f"the validate run to read (default: {LAST_VALIDATE_PATH})",
    )
    parser.add_argument(
        "--alerts",
        default=ALERTS_DEFAULT_PATH,
        metavar="FILE",
        help=f"alert rules written by 'chatcontract alerts' (default: {ALERTS_DEFAULT_PATH})",
    )
    parser.add_argument(
        "--dashboards",
        default=DASHBOARD_DEFAULT_PATH,
        metavar="FILE",
        help=f"dashboard written by 'chatcontract dashboards' (default: {DASHBOARD_DEFAULT_PATH})",
    )
    parser.add_argument("--format", choices=FORMATS, default="text")
    parser.set_defaults(handler=run)


def _review_state(contract: Contract, path: str, report_path: str) -> tuple[ChecklistStatus, str]:
    """The review line, offline: the run record, the contract, the last 'review' outcome."""
    from chatcontract.ops import review

    from .review_cmd import read_record

    log = review.read_review_log(Path(report_path).parent / Path(review.REVIEW_LOG_PATH).name)
    result = review.review(
        contract, contract_path=path, record=read_record(report_path), log=log, offline=True
    )
    return review.review_checklist_line(result)


def run(args: argparse.Namespace) -> int:
    contract = load_contract(args)
    report = read_validate_report(args.report)
    inputs = ChecklistInputs(
        review=_review_state(contract, contract_path(args), args.report),
        contract=contract,
        report=report,
        report_path=args.report,
        secret_paths=secret_paths(read_document(contract_path(args))),
        alerts=inspect_alerts(args.alerts, contract),
        dashboards=inspect_dashboard(args.dashboards, contract),
    )
    items = evaluate_checklist(inputs)
    if args.format == "json":
        emit_json([item.to_dict() for item in items])
    else:
        started = report.get("started_at") or "unknown time"
        heading = (
            f"Rollout checklist for {contract.name} ({contract.provider}); "
            f"validate run {started} from {args.report}"
        )
        write_out(render_checklist_text(items, heading=heading))
    return checklist_exit_code(items)
