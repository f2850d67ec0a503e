"""The rules of single contract fields beyond type and bounds, referenced by the declaration.

Each rule takes ``(where, value)`` and raises ``ConfigError`` with one line naming the field
and saying what to write. ``model`` attaches them to fields as ``Check(rule)``; the CLI uses
``check_base_url`` and ``check_model_name`` for ``--base-url`` and ``--model`` too.
"""

from __future__ import annotations

import re
import urllib.parse

from chatcontract.errors import ConfigError

from ._declare import SECRET_RE, shown
from ._regex import backtracking_problem

__all__ = [
    "CATEGORIES",
    "ENV_PATTERN",
    "HEADER_PATTERN",
    "MAX_MODEL_LENGTH",
    "MAX_NAME_LENGTH",
    "MAX_SCHEME_LENGTH",
    "MAX_URL_LENGTH",
    "METHODS",
    "SCHEME_PATTERN",
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
    "context_length",
    "content_policy",
)
#: The HTTP methods a chat call may use.
METHODS: tuple[str, ...] = ("POST", "GET", "PUT")

#: The longest URL, model name and auth scheme a contract or a flag may give.
MAX_URL_LENGTH = 2_048
MAX_MODEL_LENGTH = 256
MAX_SCHEME_LENGTH = 64
#: The longest name, provider, owner, rule name or error code a contract may give.
MAX_NAME_LENGTH = 200

# Written for the JSON Schema too (ECMA-262 "$" never matches before a final newline);
# the rules below use fullmatch, since Python's "$" would accept "Authorization\n".
ENV_PATTERN = "^[A-Za-z_][A-Za-z0-9_]*$"
HEADER_PATTERN = "^[A-Za-z0-9-]+$"
# An auth scheme is an HTTP token (RFC 9110): no space, no control character.
SCHEME_PATTERN = "^[A-Za-z0-9!#$%&'*+.^_`|~-]*$"
PATH_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\[\d+\])?(\.[A-Za-z_][A-Za-z0-9_]*(\[\d+\])?)*$"

_ENV_RE = re.compile(ENV_PATTERN[1:-1])
_HEADER_RE = re.compile(HEADER_PATTERN[1:-1])
_SCHEME_RE = re.compile(SCHEME_PATTERN[1:-1])
_PATH_RE = re.compile(PATH_PATTERN[1:-1])
# Control characters (CR, LF, NUL, ...) and every kind of whitespace a header value or URL
# must not carry.
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f-\x9f]")
_URL_BAD_RE = re.compile(r"[\s\x00-\x1f\x7f-\x9f]")


def _fail(where: str, message: str) -> ConfigError:
    return ConfigError(f"{where}: {message}")


def one_line(where: str, value: str) -> None:
    """No line break or control character (names, labels, codes)."""
    if _CONTROL_RE.search(value):
        raise _fail(where, f"{shown(value)} has a line break or control character; write one line")


def not_blank(where: str, value: str) -> None:
    """Some text, not only spaces."""
    if not value.strip():
        raise _fail(where, "must not be empty")
    one_line(where, value)


def env_name(where: str, value: str) -> None:
    """An environment variable name."""
    if not _ENV_RE.fullmatch(value):
        raise _fail(where, f"{shown(value)} is not an environment variable name, e.g. COMETAPI_KEY")


def header_name(where: str, value: str) -> None:
    """An HTTP header name."""
    if not _HEADER_RE.fullmatch(value):
        raise _fail(where, f"{shown(value)} is not a header name; write Authorization")


def auth_scheme(where: str, value: str) -> None:
    """An HTTP auth scheme token, or empty for a bare key."""
    if not _SCHEME_RE.fullmatch(value):
        raise _fail(
            where,
            f"{shown(value)} is not an auth scheme (one word, no space or line break); write "
            "Bearer, or '' for a bare key",
        )


def http_method(where: str, value: str) -> None:
    """POST, GET or PUT."""
    if value not in METHODS:
        raise _fail(where, f"{shown(value)} is not an HTTP method here; write POST")


def url_path(where: str, value: str) -> None:
    """A path appended to the base URL."""
    if _URL_BAD_RE.search(value):
        raise _fail(
            where, "contains a space, line break or control character; write e.g. /chat/completions"
        )
    if not value.startswith("/"):
        raise _fail(where, f"must start with '/', e.g. /{value}")


def response_path(where: str, value: str) -> None:
    """A dotted path into a completion, with optional indexes."""
    if not _PATH_RE.fullmatch(value):
        raise _fail(
            where,
            f"{shown(value)} is not a response path; write dotted names with optional "
            "indexes, e.g. choices[0].message.content",
        )


def category(where: str, value: str) -> None:
    """One of ``CATEGORIES``."""
    if value not in CATEGORIES:
        raise _fail(where, f"unknown category {shown(value)}; use one of {', '.join(CATEGORIES)}")


def regex(where: str, value: str) -> None:
    """A regular expression that compiles and cannot backtrack without bound."""
    try:
        re.compile(value)
    except (re.error, RecursionError, OverflowError) as exc:
        raise _fail(where, f"not a valid regular expression ({exc})") from exc
    problem = backtracking_problem(value)
    if problem:
        raise _fail(where, f"{shown(value)} {problem}")


def one_group_regex(where: str, value: str) -> None:
    """A safe regular expression with exactly one capture group."""
    regex(where, value)
    if re.compile(value).groups != 1:
        raise _fail(where, "needs exactly one capture group: the id")


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
    text = redact_url(url)
    # A key pasted where the URL goes is not repeated back (nor any credential-shaped part).
    quoted = "text that looks like a secret (not shown)" if SECRET_RE.search(text) else repr(text)
    if "@" in url:
        raise _fail(
            where,
            f"{quoted} carries credentials; remove 'user:password@' and put the key in the "
            "environment variable named under auth.env",
        )
    if not url.strip():
        raise _fail(where, f"must not be empty; {example}")
    if len(url) > MAX_URL_LENGTH:
        raise _fail(where, f"is {len(url)} characters long; write at most {MAX_URL_LENGTH}")
    if _URL_BAD_RE.search(url):
        raise _fail(where, f"{quoted} contains a space, line break or control character; {example}")
    if not url.startswith(("http://", "https://")):
        raise _fail(where, f"{quoted} is not an http(s) URL; {example}")
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise _fail(where, f"{quoted} is not a valid URL ({exc}); {example}") from exc
    if not parts.hostname:
        raise _fail(where, f"{quoted} has no host; {example}")
    if port == 0:
        raise _fail(where, f"{quoted}: port 0 is not a port; write one from 1 to 65535")
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        raise _fail(
            where,
            f"{quoted} has a query or fragment; the path is appended to the base URL, so "
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
            f"{shown(model.strip())} has a line break, control character or surrounding "
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
