"""``chatcontract contract lint|show|diff|schema``."""

from __future__ import annotations

import argparse
import os
from typing import Any

from chatcontract.contract import (
    Contract,
    check_document,
    contract_from_document,
    contract_to_document,
    diff_documents,
    json_schema,
    lint_document,
    read_document,
)
from chatcontract.errors import ContractFileError
from chatcontract.redact import redact_text, redact_value

from ._common import add_contract_option, contract_path, emit_json, load_contract


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "contract",
        help="lint, show, diff or print the JSON Schema of a contract file",
        description="Work with a contract file.",
    )
    inner = parser.add_subparsers(dest="contract_command", metavar="ACTION")
    parser.set_defaults(handler=lambda _args: _missing_action(parser))

    lint = inner.add_parser("lint", help="problems with the file: errors (exit 1) and warnings")
    add_contract_option(lint)
    lint.add_argument("--format", choices=("text", "json"), default="text")
    lint.set_defaults(handler=run_lint)

    show = inner.add_parser("show", help="resolved values; the secret only as present/missing")
    add_contract_option(show)
    show.add_argument("--model", default=None, help="model override, as the client would use it")
    show.add_argument("--format", choices=("text", "json"), default="text")
    show.set_defaults(handler=run_show)

    diff = inner.add_parser("diff", help="field-level changes between two files, breaking flagged")
    diff.add_argument("old", metavar="OLD")
    diff.add_argument("new", metavar="NEW")
    diff.add_argument("--format", choices=("text", "json"), default="text")
    diff.set_defaults(handler=run_diff)

    schema = inner.add_parser("schema", help="the JSON Schema of the contract file, for editors")
    schema.set_defaults(handler=run_schema)


def _missing_action(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def run_lint(args: argparse.Namespace) -> int:
    path = contract_path(args)
    try:
        document: object = read_document(path)
    except ContractFileError as exc:
        if "not valid YAML" not in str(exc) and "must hold a mapping" not in str(exc):
            raise
        findings_text = [str(exc).removeprefix(f"{path}: ")]
        if args.format == "json":
            emit_json({"path": path, "errors": findings_text, "warnings": []})
        else:
            print(f"{path}: error: {findings_text[0]}")
        return 1
    findings = lint_document(document)
    errors = [f.message for f in findings if f.level == "error"]
    warnings = [f.message for f in findings if f.level == "warning"]
    if args.format == "json":
        emit_json({"path": path, "errors": errors, "warnings": warnings})
    else:
        for finding in findings:
            print(f"{path}: {finding}")
        summary = f"{len(errors)} error(s), {len(warnings)} warning(s)"
        print(f"{path}: {'ok, ' if not errors else ''}{summary}")
    return 1 if errors else 0


def _secret_status(contract: Contract) -> dict[str, Any]:
    found = contract.auth.resolve()
    if found is None:
        return {"status": "missing", "looked_in": list(contract.auth.env)}
    return {"status": "present", "variable": found[0]}


def run_show(args: argparse.Namespace) -> int:
    contract = load_contract(args)
    document = contract_to_document(contract)
    model = contract.resolved_model(args.model)
    secret = _secret_status(contract)
    resolved: dict[str, Any] = {
        "path": contract_path(args),
        "url": contract.endpoint.url,
        "model": model,
        "model_source": "--model"
        if args.model
        else ("$CHATCONTRACT_MODEL" if model != contract.model else "contract"),
        "secret": secret,
        "kill_switch": _kill_switch(contract),
        "contract": document,
    }
    if args.format == "json":
        emit_json(redact_value(resolved))
        return 0
    timeouts, retry = contract.policy.timeouts, contract.policy.retry
    secret_line = (
        f"present in ${secret['variable']}"
        if secret["status"] == "present"
        else f"missing (set one of: {', '.join('$' + v for v in contract.auth.env)})"
    )
    rows = [
        ("contract", f"{contract.name} ({contract.provider}), {resolved['path']}"),
        ("environment", contract.environment),
        ("owner", contract.owner or "(none)"),
        ("reviewed_on", contract.reviewed_on.isoformat() if contract.reviewed_on else "(never)"),
        ("reference", contract.reference_url or "(none)"),
        ("endpoint", f"{contract.endpoint.method} {contract.endpoint.url}"),
        ("auth", f"{contract.auth.header}: {contract.auth.scheme} <secret>".replace("  ", " ")),
        ("secret", secret_line),
        ("model", f"{model} (from {resolved['model_source']})"),
        ("fallbacks", ", ".join(_route(r) for r in contract.fallbacks) or "(none)"),
        ("required request", ", ".join(contract.request.required)),
        ("consumed paths", ", ".join(contract.response.required_paths)),
        ("optional paths", ", ".join(contract.response.optional_paths) or "(none)"),
        ("finish_reasons", ", ".join(contract.response.finish_reasons)),
        (
            "streaming",
            f"used={contract.streaming.used} include_usage={contract.streaming.include_usage} "
            f"require_done={contract.streaming.require_done}",
        ),
        ("retryable", ", ".join(contract.errors.retryable)),
        ("non-retryable", ", ".join(contract.errors.non_retryable)),
        ("error rules", str(len(contract.errors.rules))),
        (
            "timeouts (ms)",
            f"connect={timeouts.connect_ms} first_byte={timeouts.first_byte_ms} "
            f"first_token={timeouts.first_token_ms} "
            f"total={contract.policy.timeouts.total_ms}",
        ),
        (
            "retry",
            f"max_attempts={contract.policy.retry.max_attempts} "
            f"backoff={retry.backoff_initial_ms}..{retry.backoff_max_ms} ms "
            f"jitter={contract.policy.retry.jitter}",
        ),
        ("fallback reserve", f"{contract.policy.fallback_reserve_ms} ms"),
        ("kill switch", resolved["kill_switch"]),
    ]
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"{name.ljust(width)}  {redact_text(value)}")
    return 0


def _kill_switch(contract: Contract) -> str:
    name = contract.policy.kill_switch_env
    if not name:
        return "(none named)"
    state = "SET" if os.environ.get(name, "").strip() else "not set"
    return f"${name} ({state})"


def _route(route: Any) -> str:
    parts = [route.model or "same model"]
    if route.base_url:
        parts.append(f"via {route.base_url}")
    return f"{route.name}: {' '.join(parts)}"


def run_diff(args: argparse.Namespace) -> int:
    old_doc, new_doc = read_document(args.old), read_document(args.new)
    # Both must be valid contracts: a diff against a broken file would mislead.
    for path, doc in ((args.old, old_doc), (args.new, new_doc)):
        problems = check_document(doc)
        if problems:
            raise ContractFileError(
                path, f"{problems[0]}; run 'chatcontract contract lint --path {path}'"
            )
    old = contract_to_document(contract_from_document(old_doc))
    new = contract_to_document(contract_from_document(new_doc))
    changes = diff_documents(old, new)
    breaking = [c for c in changes if c.breaking]
    if args.format == "json":
        emit_json(
            {
                "old": args.old,
                "new": args.new,
                "breaking": len(breaking),
                "changes": [
                    {
                        "path": c.path,
                        "change": c.change,
                        "old": c.old,
                        "new": c.new,
                        "breaking": c.breaking,
                    }
                    for c in changes
                ],
            }
        )
    else:
        for change in changes:
            print(change.describe())
        print(f"{len(changes)} change(s), {len(breaking)} breaking ('!')")
    return 1 if breaking else 0


def run_schema(_args: argparse.Namespace) -> int:
    emit_json(json_schema())
    return 0
