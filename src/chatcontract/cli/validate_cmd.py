"""``chatcontract validate``: the pre-deploy contract suite; the exit code gates the deploy."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from rich.console import Console

from chatcontract.checks.context import SuiteOptions
from chatcontract.checks.progress import LiveProgress
from chatcontract.checks.render import render
from chatcontract.checks.runner import run_suite, select_checks
from chatcontract.checks.suite import check_ids
from chatcontract.drift import LAST_VALIDATE_PATH, record_validate_run
from chatcontract.errors import UsageError
from chatcontract.target import open_target
from chatcontract.transport import Exchange

FORMATS = ("table", "json", "junit", "markdown")


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "validate",
        help="run the pre-deploy contract suite; exit 0 pass, 1 fail, 2 bad configuration",
        description="Run the contract suite against the contract's endpoint (key from the "
        "contract's env list) or, with no contract and no key, against the embedded simulator.",
    )
    parser.add_argument(
        "--contract",
        default=None,
        metavar="FILE",
        help="contract file (default: ./chatcontract.yaml if present)",
    )
    parser.add_argument("--base-url", default=None, help="override the contract's base URL")
    parser.add_argument("--model", default=None, help="override the model ($CHATCONTRACT_MODEL)")
    parser.add_argument(
        "--simulate", action="store_true", help="validate against the embedded simulator"
    )
    parser.add_argument(
        "--scenario",
        default=None,
        metavar="NAME",
        help="with --simulate: a simulator fault, e.g. cut_stream",
    )
    parser.add_argument(
        "--check",
        action="append",
        default=[],
        metavar="ID",
        help=f"run only this check (repeatable): {', '.join(check_ids())}",
    )
    parser.add_argument(
        "--canary-runs", type=int, default=30, metavar="N", help="repeated canary runs (default 30)"
    )
    parser.add_argument(
        "--latency-samples",
        type=int,
        default=5,
        metavar="K",
        help="samples per prompt size (default 5)",
    )
    parser.add_argument(
        "--allow-negative",
        action="store_true",
        help="run negative checks even when the contract says production",
    )
    parser.add_argument("--format", choices=FORMATS, default="table")
    parser.add_argument(
        "--output", default=None, metavar="FILE", help="write the report here instead of stdout"
    )
    parser.add_argument(
        "--no-record",
        action="store_true",
        help=f"do not write {LAST_VALIDATE_PATH} (the run and its observed shapes, read by "
        "'baseline accept', 'checklist' and 'probe')",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.canary_runs <= 1000:
        raise UsageError("--canary-runs must be between 1 and 1000")
    if not 1 <= args.latency_samples <= 100:
        raise UsageError("--latency-samples must be between 1 and 100")
    if args.output and not Path(args.output).parent.exists():
        raise UsageError(f"--output {args.output}: the directory does not exist")
    if args.scenario is not None:
        from chatcontract.simulator import SCENARIO_NAMES

        if args.scenario not in SCENARIO_NAMES:
            raise UsageError(
                f"unknown scenario {args.scenario!r}; list them with "
                "'chatcontract simulate --list-scenarios'"
            )
    specs = select_checks(tuple(args.check))
    options = SuiteOptions(
        canary_runs=args.canary_runs,
        latency_samples=args.latency_samples,
        allow_negative=args.allow_negative,
        only=tuple(args.check),
    )
    # Progress goes to stderr so a JSON/JUnit report on stdout stays clean.
    progress_console = Console(stderr=True)
    with open_target(
        contract_path=args.contract,
        simulate=args.simulate,
        scenario=args.scenario,
        base_url=args.base_url,
        model=args.model,
    ) as target:
        notes = []
        if target.simulated:
            why = "--simulate" if args.simulate else "no contract file and no API key configured"
            scenario = f", scenario {target.scenario}" if target.scenario else ""
            notes.append(f"simulated because: {why}{scenario}")
        exchanges: list[Exchange] = []
        with LiveProgress(progress_console, total=len(specs)) as live:
            report = run_suite(
                target,
                options,
                on_started=lambda spec: live.started(spec.id, spec.title),
                on_finished=live.finished,
                on_progress=live.advance,
                notes=notes,
                sinks=[exchanges.append],
            )
        contract = target.contract
    if not args.no_record:
        # Summaries only (shapes, ids, timings): no prompt, no completion, no secret.
        written = record_validate_run(report.to_dict(), exchanges)
        print(f"recorded {written} (for baseline accept, checklist, probe)", file=sys.stderr)
    if args.output:
        console = Console(file=open(args.output, "w", encoding="utf-8"), width=120)  # noqa: SIM115
        try:
            text = render(report, contract, args.format, console=console)
            if text is not None:
                console.file.write(text)
        finally:
            console.file.close()
        print(f"report written to {args.output}: {report.verdict}", file=sys.stderr)
    else:
        console = Console()
        text = render(report, contract, args.format, console=console)
        if text is not None:
            sys.stdout.write(text)
    return report.exit_code
