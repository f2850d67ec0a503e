"""``chatcontract classify``: triage a captured response from the command line.

The body comes from a file or stdin; a captured SSE stream (``--stream``, or a
``Content-Type: text/event-stream`` header) gets the stream verdict: complete is a success,
a cut or truncated stream is its ``stream_*`` failure.
"""

from __future__ import annotations

import argparse
import sys

from chatcontract._textfile import FileProblemError, FileTooLargeError, read_limited
from chatcontract.contract import PRESETS, Contract, load, load_preset
from chatcontract.errors import ConfigError, UsageError
from chatcontract.failures import classify

from ._common import emit_json

_BODY_LIMIT = 16 * 1024 * 1024
_MAX_TOKENS = 100_000_000  # the contract's bound on a context window


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "classify",
        help="classify a captured response (status, headers, body) as success or a named failure",
        description="Classify a captured HTTP response against a contract. Exit 0 when the "
        "contract accepts it, 1 for a failure, 2 for bad arguments.",
    )
    parser.add_argument("--status", type=int, required=True, metavar="N", help="HTTP status")
    parser.add_argument(
        "--header",
        action="append",
        default=[],
        metavar="'Name: value'",
        help="a response header (repeatable)",
    )
    parser.add_argument(
        "--body-file",
        metavar="FILE",
        default=None,
        help="the response body (required); '-' reads stdin; an empty body: an empty file",
    )
    parser.add_argument(
        "--stream",
        action="store_true",
        help="the body is a captured SSE stream (implied by 'Content-Type: text/event-stream')",
    )
    parser.add_argument(
        "--usage-asked",
        action="store_true",
        help="the stream's request sent stream_options.include_usage: a missing usage chunk "
        "is then a failure (a stream is judged by what its request asked)",
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--preset",
        default=None,
        metavar="NAME",
        help=f"contract preset: {', '.join(sorted(PRESETS))} (default: cometapi)",
    )
    source.add_argument("--contract", default=None, metavar="FILE", help="contract file")
    parser.add_argument("--max-tokens", type=int, default=None, help="max_tokens of the request")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.set_defaults(handler=run)


def _headers(raw: list[str]) -> dict[str, str]:
    headers: dict[str, str] = {}
    for item in raw:
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise UsageError(f"--header {item!r}: write it as 'Name: value'")
        headers[name.strip()] = value.strip()
    return headers


def _body(path: str | None) -> bytes:
    if path is None:
        raise UsageError(
            "no body given: add --body-file FILE (or --body-file - to read stdin); "
            "for an empty body pass an empty file"
        )
    too_large = (
        f"larger than {_BODY_LIMIT // (1024 * 1024)} MiB, the most classify reads; a body cut "
        "short would be judged as something it is not: give the captured body alone"
    )
    if path == "-":
        body = sys.stdin.buffer.read(_BODY_LIMIT + 1)
        if len(body) > _BODY_LIMIT:
            raise UsageError(f"--body-file -: {too_large}")
        return body
    try:
        return read_limited(path, limit=_BODY_LIMIT)
    except FileNotFoundError as exc:
        raise UsageError(f"--body-file {path}: cannot be read (no such file)") from exc
    except FileTooLargeError as exc:
        raise UsageError(f"--body-file {path}: {too_large}") from exc
    except FileProblemError as exc:
        raise UsageError(f"--body-file {path}: {exc}") from exc


def _contract(args: argparse.Namespace) -> Contract:
    if args.contract:
        return load(args.contract)
    name = args.preset or "cometapi"
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; use one of {', '.join(sorted(PRESETS))}")
    return load_preset(name)


def run(args: argparse.Namespace) -> int:
    if not 100 <= args.status <= 599:
        raise UsageError(f"--status {args.status}: an HTTP status is between 100 and 599")
    if args.max_tokens is not None and not 1 <= args.max_tokens <= _MAX_TOKENS:
        raise UsageError(
            f"--max-tokens {args.max_tokens}: write the request's max_tokens, an integer from 1 "
            f"to {_MAX_TOKENS}"
        )
    headers = _headers(args.header)
    body = _body(args.body_file)
    contract = _contract(args)
    failure = classify(
        args.status,
        headers,
        body,
        contract=contract,
        max_tokens=args.max_tokens,
        stream=True if args.stream else None,
        usage_asked=args.usage_asked,
    )
    if args.format == "json":
        emit_json(None if failure is None else failure.to_dict())
    elif failure is None:
        print("success: the contract accepts this response")
    else:
        for key, value in failure.to_dict().items():
            print(f"{key.ljust(10)}  {'-' if value is None else value}")
    return 0 if failure is None else 1
