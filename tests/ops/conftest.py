"""Fixtures for the ops assets: a contract file, the metric vocabulary, the CLI through register()."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable

import pytest

from chatcontract.cli import alerts_cmd, checklist_cmd
from chatcontract.contract import Contract, contract_from_document, dump
from chatcontract.contract.presets import preset_document
from chatcontract.errors import ChatContractError

# The public metric names (the telemetry issue), spelled out here rather than imported so the
# generators are checked against the published list, not against themselves.
COUNTERS = {
    "llm_request_total",
    "llm_request_schema_invalid_total",
    "llm_request_stream_enabled_total",
    "llm_response_schema_valid_total",
    "llm_response_schema_invalid_total",
    "llm_response_missing_choices_total",
    "llm_response_empty_content_total",
    "llm_response_missing_usage_total",
    "llm_client_timeout_total",
    "llm_usage_prompt_tokens_total",
    "llm_usage_completion_tokens_total",
    "llm_error_total",
    "llm_retry_total",
    "llm_retry_success_total",
    "llm_fallback_activation_total",
    "llm_stream_incomplete_total",
    "llm_budget_refusal_total",
    "llm_deadline_exhausted_total",
    "llm_contract_drift_total",
}
HISTOGRAMS = {
    "llm_latency_ms",
    "llm_time_to_first_byte_ms",
    "llm_time_to_first_token_ms",
    "llm_completion_duration_ms",
    "llm_dns_ms",
    "llm_connect_ms",
    "llm_tls_ms",
    "llm_request_timeout_budget_ms",
}
GAUGES = {
    "probe_success",
    "probe_last_success_timestamp_seconds",
    "probe_paused",
    "llm_contract_review_due_timestamp_seconds",
    "llm_validation_last_verdict",
    "llm_validation_last_timestamp_seconds",
    "probe_store_writable",
}
KNOWN_METRICS = (
    COUNTERS
    | GAUGES
    | {f"{name}{suffix}" for name in HISTOGRAMS for suffix in ("_bucket", "_sum", "_count")}
)

# PromQL words that look like identifiers but are not metric names.
_PROMQL_WORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "inf",
    "nan",
}


def promql_metric_names(expr: str) -> set[str]:
    """The metric names an expression selects: identifiers that are not functions,
    keywords, label names (inside braces or grouping clauses), strings, comments or durations."""
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # string literals
    text = re.sub(r"#[^\n]*", "", text)  # comments
    text = re.sub(r"\{[^}]*\}", "", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", "", text)  # range durations, $__rate_interval
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", text)
    names = set()
    for match in re.finditer(r"[A-Za-z_:][A-Za-z0-9_:]*", text):
        name = match.group(0)
        following = text[match.end() :].lstrip()
        if name.lower() in _PROMQL_WORDS or following.startswith("("):
            continue
        if match.start() > 0 and text[match.start() - 1].isdigit():
            continue  # the exponent/unit part of a number such as 1e3
        names.add(name)
    return names


@pytest.fixture
def known_metrics() -> set[str]:
    return set(KNOWN_METRICS)


@pytest.fixture
def metric_names() -> Callable[[str], set[str]]:
    return promql_metric_names


def make_contract(**changes: object) -> Contract:
    """The cometapi preset with ``changes`` applied (dotted keys reach nested sections)."""
    doc = preset_document("cometapi")
    doc["owner"] = "payments-platform"
    doc["attestations"] = {
        "rate_limits_reviewed": "no per-key RPM limit documented (2026-11-24, J. Doe)",
        "billing_reviewed": "balance alert at 20 USD (2026-11-24, J. Doe)",
    }
    for dotted, value in changes.items():
        *parents, last = dotted.split(".")
        section = doc
        for key in parents:
            section = section[key]
        section[last] = value
    return contract_from_document(doc)


@pytest.fixture
def contract() -> Contract:
    return make_contract()


@pytest.fixture
def contract_factory() -> Callable[..., Contract]:
    return make_contract


@pytest.fixture
def contract_file(tmp_path, contract):
    path = tmp_path / "chatcontract.yaml"
    path.write_text(dump(contract), encoding="utf-8")
    return path


@pytest.fixture
def cli(capsys):
    """Run a command through a parser built with our register(); (code, stdout, stderr).

    Errors are handled as ``chatcontract.cli.main`` does: one line on stderr, exit 2.
    """

    def run(*argv: str):
        parser = argparse.ArgumentParser(prog="chatcontract")
        sub = parser.add_subparsers(dest="command")
        alerts_cmd.register(sub)
        checklist_cmd.register(sub)
        args = parser.parse_args(list(argv))
        try:
            code = int(args.handler(args))
        except ChatContractError as exc:
            print(f"chatcontract: error: {exc}", file=sys.stderr)
            code = 2
        out, err = capsys.readouterr()
        return code, out, err

    return run
