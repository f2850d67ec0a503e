"""The checks, registered in run order with a stable id.

Each check is one small function (in ``positive``, ``negative``, ``faults``, ``measure``,
``hygiene``) taking the ``CheckContext`` and returning an ``Outcome``; the runner times it and
turns it into a ``CheckResult``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .context import CheckContext
from .faults import check_client_timeout, check_stream_interruption
from .hygiene import check_contract_lint, check_redaction
from .measure import check_latency_by_prompt_size, check_rate_limit_burst, check_usage_consistency
from .negative import (
    check_invalid_auth,
    check_malformed_json,
    check_malformed_request,
    check_missing_auth,
    check_unsupported_model,
)
from .outcome import Outcome
from .positive import check_canary, check_canary_repeat, check_stream_parity, check_streaming

__all__ = ["CHECKS", "CheckSpec", "Outcome", "check_ids"]

CheckFn = Callable[[CheckContext], Outcome]


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckSpec:
    """A registered check: id, title, whether it gates the deploy, and when it runs."""

    id: str
    title: str
    fn: CheckFn
    required: bool = True
    negative: bool = False  # sends an invalid request: staging-only unless --allow-negative
    opt_in: bool = False  # runs only when named with --check


CHECKS: tuple[CheckSpec, ...] = (
    CheckSpec(id="canary", title="Positive canary", fn=check_canary),
    CheckSpec(id="canary_repeat", title="Repeated parser canary", fn=check_canary_repeat),
    CheckSpec(id="streaming", title="Streaming parser", fn=check_streaming),
    CheckSpec(id="stream_parity", title="Streaming / non-streaming parity", fn=check_stream_parity),
    CheckSpec(
        id="missing_auth",
        title="Missing auth is classified auth",
        fn=check_missing_auth,
        negative=True,
    ),
    CheckSpec(
        id="invalid_auth",
        title="Invalid auth is classified auth",
        fn=check_invalid_auth,
        negative=True,
    ),
    CheckSpec(
        id="malformed_request",
        title="Malformed request is classified validation",
        fn=check_malformed_request,
        negative=True,
    ),
    CheckSpec(
        id="malformed_json",
        title="Malformed JSON is classified validation",
        fn=check_malformed_json,
        negative=True,
    ),
    CheckSpec(
        id="unsupported_model",
        title="Unsupported model is classified model",
        fn=check_unsupported_model,
        negative=True,
    ),
    CheckSpec(
        id="client_timeout",
        title="Client deadline fires and is classified",
        fn=check_client_timeout,
    ),
    CheckSpec(
        id="stream_interruption",
        title="Cut and stalled streams are classified, never a success",
        fn=check_stream_interruption,
    ),
    CheckSpec(id="usage_consistency", title="Usage consistency", fn=check_usage_consistency),
    CheckSpec(
        id="latency_by_prompt_size",
        title="Latency by prompt size",
        fn=check_latency_by_prompt_size,
        required=False,
    ),
    CheckSpec(
        id="contract_lint", title="Contract file hygiene", fn=check_contract_lint, required=False
    ),
    CheckSpec(
        id="rate_limit_burst",
        title="Small rate-limit burst",
        fn=check_rate_limit_burst,
        required=False,
        opt_in=True,
    ),
    CheckSpec(id="redaction", title="No secret or prompt text in the output", fn=check_redaction),
)


def check_ids() -> tuple[str, ...]:
    """Every check id, in run order."""
    return tuple(spec.id for spec in CHECKS)
