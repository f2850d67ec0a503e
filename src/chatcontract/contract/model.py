"""The contract, declared once: every field with its type, bounds, description and rules.

Each field is ``Annotated[type, Meta(bounds, description=...), Check(rule)]``. From this one
declaration msgspec builds the objects and the JSON Schema (``contract schema``); ``loader``
derives its messages ("policy.retry.max_attempts: expected an integer from 1 to 10, got
'three'") and the commented ``init`` file; ``lint`` and ``contract show`` read the same
objects. The classes are frozen, slotted, keyword-only dataclasses; ``__post_init__`` checks
an object built in code against the same declaration, then the rules between fields.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

from msgspec import Meta

from chatcontract.errors import ConfigError

from . import _checks as rules
from ._checks import (
    CATEGORIES,
    MAX_MODEL_LENGTH,
    MAX_NAME_LENGTH,
    MAX_SCHEME_LENGTH,
    MAX_URL_LENGTH,
    check_base_url,
    check_model_name,
    check_secret,
    redact_url,
)
from ._declare import Check, OneOrMany, check_fields
from ._regex import MAX_PATTERN_LENGTH

__all__ = [
    "CATEGORIES",
    "CONTINUATIONS",
    "MAX_MODEL_LENGTH",
    "MAX_NAME_LENGTH",
    "MAX_URL_LENGTH",
    "RETRY_DECISIONS",
    "Auth",
    "BreakerPolicy",
    "Continuation",
    "Contract",
    "CostCaps",
    "Endpoint",
    "ErrorRule",
    "ErrorTable",
    "FallbackRoute",
    "Policy",
    "Prices",
    "ProbeSettings",
    "RequestSpec",
    "ResponseSpec",
    "RetryPolicy",
    "Streaming",
    "Timeouts",
    "check_base_url",
    "check_model_name",
    "check_secret",
    "redact_url",
]

#: What the policy may decide for a failure category.
RETRY_DECISIONS: tuple[str, ...] = ("retry", "fallback", "none")

Environment = Literal["staging", "production"]
BodyKind = Literal["any", "json", "empty", "html", "text"]

_HOUR_MS = 3_600_000
_DAY_S = 86_400
_MONEY = 1_000_000  # USD: a cap or budget above this is a typo

# Building blocks of the declaration. A value outside the bounds is a typo or an attack
# (``max_attempts: 1000000000``), never a setting.
_ENUM = "enum"


def _ms(low: int, high: int, description: str) -> Meta:
    return Meta(ge=low, le=high, description=description)


Name = Annotated[str, Meta(max_length=MAX_NAME_LENGTH), Check(rules.not_blank)]
Label = Annotated[str, Meta(max_length=MAX_NAME_LENGTH), Check(rules.one_line)]
EnvName = Annotated[
    str,
    Meta(max_length=MAX_NAME_LENGTH, extra_json_schema={"pattern": rules.ENV_PATTERN}),
    Check(rules.env_name),
]
BaseUrl = Annotated[str, Meta(max_length=MAX_URL_LENGTH), Check(check_base_url)]
ModelName = Annotated[str, Meta(min_length=1, max_length=MAX_MODEL_LENGTH), Check(check_model_name)]
Category = Annotated[str, Meta(extra_json_schema={_ENUM: list(CATEGORIES)}), Check(rules.category)]
ResponsePath = Annotated[
    str,
    Meta(max_length=512, extra_json_schema={"pattern": rules.PATH_PATTERN}),
    Check(rules.response_path),
]
#: How a route accepts a request to continue a partly delivered answer (DESIGN.md, stream
#: recovery): ``none`` (it does not), ``assistant_prefix`` (a trailing assistant message with the
#: partial text is continued, as Anthropic, vLLM and llama.cpp do), ``continue_final_message``
#: (the same, plus ``continue_final_message: true`` and ``add_generation_prompt: false``, as
#: vLLM's chat template needs).
Continuation = Literal["none", "assistant_prefix", "continue_final_message"]
CONTINUATIONS: tuple[str, ...] = ("none", "assistant_prefix", "continue_final_message")
ContextWindow = Annotated[int, Meta(ge=1, le=100_000_000)]
HttpStatus = Annotated[int, Meta(ge=100, le=599, description="An HTTP status.")]
FreeText = Annotated[str, Meta(max_length=1_000)]


def _distinct(where: str, values: tuple[Any, ...]) -> None:
    twice = sorted({str(v) for v in values if values.count(v) > 1})
    if twice:
        raise ConfigError(f"{where}: {', '.join(twice)} listed more than once")


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint:
    """Where requests go: ``base_url`` + ``path`` with ``method``."""

    base_url: Annotated[
        BaseUrl,
        Meta(description="Everything before the path; CometAPI: https://api.cometapi.com/v1."),
    ]
    path: Annotated[
        str,
        Meta(
            max_length=MAX_URL_LENGTH,
            description="The chat completions path, appended to base_url.",
        ),
        Check(rules.url_path),
    ] = "/chat/completions"
    method: Annotated[
        str,
        Meta(
            description="The HTTP method of the call.",
            extra_json_schema={_ENUM: list(rules.METHODS)},
        ),
        Check(rules.http_method),
    ] = "POST"
    models_path: Annotated[
        str,
        Meta(
            max_length=MAX_URL_LENGTH,
            description="The model list (auth required), appended to base_url.",
        ),
        Check(rules.url_path),
    ] = "/models"

    def __post_init__(self) -> None:
        check_fields(self, "endpoint")

    @property
    def url(self) -> str:
        """The full URL of the chat completions call."""
        return self.base_url.rstrip("/") + self.path

    @property
    def models_url(self) -> str:
        """The full URL of the model list."""
        return self.base_url.rstrip("/") + self.models_path


@dataclass(frozen=True, slots=True, kw_only=True)
class Auth:
    """How the secret is sent. The secret itself is never in the contract, only where to read it."""

    header: Annotated[
        str,
        Meta(
            max_length=MAX_SCHEME_LENGTH,
            description="The header carrying the secret.",
            extra_json_schema={"pattern": rules.HEADER_PATTERN},
        ),
        Check(rules.header_name),
    ] = "Authorization"
    scheme: Annotated[
        str,
        Meta(
            max_length=MAX_SCHEME_LENGTH,
            description="Written before the secret in the header value ('' for a bare key).",
            extra_json_schema={"pattern": rules.SCHEME_PATTERN},
        ),
        Check(rules.auth_scheme),
    ] = "Bearer"
    env: Annotated[
        tuple[EnvName, ...],
        Meta(
            min_length=1,
            max_length=20,
            description="Environment variables to read the secret from, in order; the first "
            "set wins.",
        ),
    ] = ()

    def __post_init__(self) -> None:
        check_fields(self, "auth")

    def resolve(self, environ: Mapping[str, str] | None = None) -> tuple[str, str] | None:
        """Return ``(variable, secret)`` from the first variable set and non-empty, else None.

        Raises:
            ConfigError: the key holds a line break, space or control character (it would
                corrupt the header); the message names the variable, never the key.
        """
        source = os.environ if environ is None else environ
        for name in self.env:
            value = source.get(name, "").strip()
            if value:
                return name, check_secret(name, value)
        return None

    def header_value(self, secret: str) -> str:
        """The header value carrying ``secret`` (``Bearer sk-...`` or the bare key)."""
        return f"{self.scheme} {secret}" if self.scheme else secret


@dataclass(frozen=True, slots=True, kw_only=True)
class FallbackRoute:
    """A named alternative: another model and/or another base URL with its own auth env."""

    name: Annotated[Name, Meta(description="The route's name, in reports and metrics.")]
    model: Annotated[
        ModelName | None, Meta(description="The model this route calls (null: the same).")
    ] = None
    base_url: Annotated[
        BaseUrl | None, Meta(description="The route's base URL (null: the primary's).")
    ] = None
    auth_env: Annotated[
        tuple[EnvName, ...],
        Meta(max_length=20, description="Variables holding this route's key (empty: auth.env)."),
    ] = ()
    continuation: Annotated[
        Continuation,
        Meta(
            description="How this route continues a broken stream: none, assistant_prefix "
            "(a trailing\nassistant message with the partial answer), or continue_final_message "
            "(vLLM's flag too)."
        ),
    ] = "none"
    context_window: Annotated[
        ContextWindow | None,
        Meta(
            description="This route's context window in tokens (null: unknown). A request "
            "refused as too long\nskips a route whose window is no larger than the refusing one."
        ),
    ] = None

    def __post_init__(self) -> None:
        where = f"fallbacks[{self.name}]"
        check_fields(self, where)
        if self.model is None and self.base_url is None:
            raise ConfigError(
                f"{where}: give a model, a base_url, or both (else it is the primary)"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestSpec:
    """What every request must carry, a minimal fixture, and the optional fields in use."""

    required: Annotated[
        tuple[Name, ...],
        Meta(min_length=1, max_length=100, description="Fields every request must carry."),
    ] = ("model", "messages")
    fixture: Annotated[
        Mapping[str, Any], Meta(description="A minimal valid request: the canary sends it.")
    ] = field(default_factory=dict)
    optional_in_use: Annotated[
        tuple[Name, ...],
        Meta(
            max_length=100,
            description="Optional fields the application sends (dotted for nested ones).",
        ),
    ] = ()
    cautions: Annotated[
        tuple[FreeText, ...],
        Meta(
            max_length=100,
            description="The provider's documented cautions, checked before sending (warnings).",
        ),
    ] = ()

    def __post_init__(self) -> None:
        check_fields(self, "request")
        missing = [name for name in self.required if name != "model" and name not in self.fixture]
        if self.fixture and missing:
            raise ConfigError(f"request.fixture: missing required field(s) {', '.join(missing)}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseSpec:
    """The paths the application reads from a completion, and the finish reasons it accepts."""

    required_paths: Annotated[
        tuple[ResponsePath, ...],
        Meta(
            min_length=1,
            max_length=100,
            description="Paths that must be present with the right type after a 200.",
        ),
    ] = ("id", "model", "choices[0].message.content", "choices[0].finish_reason")
    optional_paths: Annotated[
        tuple[ResponsePath, ...],
        Meta(
            max_length=100,
            description="Paths read when present; their type is checked if they are.",
        ),
    ] = ()
    finish_reasons: Annotated[
        tuple[Name, ...],
        Meta(
            min_length=1, max_length=50, description="finish_reason values the application handles."
        ),
    ] = ("stop", "length", "content_filter", "tool_calls")

    def __post_init__(self) -> None:
        check_fields(self, "response")
        both = sorted(set(self.required_paths) & set(self.optional_paths))
        if both:
            raise ConfigError(f"response: {', '.join(both)} listed as both required and optional")


@dataclass(frozen=True, slots=True, kw_only=True)
class Streaming:
    """Whether the application streams, asks for a usage chunk, and needs ``[DONE]``."""

    used: Annotated[bool, Meta(description="The application sends stream: true.")] = True
    include_usage: Annotated[
        bool,
        Meta(description="It sends stream_options.include_usage and needs the usage chunk."),
    ] = True
    require_done: Annotated[
        bool, Meta(description="A stream must end with data: [DONE] (after a finish_reason).")
    ] = True

    def __post_init__(self) -> None:
        check_fields(self, "streaming")


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorRule:
    """One row of the provider's error table: a match on the response, and what it means.

    Every given matcher must hold (``None`` means "any"): ``status`` (one or more HTTP
    statuses), ``code`` / ``type`` (exact ``error.code`` / ``error.type``; ``""`` matches an
    empty or missing code), ``message`` (a case-insensitive regular expression searched in
    ``error.message``), ``body`` (``json`` an error envelope, ``empty``, ``html``, ``text``).
    Rows are tried in order; the first that matches decides.
    """

    name: Annotated[Name, Meta(description="The rule's name, shown as the failure's code.")]
    category: Annotated[Category, Meta(description="The failure category a match means.")]
    status: Annotated[
        Annotated[tuple[HttpStatus, ...], Meta(max_length=50)] | None,
        Meta(description="HTTP statuses that match, one or a list (null: any)."),
        OneOrMany(),
    ] = None
    code: Annotated[
        Label | None, Meta(description="The exact error.code ('' matches none; null: any).")
    ] = None
    type: Annotated[Label | None, Meta(description="The exact error.type (null: any).")] = None
    message: Annotated[
        Annotated[str, Meta(max_length=MAX_PATTERN_LENGTH), Check(rules.regex)] | None,
        Meta(
            description="A case-insensitive regular expression searched in error.message "
            "(null: any).",
        ),
    ] = None
    body: Annotated[
        BodyKind,
        Meta(description="The body kind: json (an error envelope), empty, html, text, or any."),
    ] = "any"
    note: Annotated[
        str,
        Meta(max_length=1_000, description="Why this rule exists, for the reader."),
        Check(rules.one_line),
    ] = ""

    def __post_init__(self) -> None:
        check_fields(self, f"errors.rules[{self.name}]")


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorTable:
    """The provider's error codes as data, plus which categories are retried."""

    rules: Annotated[
        tuple[ErrorRule, ...],
        Meta(
            max_length=200,
            description="Tried in order; the first rule whose status, code, type, message "
            "(regex)\nand body (json, empty, html, text) all match names the failure and its "
            "category.",
        ),
    ] = ()
    retryable: Annotated[
        tuple[Category, ...],
        Meta(description="Failure categories worth another attempt (backoff with jitter)."),
    ] = ("rate_limit", "upstream", "timeout", "network")
    non_retryable: Annotated[
        tuple[Category, ...],
        Meta(description="Failure categories never retried: retrying repeats the mistake."),
    ] = ("auth", "validation", "model", "quota", "endpoint")
    request_id_pattern: Annotated[
        str,
        Meta(
            max_length=MAX_PATTERN_LENGTH,
            description="Where the request id hides in error messages (one capture group).",
        ),
        Check(rules.one_group_regex),
    ] = r"\(request id: ([^)\s]+)\)"

    def __post_init__(self) -> None:
        check_fields(self, "errors")
        both = sorted(set(self.retryable) & set(self.non_retryable))
        if both:
            raise ConfigError(
                f"errors: {', '.join(both)} is both retryable and non_retryable; pick one"
            )
        names = [rule.name for rule in self.rules]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ConfigError(f"errors.rules: duplicate rule name(s) {', '.join(duplicates)}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeouts:
    """The timeout budget in milliseconds: one deadline (``total``) and its phases."""

    connect_ms: Annotated[int, _ms(1, _HOUR_MS, "Time to open the connection (TCP + TLS).")] = 5_000
    first_byte_ms: Annotated[
        int, _ms(1, _HOUR_MS, "Time from sending to the first byte of the answer.")
    ] = 10_000
    first_token_ms: Annotated[
        int, _ms(1, _HOUR_MS, "Time from sending to the first streamed token.")
    ] = 10_000
    idle_ms: Annotated[
        int,
        _ms(
            1,
            _HOUR_MS,
            "The longest gap between two data events once content has started (a stall);\n"
            "SSE comments and keep-alives do not reset it.",
        ),
    ] = 10_000
    total_ms: Annotated[
        int, _ms(1, _HOUR_MS, "The deadline of the whole call, retries and fallbacks included.")
    ] = 60_000

    def __post_init__(self) -> None:
        check_fields(self, "policy.timeouts")
        # idle_ms is a gap, not a phase of the call: one above total_ms simply never fires.
        for name in ("connect_ms", "first_byte_ms", "first_token_ms"):
            if getattr(self, name) > self.total_ms:
                raise ConfigError(
                    f"policy.timeouts.{name}: is above total_ms ({self.total_ms}); lower it"
                )

    @property
    def stream_read_ms(self) -> int:
        """A stream's socket read limit, each silent gap of it (``ChatClient``'s and
        ``validate``'s): the first-byte and first-token limits, whichever is lower."""
        return min(self.first_byte_ms, self.first_token_ms)


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How many attempts and how long to wait between them (exponential backoff with jitter)."""

    max_attempts: Annotated[int, _ms(1, 10, "Attempts per route, the first included.")] = 2
    backoff_initial_ms: Annotated[
        int, _ms(0, 600_000, "The wait before the second attempt, in ms.")
    ] = 500
    backoff_max_ms: Annotated[int, _ms(0, 600_000, "The longest wait between attempts, in ms.")] = (
        8_000
    )
    backoff_multiplier: Annotated[
        float, Meta(ge=0.01, le=100, description="Each wait is the previous one times this.")
    ] = 2.0
    jitter: Annotated[
        float, Meta(ge=0, le=1, description="Random share taken off each wait (0: none, 1: all).")
    ] = 0.5
    retry_after_cap_ms: Annotated[
        int, _ms(0, _HOUR_MS, "The longest Retry-After the client honours, in ms.")
    ] = 10_000

    def __post_init__(self) -> None:
        check_fields(self, "policy.retry")


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakerPolicy:
    """A circuit breaker per route: after ``failures`` attempts in a row failed with a retryable
    class, the route is skipped for ``cooldown_ms``; then one trial call decides."""

    enabled: Annotated[
        bool, Meta(description="Skip a route that keeps failing (never refuses a call).")
    ] = True
    failures: Annotated[
        int, _ms(1, 100, "Attempts in a row failed with a retryable class that open the breaker.")
    ] = 3
    cooldown_ms: Annotated[
        int, _ms(100, _HOUR_MS, "How long an open breaker skips the route before a trial call.")
    ] = 10_000

    def __post_init__(self) -> None:
        check_fields(self, "policy.breaker")


@dataclass(frozen=True, slots=True, kw_only=True)
class Prices:
    """USD per million tokens for one model."""

    input_per_million: Annotated[
        float, Meta(ge=0, le=100_000, description="USD per million prompt tokens.")
    ]
    output_per_million: Annotated[
        float, Meta(ge=0, le=100_000, description="USD per million completion tokens.")
    ]

    def __post_init__(self) -> None:
        check_fields(self, "policy.prices")

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """USD for one call with these token counts."""
        return (
            prompt_tokens * self.input_per_million + completion_tokens * self.output_per_million
        ) / 1_000_000


@dataclass(frozen=True, slots=True, kw_only=True)
class CostCaps:
    """Local guards checked before sending; ``None`` means no cap."""

    max_tokens_per_call: Annotated[
        Annotated[int, Meta(ge=1, le=10_000_000)] | None,
        Meta(description="max_tokens sent with a call at most (null: no cap)."),
    ] = 1024
    max_cost_per_call_usd: Annotated[
        Annotated[float, Meta(gt=0, le=_MONEY)] | None,
        Meta(description="USD one call may cost (null: no cap)."),
    ] = None
    max_cost_per_day_usd: Annotated[
        Annotated[float, Meta(gt=0, le=_MONEY)] | None,
        Meta(description="USD all calls may cost per day (null: no cap)."),
    ] = None

    def __post_init__(self) -> None:
        check_fields(self, "policy.caps")


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeSettings:
    """Synthetic probes: how often, how large, how much money per day at most."""

    interval_s: Annotated[int, _ms(1, _DAY_S, "Seconds between two probe rounds.")] = 60
    max_tokens: Annotated[
        int, _ms(1, 1_000_000, "max_tokens of a probe call (leave room for reasoning models).")
    ] = 64
    daily_cost_cap_usd: Annotated[
        float, Meta(ge=0, le=_MONEY, description="USD the probes may spend per day.")
    ] = 0.5

    def __post_init__(self) -> None:
        check_fields(self, "policy.probe")


UsageField = Annotated[
    Literal["prompt_tokens", "completion_tokens", "total_tokens"],
    Meta(description="A usage field."),
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """Timeouts, retries, fallback reserve, usage fields, caps, prices, probes."""

    timeouts: Annotated[
        Timeouts,
        Meta(description="One deadline for the whole call (total_ms) and its phases, in ms."),
    ] = field(default_factory=Timeouts)
    retry: Annotated[
        RetryPolicy,
        Meta(description="Attempts per route and exponential backoff with jitter between them."),
    ] = field(default_factory=RetryPolicy)
    fallback_reserve_ms: Annotated[
        int, _ms(0, _HOUR_MS, "Time kept back from the primary's attempts for a fallback.")
    ] = 5_000
    breaker: Annotated[
        BreakerPolicy,
        Meta(description="A circuit breaker per route: skip a route that keeps failing, briefly."),
    ] = field(default_factory=BreakerPolicy)
    content_policy_fallback: Annotated[
        bool,
        Meta(
            description="Send a request the provider refused on policy grounds "
            "(content_policy) to the\nnext route (default false: one attempt, a clean error)."
        ),
    ] = False
    usage_fields: Annotated[
        tuple[UsageField, ...], Meta(description="Usage fields the budget logic reads.")
    ] = ("prompt_tokens", "completion_tokens", "total_tokens")
    caps: Annotated[
        CostCaps, Meta(description="Local guards checked before sending; null means no cap.")
    ] = field(default_factory=CostCaps)
    prices: Annotated[
        Mapping[str, Prices],
        Meta(description="USD per million tokens, per model, for cost caps."),
    ] = field(default_factory=dict)
    probe: Annotated[
        ProbeSettings,
        Meta(
            description="Synthetic probes: interval, max_tokens (reasoning-safe), daily cost cap."
        ),
    ] = field(default_factory=ProbeSettings)
    kill_switch_env: Annotated[
        EnvName | None,
        Meta(description="When this environment variable is set, calls go to the fallback."),
    ] = None

    def __post_init__(self) -> None:
        check_fields(self, "policy")
        if self.fallback_reserve_ms >= self.timeouts.total_ms:
            raise ConfigError(
                "policy.fallback_reserve_ms: must be below policy.timeouts.total_ms "
                f"({self.timeouts.total_ms})"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class Contract:
    """A versioned record of what production code relies on in a chat completions API.

    Example::

        contract = chatcontract.contract.load("chatcontract.yaml")
        contract.endpoint.url            # 'https://api.cometapi.com/v1/chat/completions'
        contract.resolved_model()        # $CHATCONTRACT_MODEL or the file's model
    """

    version: Annotated[
        Literal[1], Meta(description="Contract file format version (this chatcontract reads 1).")
    ] = 1
    name: Annotated[
        Name, Meta(description="A name for this dependency, used in reports and metrics.")
    ]
    provider: Annotated[Name, Meta(description="Who serves the API (cometapi, openai, ...).")]
    reference_url: Annotated[
        str,
        Meta(
            max_length=MAX_URL_LENGTH,
            description="The API reference page this contract was checked against.",
        ),
        Check(rules.one_line),
    ] = ""
    reviewed_on: Annotated[
        dt.date | None,
        Meta(
            description="When a person last checked this file against the reference "
            "(YYYY-MM-DD).\n'contract lint' and 'chatcontract review' report it when older than "
            "review_every_days."
        ),
    ] = None
    review_every_days: Annotated[
        int,
        Meta(
            ge=1,
            le=3650,
            description="Days between reviews of this file against the reference.\n"
            "'chatcontract review' exits 1 when reviewed_on is older than this.",
        ),
    ] = 90
    owner: Annotated[
        Label, Meta(description="The team or person who owns this dependency and gets its alerts.")
    ] = ""
    revalidate_when: Annotated[
        tuple[FreeText, ...],
        Meta(
            max_length=100,
            description="Events that must trigger 'chatcontract validate' again (free text).",
        ),
    ] = ()
    environment: Annotated[
        Environment,
        Meta(
            description="staging or production; negative and invalid-request probes are "
            "staging-only."
        ),
    ] = "staging"
    endpoint: Annotated[Endpoint, Meta(description="Where requests go.")]
    auth: Annotated[
        Auth, Meta(description="How the secret is sent. The secret is NEVER written here.")
    ]
    model: Annotated[
        ModelName,
        Meta(
            description="The model to call. Override without a code change: "
            "$CHATCONTRACT_MODEL or --model."
        ),
    ]
    continuation: Annotated[
        Continuation,
        Meta(
            description="How the primary route continues a broken stream: none, "
            "assistant_prefix, or\ncontinue_final_message (see fallbacks[].continuation)."
        ),
    ] = "none"
    context_window: Annotated[
        ContextWindow | None,
        Meta(description="The primary model's context window in tokens (null: unknown)."),
    ] = None
    fallbacks: Annotated[
        tuple[FallbackRoute, ...],
        Meta(
            max_length=20,
            description="Ordered named routes tried when the primary fails in a way a fallback "
            "helps:\nanother model, and/or another base_url with its own auth_env.",
        ),
    ] = ()
    request: Annotated[RequestSpec, Meta(description="What the application sends.")] = field(
        default_factory=RequestSpec
    )
    response: Annotated[
        ResponseSpec, Meta(description="What the application reads from a completion.")
    ] = field(default_factory=ResponseSpec)
    streaming: Annotated[Streaming, Meta(description="How the application streams.")] = field(
        default_factory=Streaming
    )
    errors: Annotated[ErrorTable, Meta(description="The provider's error codes as data.")] = field(
        default_factory=ErrorTable
    )
    policy: Annotated[Policy, Meta(description="Budgets and decisions.")] = field(
        default_factory=Policy
    )
    attestations: Annotated[
        Mapping[str, FreeText],
        Meta(
            description="Facts a person confirmed that no request can check, e.g.\n"
            "rate_limits_reviewed: 'no per-key RPM/TPM limit documented (2026-11-24, J. Doe)'."
        ),
    ] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_fields(self, "")
        names = [route.name for route in self.fallbacks]
        if len(set(names)) != len(names):
            raise ConfigError("fallbacks: route names must be unique")
        if "primary" in names:
            raise ConfigError("fallbacks: 'primary' is reserved for the main route; rename it")

    def resolved_model(
        self, override: str | None = None, environ: Mapping[str, str] | None = None
    ) -> str:
        """The model: ``override`` (``--model``), then ``$CHATCONTRACT_MODEL``, then the file.

        Raises:
            ConfigError: the override or the variable holds a line break, a control
                character or more than ``MAX_MODEL_LENGTH`` characters.
        """
        if override:
            return check_model_name("--model", override)
        source = os.environ if environ is None else environ
        from_env = source.get("CHATCONTRACT_MODEL", "").strip()
        if from_env:
            return check_model_name("$CHATCONTRACT_MODEL", from_env)
        return self.model
