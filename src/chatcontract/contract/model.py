"""Contract value objects: what production code relies on, as frozen data.

The YAML file maps one-to-one onto these classes (see ``chatcontract.contract.loader``).
Every class is a frozen, slotted, keyword-only dataclass validated in ``__post_init__``;
invalid values raise ``ConfigError`` with a message naming the field and what to write.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from chatcontract.errors import ConfigError

__all__ = [
    "CATEGORIES",
    "RETRY_DECISIONS",
    "Auth",
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
]

#: Failure categories (DESIGN.md, "Failure taxonomy"): what a failure means and who acts.
CATEGORIES: tuple[str, ...] = (
    "auth",
    "validation",
    "model",
    "rate_limit",
    "quota",
    "upstream",
    "timeout",
    "network",
    "endpoint",
    "contract",
    "content",
    "usage",
    "budget",
)

#: What the policy may decide for a failure category.
RETRY_DECISIONS: tuple[str, ...] = ("retry", "fallback", "none")

Environment = Literal["staging", "production"]
BodyKind = Literal["any", "json", "empty", "html", "text"]

_PATH_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\[\d+\])?(\.[A-Za-z_][A-Za-z0-9_]*(\[\d+\])?)*$")
_ENV_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_HEADER_RE = re.compile(r"^[A-Za-z0-9-]+$")


def _fail(where: str, message: str) -> ConfigError:
    return ConfigError(f"{where}: {message}")


def _require_text(where: str, value: object, *, allow_empty: bool = False) -> None:
    if not isinstance(value, str):
        raise _fail(where, f"expected text, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise _fail(where, "must not be empty")


def _require_positive(where: str, value: object, *, allow_zero: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(where, f"expected a number, got {type(value).__name__}")
    if value < 0 or (value == 0 and not allow_zero):
        raise _fail(where, f"must be {'>= 0' if allow_zero else '> 0'}, got {value}")


def _require_categories(where: str, values: tuple[str, ...]) -> None:
    for value in values:
        if value not in CATEGORIES:
            raise _fail(where, f"unknown category {value!r}; use one of {', '.join(CATEGORIES)}")


def _require_paths(where: str, paths: tuple[str, ...]) -> None:
    for path in paths:
        if not isinstance(path, str) or not _PATH_RE.match(path):
            raise _fail(
                where,
                f"{path!r} is not a response path; write dotted names with optional "
                "indexes, e.g. choices[0].message.content",
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class Endpoint:
    """Where requests go: ``base_url`` + ``path`` with ``method``."""

    base_url: str
    path: str = "/chat/completions"
    method: str = "POST"
    models_path: str = "/models"

    def __post_init__(self) -> None:
        _require_text("endpoint.base_url", self.base_url)
        if not self.base_url.startswith(("http://", "https://")):
            raise _fail(
                "endpoint.base_url",
                f"{self.base_url!r} is not an http(s) URL; write e.g. https://api.cometapi.com/v1",
            )
        for name in ("path", "models_path"):
            value = getattr(self, name)
            _require_text(f"endpoint.{name}", value)
            if not value.startswith("/"):
                raise _fail(f"endpoint.{name}", f"must start with '/', e.g. /{value}")
        if self.method.upper() not in {"POST", "GET", "PUT"}:
            raise _fail("endpoint.method", f"{self.method!r} is not an HTTP method; write POST")

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

    header: str = "Authorization"
    scheme: str = "Bearer"
    env: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _require_text("auth.header", self.header)
        if not _HEADER_RE.match(self.header):
            raise _fail("auth.header", f"{self.header!r} is not a header name; write Authorization")
        _require_text("auth.scheme", self.scheme, allow_empty=True)
        if not self.env:
            raise _fail("auth.env", "list at least one environment variable, e.g. [COMETAPI_KEY]")
        for name in self.env:
            if not isinstance(name, str) or not _ENV_RE.match(name):
                raise _fail("auth.env", f"{name!r} is not an environment variable name")

    def resolve(self, environ: Mapping[str, str] | None = None) -> tuple[str, str] | None:
        """Return ``(variable, secret)`` from the first variable set and non-empty, else None."""
        source = os.environ if environ is None else environ
        for name in self.env:
            value = source.get(name, "").strip()
            if value:
                return name, value
        return None

    def header_value(self, secret: str) -> str:
        """The header value carrying ``secret`` (``Bearer sk-...`` or the bare key)."""
        return f"{self.scheme} {secret}" if self.scheme else secret


@dataclass(frozen=True, slots=True, kw_only=True)
class FallbackRoute:
    """A named alternative: another model and/or another base URL with its own auth env."""

    name: str
    model: str | None = None
    base_url: str | None = None
    auth_env: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _require_text("fallbacks[].name", self.name)
        if self.model is None and self.base_url is None:
            raise _fail(
                f"fallbacks[{self.name}]",
                "give a model, a base_url, or both (else it is the primary)",
            )
        if self.base_url is not None and not self.base_url.startswith(("http://", "https://")):
            raise _fail(
                f"fallbacks[{self.name}].base_url", f"{self.base_url!r} is not an http(s) URL"
            )
        for name in self.auth_env:
            if not _ENV_RE.match(name):
                raise _fail(f"fallbacks[{self.name}].auth_env", f"{name!r} is not a variable name")


@dataclass(frozen=True, slots=True, kw_only=True)
class RequestSpec:
    """What every request must carry, a minimal fixture, and the optional fields in use."""

    required: tuple[str, ...] = ("model", "messages")
    fixture: Mapping[str, Any] = field(default_factory=dict)
    optional_in_use: tuple[str, ...] = ()
    cautions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.required:
            raise _fail("request.required", "list the required fields, e.g. [model, messages]")
        if not isinstance(self.fixture, Mapping):
            raise _fail("request.fixture", "expected a mapping (a minimal request body)")
        missing = [name for name in self.required if name != "model" and name not in self.fixture]
        if self.fixture and missing:
            raise _fail("request.fixture", f"missing required field(s) {', '.join(missing)}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ResponseSpec:
    """The paths the application reads from a completion, and the finish reasons it accepts."""

    required_paths: tuple[str, ...] = (
        "id",
        "model",
        "choices[0].message.content",
        "choices[0].finish_reason",
    )
    optional_paths: tuple[str, ...] = ()
    finish_reasons: tuple[str, ...] = ("stop", "length", "content_filter", "tool_calls")

    def __post_init__(self) -> None:
        if not self.required_paths:
            raise _fail("response.required_paths", "list at least one path the application reads")
        _require_paths("response.required_paths", self.required_paths)
        _require_paths("response.optional_paths", self.optional_paths)
        both = sorted(set(self.required_paths) & set(self.optional_paths))
        if both:
            raise _fail("response", f"{', '.join(both)} listed as both required and optional")
        if not self.finish_reasons:
            raise _fail("response.finish_reasons", "list the accepted values, e.g. [stop, length]")


@dataclass(frozen=True, slots=True, kw_only=True)
class Streaming:
    """Whether the application streams, asks for a usage chunk, and needs ``[DONE]``."""

    used: bool = True
    include_usage: bool = True
    require_done: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorRule:
    """One row of the provider's error table: a match on the response, and what it means.

    Every given matcher must hold (``None`` means "any"): ``status`` (one or more HTTP
    statuses), ``code`` / ``type`` (exact ``error.code`` / ``error.type``; ``""`` matches an
    empty or missing code), ``message`` (a case-insensitive regular expression searched in
    ``error.message``), ``body`` (``json`` an error envelope, ``empty``, ``html``, ``text``).
    Rows are tried in order; the first that matches decides.
    """

    name: str
    category: str
    status: tuple[int, ...] | None = None
    code: str | None = None
    type: str | None = None
    message: str | None = None
    body: BodyKind = "any"
    note: str = ""

    def __post_init__(self) -> None:
        where = f"errors.rules[{self.name}]"
        _require_text(f"{where}.name", self.name)
        _require_categories(f"{where}.category", (self.category,))
        if self.status is not None:
            for status in self.status:
                if (
                    isinstance(status, bool)
                    or not isinstance(status, int)
                    or not 100 <= status <= 599
                ):
                    raise _fail(f"{where}.status", f"{status!r} is not an HTTP status (100-599)")
        if self.message is not None:
            try:
                re.compile(self.message)
            except re.error as exc:
                raise _fail(f"{where}.message", f"not a valid regular expression ({exc})") from exc
        if self.body not in ("any", "json", "empty", "html", "text"):
            raise _fail(f"{where}.body", f"{self.body!r}; use one of any, json, empty, html, text")


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorTable:
    """The provider's error codes as data, plus which categories are retried."""

    rules: tuple[ErrorRule, ...] = ()
    retryable: tuple[str, ...] = ("rate_limit", "upstream", "timeout", "network")
    non_retryable: tuple[str, ...] = ("auth", "validation", "model", "quota", "endpoint")
    request_id_pattern: str = r"\(request id: ([^)\s]+)\)"

    def __post_init__(self) -> None:
        _require_categories("errors.retryable", self.retryable)
        _require_categories("errors.non_retryable", self.non_retryable)
        both = sorted(set(self.retryable) & set(self.non_retryable))
        if both:
            raise _fail(
                "errors", f"{', '.join(both)} is both retryable and non_retryable; pick one"
            )
        names = [rule.name for rule in self.rules]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise _fail("errors.rules", f"duplicate rule name(s) {', '.join(duplicates)}")
        try:
            compiled = re.compile(self.request_id_pattern)
        except re.error as exc:
            raise _fail(
                "errors.request_id_pattern", f"not a valid regular expression ({exc})"
            ) from exc
        if compiled.groups != 1:
            raise _fail("errors.request_id_pattern", "needs exactly one capture group: the id")


@dataclass(frozen=True, slots=True, kw_only=True)
class Timeouts:
    """The timeout budget in milliseconds: one deadline (``total``) and its phases."""

    connect_ms: int = 5_000
    first_byte_ms: int = 30_000
    first_token_ms: int = 30_000
    total_ms: int = 60_000

    def __post_init__(self) -> None:
        for name in ("connect_ms", "first_byte_ms", "first_token_ms", "total_ms"):
            _require_positive(f"policy.timeouts.{name}", getattr(self, name))
        for name in ("connect_ms", "first_byte_ms", "first_token_ms"):
            if getattr(self, name) > self.total_ms:
                raise _fail(
                    f"policy.timeouts.{name}", f"is above total_ms ({self.total_ms}); lower it"
                )


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How many attempts and how long to wait between them (exponential backoff with jitter)."""

    max_attempts: int = 2
    backoff_initial_ms: int = 500
    backoff_max_ms: int = 8_000
    backoff_multiplier: float = 2.0
    jitter: float = 0.5
    retry_after_cap_ms: int = 10_000

    def __post_init__(self) -> None:
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int):
            raise _fail("policy.retry.max_attempts", "expected a whole number >= 1")
        if self.max_attempts < 1:
            raise _fail("policy.retry.max_attempts", "must be >= 1 (1 means no retry)")
        _require_positive(
            "policy.retry.backoff_initial_ms", self.backoff_initial_ms, allow_zero=True
        )
        _require_positive("policy.retry.backoff_max_ms", self.backoff_max_ms, allow_zero=True)
        _require_positive("policy.retry.backoff_multiplier", self.backoff_multiplier)
        _require_positive(
            "policy.retry.retry_after_cap_ms", self.retry_after_cap_ms, allow_zero=True
        )
        if not 0 <= self.jitter <= 1:
            raise _fail("policy.retry.jitter", f"must be between 0 and 1, got {self.jitter}")


@dataclass(frozen=True, slots=True, kw_only=True)
class Prices:
    """USD per million tokens for one model."""

    input_per_million: float
    output_per_million: float

    def __post_init__(self) -> None:
        _require_positive(
            "policy.prices.input_per_million", self.input_per_million, allow_zero=True
        )
        _require_positive(
            "policy.prices.output_per_million", self.output_per_million, allow_zero=True
        )

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """USD for one call with these token counts."""
        return (
            prompt_tokens * self.input_per_million + completion_tokens * self.output_per_million
        ) / 1_000_000


@dataclass(frozen=True, slots=True, kw_only=True)
class CostCaps:
    """Local guards checked before sending; ``None`` means no cap."""

    max_tokens_per_call: int | None = 1024
    max_cost_per_call_usd: float | None = None
    max_cost_per_day_usd: float | None = None

    def __post_init__(self) -> None:
        for name in ("max_tokens_per_call", "max_cost_per_call_usd", "max_cost_per_day_usd"):
            value = getattr(self, name)
            if value is not None:
                _require_positive(f"policy.caps.{name}", value)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeSettings:
    """Synthetic probes: how often, how large, how much money per day at most."""

    interval_s: int = 60
    max_tokens: int = 64
    daily_cost_cap_usd: float = 0.5

    def __post_init__(self) -> None:
        _require_positive("policy.probe.interval_s", self.interval_s)
        _require_positive("policy.probe.max_tokens", self.max_tokens)
        _require_positive(
            "policy.probe.daily_cost_cap_usd", self.daily_cost_cap_usd, allow_zero=True
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """Timeouts, retries, fallback reserve, usage fields, caps, prices, probes."""

    timeouts: Timeouts = field(default_factory=Timeouts)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    fallback_reserve_ms: int = 5_000
    usage_fields: tuple[str, ...] = ("prompt_tokens", "completion_tokens", "total_tokens")
    caps: CostCaps = field(default_factory=CostCaps)
    prices: Mapping[str, Prices] = field(default_factory=dict)
    probe: ProbeSettings = field(default_factory=ProbeSettings)
    kill_switch_env: str | None = None

    def __post_init__(self) -> None:
        _require_positive("policy.fallback_reserve_ms", self.fallback_reserve_ms, allow_zero=True)
        if self.fallback_reserve_ms >= self.timeouts.total_ms:
            raise _fail(
                "policy.fallback_reserve_ms",
                f"must be below policy.timeouts.total_ms ({self.timeouts.total_ms})",
            )
        allowed = {"prompt_tokens", "completion_tokens", "total_tokens"}
        for name in self.usage_fields:
            if name not in allowed:
                raise _fail("policy.usage_fields", f"{name!r}; use {', '.join(sorted(allowed))}")
        if self.kill_switch_env is not None and not _ENV_RE.match(self.kill_switch_env):
            raise _fail(
                "policy.kill_switch_env", f"{self.kill_switch_env!r} is not a variable name"
            )


@dataclass(frozen=True, slots=True, kw_only=True)
class Contract:
    """A versioned record of what production code relies on in a chat completions API.

    Example::

        contract = chatcontract.contract.load("chatcontract.yaml")
        contract.endpoint.url            # 'https://api.cometapi.com/v1/chat/completions'
        contract.resolved_model()        # $CHATCONTRACT_MODEL or the file's model
    """

    name: str
    provider: str
    endpoint: Endpoint
    auth: Auth
    model: str
    version: int = 1
    reference_url: str = ""
    reviewed_on: dt.date | None = None
    owner: str = ""
    revalidate_when: tuple[str, ...] = ()
    fallbacks: tuple[FallbackRoute, ...] = ()
    request: RequestSpec = field(default_factory=RequestSpec)
    response: ResponseSpec = field(default_factory=ResponseSpec)
    streaming: Streaming = field(default_factory=Streaming)
    errors: ErrorTable = field(default_factory=ErrorTable)
    policy: Policy = field(default_factory=Policy)
    environment: Environment = "staging"
    attestations: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _require_text("name", self.name)
        _require_text("provider", self.provider)
        _require_text("model", self.model)
        if self.version != 1:
            raise _fail("version", f"{self.version!r} is not supported; this chatcontract reads 1")
        if self.environment not in ("staging", "production"):
            raise _fail("environment", f"{self.environment!r}; write staging or production")
        names = [route.name for route in self.fallbacks]
        if len(set(names)) != len(names):
            raise _fail("fallbacks", "route names must be unique")
        if "primary" in names:
            raise _fail("fallbacks", "'primary' is reserved for the main route; rename it")

    def resolved_model(
        self, override: str | None = None, environ: Mapping[str, str] | None = None
    ) -> str:
        """The model: ``override`` (``--model``), then ``$CHATCONTRACT_MODEL``, then the file."""
        if override:
            return override
        source = os.environ if environ is None else environ
        return source.get("CHATCONTRACT_MODEL", "").strip() or self.model
