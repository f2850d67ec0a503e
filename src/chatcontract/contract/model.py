"""Contract value objects: what production code relies on, as frozen data.

The YAML file maps one-to-one onto these classes (see ``chatcontract.contract.loader``).
Every class is a frozen, slotted, keyword-only dataclass validated in ``__post_init__``;
invalid values raise ``ConfigError`` with a message naming the field and what to write.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from chatcontract.errors import ConfigError

from ._regex import backtracking_problem

__all__ = [
    "CATEGORIES",
    "LIMITS",
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
    "check_base_url",
    "check_model_name",
    "check_secret",
    "redact_url",
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

# Matched with fullmatch: "$" alone would accept a trailing newline ("Authorization\n").
_PATH_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\[\d+\])?(\.[A-Za-z_][A-Za-z0-9_]*(\[\d+\])?)*")
_ENV_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_HEADER_RE = re.compile(r"[A-Za-z0-9-]+")
# An auth scheme is an HTTP token (RFC 9110): no space, no control character.
_SCHEME_RE = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]*")
# Control characters (CR, LF, NUL, ...) and every kind of whitespace a header value or URL
# must not carry.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_URL_BAD_RE = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")

_HOUR_MS = 3_600_000
_DAY_S = 86_400

#: The bounds of every number a contract holds: field -> (lowest, highest). A value outside
#: them is a typo or an attack (``max_attempts: 1000000000``), never a setting.
LIMITS: Mapping[str, tuple[float, float]] = {
    "policy.timeouts.connect_ms": (1, _HOUR_MS),
    "policy.timeouts.first_byte_ms": (1, _HOUR_MS),
    "policy.timeouts.first_token_ms": (1, _HOUR_MS),
    "policy.timeouts.total_ms": (1, _HOUR_MS),
    "policy.retry.max_attempts": (1, 10),
    "policy.retry.backoff_initial_ms": (0, 600_000),
    "policy.retry.backoff_max_ms": (0, 600_000),
    "policy.retry.backoff_multiplier": (0.01, 100),
    "policy.retry.jitter": (0, 1),
    "policy.retry.retry_after_cap_ms": (0, _HOUR_MS),
    "policy.fallback_reserve_ms": (0, _HOUR_MS),
    "policy.caps.max_tokens_per_call": (1, 10_000_000),
    "policy.caps.max_cost_per_call_usd": (0, 1_000_000),  # above 0: null means no cap
    "policy.caps.max_cost_per_day_usd": (0, 1_000_000),
    "policy.prices.input_per_million": (0, 100_000),
    "policy.prices.output_per_million": (0, 100_000),
    "policy.probe.interval_s": (1, _DAY_S),
    "policy.probe.max_tokens": (1, 1_000_000),
    "policy.probe.daily_cost_cap_usd": (0, 1_000_000),
    # How often a person re-checks the contract against the provider's documentation.
    "review_every_days": (1, 3_650),
}
#: The longest URL, model name and auth scheme a contract or a flag may give.
MAX_URL_LENGTH = 2_048
MAX_MODEL_LENGTH = 256
MAX_SCHEME_LENGTH = 64
#: The longest name, provider, owner, rule name or error code a contract may give.
MAX_NAME_LENGTH = 200


def _fail(where: str, message: str) -> ConfigError:
    return ConfigError(f"{where}: {message}")


def _require_text(where: str, value: object, *, allow_empty: bool = False) -> None:
    if not isinstance(value, str):
        raise _fail(where, f"expected text, got {type(value).__name__}")
    if not allow_empty and not value.strip():
        raise _fail(where, "must not be empty")


def _require_line(
    where: str, value: object, *, limit: int = MAX_NAME_LENGTH, allow_empty: bool = False
) -> None:
    """``value`` is one line of text of at most ``limit`` characters (names, labels)."""
    _require_text(where, value, allow_empty=allow_empty)
    text = str(value)  # _require_text made sure it is text
    if len(text) > limit:
        raise _fail(where, f"is {len(text)} characters long; write at most {limit}")
    if _CONTROL_RE.search(text):
        raise _fail(where, f"{text[:60]!r} has a line break or control character; write one line")


def _shown_number(value: float) -> str:
    """A number as a person writes it: 10, 0.5, 0.000001 (no exponent for a bound)."""
    if isinstance(value, int) or not math.isfinite(value) or abs(value) >= 1e15:
        return str(value)
    return f"{value:f}".rstrip("0").rstrip(".") or "0"


def _require_int(where: str, value: object, *, limit: str | None = None) -> None:
    """``value`` is a whole number inside ``LIMITS[limit or where]``."""
    low, high = LIMITS[limit or where]
    expected = f"an integer from {_shown_number(low)} to {_shown_number(high)}"
    if isinstance(value, bool) or not isinstance(value, int):
        shown = _shown_number(value) if isinstance(value, float) else type(value).__name__
        raise _fail(where, f"expected {expected}, got {shown}")
    if not low <= value <= high:
        raise _fail(where, f"expected {expected}, got {value}")


def _require_number(
    where: str, value: object, *, limit: str | None = None, above_low: bool = False
) -> None:
    """``value`` is a finite number inside ``LIMITS[limit or where]`` (``above_low``: > low)."""
    low, high = LIMITS[limit or where]
    expected = (
        f"a number above {_shown_number(low)}, at most {_shown_number(high)}"
        if above_low
        else f"a number from {_shown_number(low)} to {_shown_number(high)}"
    )
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(where, f"expected {expected}, got {type(value).__name__}")
    too_low = value <= low if above_low else value < low
    if not math.isfinite(value) or too_low or value > high:
        raise _fail(where, f"expected {expected}, got {_shown_number(value)}")


def redact_url(url: str) -> str:
    """``url`` with any ``user:password@`` replaced by ``***@``, safe to print."""
    scheme, sep, rest = url.partition("://")
    if "@" not in rest:
        return url
    # Up to the last "@": a password may itself hold "/", "?", "#" or "@".
    return f"{scheme}{sep}***@{rest.rpartition('@')[2]}"


def check_base_url(where: str, url: object) -> str:
    """Return ``url`` if it is a usable http(s) base URL, else raise ``ConfigError``.

    Refused: not text, longer than ``MAX_URL_LENGTH``, spaces or control characters (CR/LF),
    another scheme, no host, a bad port, credentials (``user:pass@``; the message shows
    ``***@`` instead), a query or a fragment (the path is appended after it).
    """
    example = "write e.g. https://api.cometapi.com/v1"
    if not isinstance(url, str):
        raise _fail(where, f"expected text, got {type(url).__name__}")
    shown = redact_url(url)
    if "@" in url:
        raise _fail(
            where,
            f"{shown!r} carries credentials; remove 'user:password@' and put the key in the "
            "environment variable named under auth.env",
        )
    if not url.strip():
        raise _fail(where, f"must not be empty; {example}")
    if len(url) > MAX_URL_LENGTH:
        raise _fail(where, f"is {len(url)} characters long; write at most {MAX_URL_LENGTH}")
    if _URL_BAD_RE.search(url):
        raise _fail(
            where, f"{shown!r} contains a space, line break or control character; {example}"
        )
    if not url.startswith(("http://", "https://")):
        raise _fail(where, f"{shown!r} is not an http(s) URL; {example}")
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise _fail(where, f"{shown!r} is not a valid URL ({exc}); {example}") from exc
    if not parts.hostname:
        raise _fail(where, f"{shown!r} has no host; {example}")
    if port == 0:
        raise _fail(where, f"{shown!r}: port 0 is not a port; write one from 1 to 65535")
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise _fail(
            where,
            f"{shown!r} has a query or fragment; the path is appended to the base URL, so "
            "write it without '?...' or '#...'",
        )
    return url


def check_model_name(where: str, model: object) -> str:
    """Return ``model`` if it can be sent as a model name, else raise ``ConfigError``."""
    if not isinstance(model, str):
        raise _fail(where, f"expected text, got {type(model).__name__}")
    if not model.strip():
        raise _fail(where, "must not be empty; write the model id, e.g. gpt-4o-mini")
    if len(model) > MAX_MODEL_LENGTH:
        raise _fail(where, f"is {len(model)} characters long; write at most {MAX_MODEL_LENGTH}")
    if _CONTROL_RE.search(model) or model != model.strip():
        raise _fail(
            where,
            f"{model.strip()[:60]!r} has a line break, control character or surrounding "
            "space; write the model id alone, e.g. gpt-4o-mini",
        )
    return model


def check_secret(variable: str, secret: str) -> str:
    """Return ``secret`` if it can go into a header, else ``ConfigError`` (never showing it)."""
    if _URL_BAD_RE.search(secret):
        raise ConfigError(
            f"${variable}: the key contains a space, line break or control character; set "
            "the variable to the bare key (no 'Bearer', no newline)"
        )
    if not secret.isascii():
        raise ConfigError(f"${variable}: the key has non-ASCII characters; set the bare key")
    if len(secret) > 4_096:
        raise ConfigError(f"${variable}: the key is {len(secret)} characters long; set the key")
    return secret


def _require_regex(where: str, pattern: str) -> re.Pattern[str]:
    _require_text(where, pattern)
    try:
        compiled = re.compile(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        raise _fail(where, f"not a valid regular expression ({exc})") from exc
    problem = backtracking_problem(pattern)
    if problem:
        raise _fail(where, f"{pattern[:60]!r} {problem}")
    return compiled


def _require_categories(where: str, values: tuple[str, ...]) -> None:
    for value in values:
        if value not in CATEGORIES:
            raise _fail(where, f"unknown category {value!r}; use one of {', '.join(CATEGORIES)}")


def _require_paths(where: str, paths: tuple[str, ...]) -> None:
    for path in paths:
        if not isinstance(path, str) or len(path) > 512 or not _PATH_RE.fullmatch(path):
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
        check_base_url("endpoint.base_url", self.base_url)
        for name in ("path", "models_path"):
            value = getattr(self, name)
            _require_text(f"endpoint.{name}", value)
            if len(value) > MAX_URL_LENGTH or _URL_BAD_RE.search(value):
                raise _fail(
                    f"endpoint.{name}",
                    "contains a space, line break or control character, or is too long; "
                    "write e.g. /chat/completions",
                )
            if not value.startswith("/"):
                raise _fail(f"endpoint.{name}", f"must start with '/', e.g. /{value}")
        _require_text("endpoint.method", self.method)
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
        if len(self.header) > MAX_SCHEME_LENGTH or not _HEADER_RE.fullmatch(self.header):
            raise _fail(
                "auth.header", f"{self.header[:60]!r} is not a header name; write Authorization"
            )
        _require_text("auth.scheme", self.scheme, allow_empty=True)
        if len(self.scheme) > MAX_SCHEME_LENGTH or not _SCHEME_RE.fullmatch(self.scheme):
            raise _fail(
                "auth.scheme",
                f"{self.scheme[:60]!r} is not an auth scheme (one word, no space or line "
                "break); write Bearer, or '' for a bare key",
            )
        if not self.env:
            raise _fail("auth.env", "list at least one environment variable, e.g. [COMETAPI_KEY]")
        for name in self.env:
            if not isinstance(name, str) or not _ENV_RE.fullmatch(name):
                raise _fail("auth.env", f"{name!r} is not an environment variable name")

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

    name: str
    model: str | None = None
    base_url: str | None = None
    auth_env: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _require_line("fallbacks[].name", self.name)
        if self.model is None and self.base_url is None:
            raise _fail(
                f"fallbacks[{self.name}]",
                "give a model, a base_url, or both (else it is the primary)",
            )
        if self.base_url is not None:
            check_base_url(f"fallbacks[{self.name}].base_url", self.base_url)
        if self.model is not None:
            check_model_name(f"fallbacks[{self.name}].model", self.model)
        for name in self.auth_env:
            if not isinstance(name, str) or not _ENV_RE.fullmatch(name):
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
        _require_line(f"{where}.name", self.name)
        for name in ("code", "type", "note"):
            value = getattr(self, name)
            if value is not None:
                limit = 1_000 if name == "note" else MAX_NAME_LENGTH
                _require_line(f"{where}.{name}", value, limit=limit, allow_empty=True)
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
            _require_regex(f"{where}.message", self.message)
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
        compiled = _require_regex("errors.request_id_pattern", self.request_id_pattern)
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
            _require_int(f"policy.timeouts.{name}", getattr(self, name))
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
        _require_int("policy.retry.max_attempts", self.max_attempts)
        _require_int("policy.retry.backoff_initial_ms", self.backoff_initial_ms)
        _require_int("policy.retry.backoff_max_ms", self.backoff_max_ms)
        _require_number("policy.retry.backoff_multiplier", self.backoff_multiplier)
        _require_number("policy.retry.jitter", self.jitter)
        _require_int("policy.retry.retry_after_cap_ms", self.retry_after_cap_ms)


@dataclass(frozen=True, slots=True, kw_only=True)
class Prices:
    """USD per million tokens for one model."""

    input_per_million: float
    output_per_million: float

    def __post_init__(self) -> None:
        _require_number("policy.prices.input_per_million", self.input_per_million)
        _require_number("policy.prices.output_per_million", self.output_per_million)

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
            if value is None:
                continue
            if name == "max_tokens_per_call":
                _require_int(f"policy.caps.{name}", value)
            else:
                _require_number(f"policy.caps.{name}", value, above_low=True)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeSettings:
    """Synthetic probes: how often, how large, how much money per day at most."""

    interval_s: int = 60
    max_tokens: int = 64
    daily_cost_cap_usd: float = 0.5

    def __post_init__(self) -> None:
        _require_int("policy.probe.interval_s", self.interval_s)
        _require_int("policy.probe.max_tokens", self.max_tokens)
        _require_number("policy.probe.daily_cost_cap_usd", self.daily_cost_cap_usd)


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
        _require_int("policy.fallback_reserve_ms", self.fallback_reserve_ms)
        if self.fallback_reserve_ms >= self.timeouts.total_ms:
            raise _fail(
                "policy.fallback_reserve_ms",
                f"must be below policy.timeouts.total_ms ({self.timeouts.total_ms})",
            )
        allowed = {"prompt_tokens", "completion_tokens", "total_tokens"}
        for name in self.usage_fields:
            if name not in allowed:
                raise _fail("policy.usage_fields", f"{name!r}; use {', '.join(sorted(allowed))}")
        if self.kill_switch_env is not None and not (
            isinstance(self.kill_switch_env, str) and _ENV_RE.fullmatch(self.kill_switch_env)
        ):
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
    #: Days after ``reviewed_on`` when the contract is due for review again (``review``).
    review_every_days: int = 90
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
        _require_line("name", self.name)
        _require_line("provider", self.provider)
        _require_line("owner", self.owner, allow_empty=True)
        _require_line("reference_url", self.reference_url, limit=MAX_URL_LENGTH, allow_empty=True)
        check_model_name("model", self.model)
        _require_int("review_every_days", self.review_every_days)
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
