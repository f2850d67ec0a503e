"""``chatcontract review``: is the last passing validation still valid? (for a scheduled job)."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from chatcontract._jsonfile import read_json_file
from chatcontract.drift import LAST_VALIDATE_PATH
from chatcontract.errors import ConfigError, UsageError

from ._common import add_contract_option, contract_path, emit_json, load_contract, write_out

FORMATS = ("text", "json")
_MAX_NAME = 200


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "review",
        help="is the last passing validation still valid? exit 0 unchanged, 1 changed, "
        "2 cannot tell",
        description="Recompute what the last passing 'chatcontract validate' recorded (the "
        "contract file, the installed chatcontract/openai/httpx2 versions, the provider's "
        "documentation at reference_url) and the review date (reviewed_on + "
        "review_every_days). Exit 0 when nothing changed, 1 naming each change and the "
        "clause it touches, 2 when it cannot tell (and why).",
    )
    add_contract_option(parser, flag="--contract")
    parser.add_argument(
        "--record",
        default=LAST_VALIDATE_PATH,
        metavar="FILE",
        help=f"the validate run record (default: {LAST_VALIDATE_PATH})",
    )
    parser.add_argument("--format", choices=FORMATS, default="text")
    parser.add_argument(
        "--accept",
        action="store_true",
        help="record the current documentation as reviewed and harmless (who and when), "
        "without a paid validate; contract and SDK changes still need 'validate'",
    )
    parser.add_argument(
        "--by",
        default=None,
        metavar="NAME",
        help="with --accept: who judged the change harmless (default: $USER)",
    )
    parser.add_argument(
        "--note", default="", metavar="TEXT", help="with --accept: why it is harmless"
    )
    parser.add_argument(
        "--no-record",
        action="store_true",
        help="do not keep this review's outcome in .chatcontract/review.json (read by 'checklist')",
    )
    parser.set_defaults(handler=run)


def _line(flag: str, value: str) -> str:
    value = value.strip()
    if len(value) > _MAX_NAME or not value.isprintable():
        raise UsageError(
            f"{flag}: write one line of at most {_MAX_NAME} printable characters, "
            "e.g. --by 'J. Doe'"
        )
    return value


def _reviewer(args: argparse.Namespace) -> str:
    name = args.by if args.by is not None else os.environ.get("USER") or os.environ.get("USERNAME")
    if not name or not name.strip():
        raise UsageError("--accept needs a name: write --by NAME (who judged the change harmless)")
    return _line("--by", name)


def read_record(path: str) -> dict[str, Any] | None:
    """The parsed run record, None when there is none; ``ConfigError`` when unusable."""
    try:
        data = read_json_file(path, remedy="run 'chatcontract validate' again")
    except FileNotFoundError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("report"), dict):
        raise ConfigError(f"{path}: not a validate run record; run 'chatcontract validate' again")
    return data


def run(args: argparse.Namespace) -> int:
    from chatcontract.ops import review as reviewing

    if not args.accept and (args.by is not None or args.note):
        raise UsageError("--by and --note go with --accept; add --accept or drop them")
    by = _reviewer(args) if args.accept else ""
    note = _line("--note", args.note) if args.note else ""
    contract = load_contract(args)
    path = contract_path(args)
    record = read_record(args.record)
    log_path = Path(args.record).parent / Path(reviewing.REVIEW_LOG_PATH).name
    log = reviewing.read_review_log(log_path)
    result = reviewing.review(contract, contract_path=path, record=record, log=log)
    if args.accept:
        result, log = reviewing.accept_documentation(result, log, by=by, note=note)
    if not args.no_record and result.run_id is not None:
        try:
            reviewing.write_review_log(reviewing.with_last_review(log, result), log_path)
        except OSError as exc:
            if args.accept:
                raise UsageError(
                    f"cannot write {log_path} ({exc.strerror or exc}); nothing was accepted"
                ) from exc
            print(
                f"chatcontract: warning: cannot write {log_path} ({exc.strerror or exc})",
                file=sys.stderr,
            )
    if args.format == "json":
        emit_json(result.to_dict())
    else:
        write_out(reviewing.render_review_text(result, contract_path=path))
    return result.exit_code
