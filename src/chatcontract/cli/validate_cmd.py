"""``chatcontract validate``: the pre-deploy contract suite; the exit code gates the deploy."""

from __future__ import annotations

import argparse
import io
import math
import os
import sys

from rich.console import Console

from chatcontract.checks.context import MAX_DEADLINE_MS, MIN_DEADLINE_MS, SuiteOptions
from chatcontract.checks.faults import DEFAULT_DEADLINE_MS
from chatcontract.checks.preflight import preflight
from chatcontract.checks.progress import LiveProgress
from chatcontract.checks.render import render
from chatcontract.checks.runner import run_suite, select_checks
from chatcontract.checks.suite import check_ids
from chatcontract.contract import DEFAULT_PATH
from chatcontract.drift import LAST_VALIDATE_PATH, record_validate_run
from chatcontract.errors import ChatContractError, UsageError
from chatcontract.exchange import Exchange
from chatcontract.target import open_target

from ._common import add_target_options, check_writable, refuse_overwriting_inputs, write_text

FORMATS = ("table", "json", "junit", "markdown")
#: The exit code when the suite ran but its report or run record could not be written.
EXIT_WRITE_FAILED = 2
_RECORD = f"the run record {LAST_VALIDATE_PATH} (skip it with --no-record)"

# Checks that read the contract or the run's own output and send nothing: no preflight.
_OFFLINE_CHECKS = frozenset({"contract_lint", "redaction"})


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "validate",
        help="run the pre-deploy contract suite; exit 0 pass, 1 fail, 2 bad configuration",
        description="Run the contract suite against the contract's endpoint (key from the "
        "contract's env list) or, with no contract and no key, against the embedded simulator.",
    )
    add_target_options(parser)
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
        "--timeout-deadline-ms",
        default=None,
        metavar="MS",
        help="the client deadline client_timeout proves through the local fault relay "
        f"(default {DEFAULT_DEADLINE_MS:g}; between {MIN_DEADLINE_MS:g} and {MAX_DEADLINE_MS:g})",
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


def _deadline_ms(value: str | None) -> float | None:
    """``--timeout-deadline-ms``, bounded (a lint-style line for anything else)."""
    if value is None:
        return None
    try:
        deadline = float(value)
    except ValueError:
        deadline = math.nan
    if not MIN_DEADLINE_MS <= deadline <= MAX_DEADLINE_MS:  # nan and inf included
        shown = value if value.isprintable() else repr(value)
        raise UsageError(
            f"--timeout-deadline-ms {shown}: must be a number of milliseconds between "
            f"{MIN_DEADLINE_MS:g} and {MAX_DEADLINE_MS:g}; write e.g. --timeout-deadline-ms "
            f"{DEFAULT_DEADLINE_MS:g}"
        )
    return deadline


def run(args: argparse.Namespace) -> int:
    if not 1 <= args.canary_runs <= 1000:
        raise UsageError("--canary-runs must be between 1 and 1000")
    if not 1 <= args.latency_samples <= 100:
        raise UsageError("--latency-samples must be between 1 and 100")
    # Every file this run writes is checked before the first request, not after the suite.
    if args.output:
        what = f"--output {args.output}"
        contract = args.contract or DEFAULT_PATH
        refuse_overwriting_inputs(args.output, what=what, reads={"--contract": contract})
        check_writable(args.output, what=what)
    if not args.no_record:
        check_writable(LAST_VALIDATE_PATH, what=_RECORD, create_parents=True)
    deadline = _deadline_ms(args.timeout_deadline_ms)
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
        timeout_deadline_ms=deadline,
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
        if any(spec.id not in _OFFLINE_CHECKS for spec in specs):
            unreachable = preflight(target)
            if unreachable is not None:
                print(f"chatcontract: {unreachable}; no check ran", file=sys.stderr)
                return 1
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
        validated = None
        if report.verdict == "pass" and not args.no_record:
            # What this passing run proved, for 'chatcontract review'; the documentation
            # fetch is bounded and never fails the run (unreachable is recorded as such).
            from chatcontract.ops.review import describe_documentation, validated_facts

            validated = validated_facts(
                target.contract, target.contract_path, simulated=target.simulated
            )
            print(describe_documentation(validated), file=sys.stderr)
    failed_writes = []
    if args.output:
        buffer = io.StringIO()
        text = render(report, contract, args.format, console=Console(file=buffer, width=_WIDTH))
        try:
            write_text(args.output, buffer.getvalue() if text is None else text, what="--output")
            print(f"report written to {args.output}: {report.verdict}", file=sys.stderr)
        except ChatContractError as exc:
            # The suite ran: the report is not lost, it goes to stdout instead.
            sys.stdout.write(buffer.getvalue() if text is None else text)
            failed_writes.append(f"{exc}; the report was printed to stdout instead")
    else:
        text = render(report, contract, args.format, console=_stdout_console())
        if text is not None:
            sys.stdout.write(text)
    if not args.no_record:
        # Summaries only (shapes, ids, timings): no prompt, no completion, no secret.
        try:
            written = record_validate_run(report.to_dict(), exchanges, validated=validated)
            print(f"recorded {written} (for baseline accept, checklist, probe)", file=sys.stderr)
        except OSError as exc:
            failed_writes.append(
                f"{_RECORD}: cannot write {LAST_VALIDATE_PATH} ({exc.strerror or exc}); "
                "the report is complete"
            )
    if failed_writes:
        print(f"chatcontract: error: {'; '.join(failed_writes)}", file=sys.stderr)
        return EXIT_WRITE_FAILED
    return report.exit_code


#: The table's width where no terminal gives one (a file, a pipe, a CI log): wide enough that
#: a failure code in the ``observed`` column is never folded in two.
_WIDTH = 120


def _stdout_console() -> Console:
    """The console for the report on stdout: a terminal's own width; piped or redirected,
    ``$COLUMNS`` if set, else ``_WIDTH`` (rich's 80 folded codes such as
    ``transport/timeout/read_timeout`` across two lines of a CI log)."""
    if sys.stdout.isatty() or os.environ.get("COLUMNS"):
        return Console()
    return Console(width=_WIDTH)
