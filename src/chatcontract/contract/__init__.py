"""The contract: value objects, YAML load/dump, presets, lint, diff, schema. File reads only."""

from __future__ import annotations

from .diff import Change, diff_documents
from .lint import LintFinding, lint_document
from .loader import (
    DEFAULT_PATH,
    check_document,
    contract_from_document,
    contract_to_document,
    dump,
    load,
    load_preset,
    read_document,
)
from .model import (
    CATEGORIES,
    RETRY_DECISIONS,
    Auth,
    BreakerPolicy,
    Continuation,
    Contract,
    CostCaps,
    Endpoint,
    ErrorRule,
    ErrorTable,
    FallbackRoute,
    Policy,
    Prices,
    ProbeSettings,
    RequestSpec,
    ResponseSpec,
    RetryPolicy,
    Streaming,
    Timeouts,
)
from .presets import PRESETS
from .schema import json_schema

__all__ = [
    "CATEGORIES",
    "DEFAULT_PATH",
    "PRESETS",
    "RETRY_DECISIONS",
    "Auth",
    "BreakerPolicy",
    "Change",
    "Continuation",
    "Contract",
    "CostCaps",
    "Endpoint",
    "ErrorRule",
    "ErrorTable",
    "FallbackRoute",
    "LintFinding",
    "Policy",
    "Prices",
    "ProbeSettings",
    "RequestSpec",
    "ResponseSpec",
    "RetryPolicy",
    "Streaming",
    "Timeouts",
    "check_document",
    "contract_from_document",
    "contract_to_document",
    "diff_documents",
    "dump",
    "json_schema",
    "lint_document",
    "load",
    "load_preset",
    "read_document",
]
