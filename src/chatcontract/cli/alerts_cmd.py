"""``chatcontract alerts`` and ``chatcontract dashboards``: ops assets generated from a contract."""

from __future__ import annotations

import argparse
import sys

from chatcontract.ops.alerts import (
    ALERTS_DEFAULT_PATH,
    alert_group_name,
    build_alert_rules,
    render_alert_rules,
)
from chatcontract.ops.grafana import DASHBOARD_DEFAULT_PATH, dashboard_uid, render_dashboard

from ._common import (
    add_contract_option,
    check_writable,
    contract_path,
    load_contract,
    refuse_overwriting_inputs,
    write_text,
)


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    alerts = sub.add_parser(
        "alerts",
        help="write Prometheus alerting rules for the contract (check with promtool)",
        description="Write Prometheus alerting rules for the contract: schema-invalid rate, "
        "missing paths after a 200, auth, rate limit, quota, client timeouts, missing usage, "
        "probe failures, a probe store refusing writes, drift, review date. Thresholds are "
        "starting points to tune.",
    )
    add_contract_option(alerts, flag="--contract")
    alerts.add_argument(
        "--output",
        default=ALERTS_DEFAULT_PATH,
        metavar="FILE",
        help=f"where to write the rules, '-' for stdout (default: {ALERTS_DEFAULT_PATH})",
    )
    alerts.set_defaults(handler=run_alerts)

    dashboards = sub.add_parser(
        "dashboards",
        help="write a Grafana dashboard (contract health) for the contract",
        description="Write a Grafana dashboard JSON model with a contract-health row built on "
        "the chatcontract metrics; import it and pick the Prometheus data source.",
    )
    add_contract_option(dashboards, flag="--contract")
    dashboards.add_argument(
        "--output",
        default=DASHBOARD_DEFAULT_PATH,
        metavar="FILE",
        help=f"where to write the dashboard, '-' for stdout (default: {DASHBOARD_DEFAULT_PATH})",
    )
    dashboards.set_defaults(handler=run_dashboards)


def _write(text: str, output: str) -> bool:
    """Write ``text`` to ``output`` (``-`` is stdout); True when a file was written."""
    if output == "-":
        sys.stdout.write(text)
        return False
    write_text(output, text, what=f"--output {output}")  # atomic: no half-read file
    return True


def _check_output(args: argparse.Namespace) -> None:
    output = args.output
    if output != "-":
        what = f"--output {output}"
        refuse_overwriting_inputs(output, what=what, reads={"--contract": contract_path(args)})
        check_writable(output, what=what)


def run_alerts(args: argparse.Namespace) -> int:
    _check_output(args)
    contract = load_contract(args)
    text = render_alert_rules(contract)
    if _write(text, args.output):
        count = len(build_alert_rules(contract))
        sys.stdout.write(
            f"wrote {args.output}: {count} alerts in group {alert_group_name(contract)}; "
            f"check with 'promtool check rules {args.output}'\n"
        )
    return 0


def run_dashboards(args: argparse.Namespace) -> int:
    _check_output(args)
    contract = load_contract(args)
    text = render_dashboard(contract)
    if _write(text, args.output):
        sys.stdout.write(
            f"wrote {args.output}: Grafana dashboard uid {dashboard_uid(contract.name)}; "
            "import it and pick the Prometheus data source\n"
        )
    return 0
