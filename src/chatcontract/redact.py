"""Redaction: secrets never reach a log line, a report, a metric label or an exception message.

Pure functions, used wherever text from the outside world (error messages, headers) is kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping

__all__ = [
    "REDACTED",
    "SENSITIVE_HEADERS",
    "known_secrets",
    "redact_headers",
    "redact_text",
    "redact_value",
]

REDACTED = "***"

#: Header names whose values are credentials.
SENSITIVE_HEADERS = frozenset(
    {
        "authorization",
        "x-api-key",
        "api-key",
        "proxy-authorization",
        "cookie",
        "set-cookie",
        "x-goog-api-key",
    }
)

# Credential-shaped substrings: OpenAI/new-api keys, bearer tokens, JWTs, AWS access keys.
_SECRET_PATTERNS = re.compile(
    r"(?:\bsk-[A-Za-z0-9_*-]{6,}|(?<=Bearer )[A-Za-z0-9._~+/=-]{8,}|"
    r"\beyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9._-]{8,}|\bAKIA[0-9A-Z]{16}\b)"
)


def known_secrets(secrets: str | Iterable[str]) -> tuple[str, ...]:
    """``secrets`` as a tuple of its non-empty strings; one string is one secret.

    A string given where a list is expected (``secrets=os.environ["KEY"]``) would otherwise be
    taken as its characters, each too short to redact: the secret itself would then be kept.

    Raises:
        TypeError: an item is not a string.
    """
    if isinstance(secrets, str):
        return (secrets,) if secrets else ()
    found = tuple(secrets)
    for item in found:
        if not isinstance(item, str):
            raise TypeError(
                "secrets takes strings, e.g. secrets=[os.environ['MY_KEY']]; got an item of "
                f"type {type(item).__name__}"
            )
    return tuple(item for item in found if item)


def redact_text(text: str, secrets: str | Iterable[str] = ()) -> str:
    """``text`` with every known secret and every credential-shaped substring replaced
    (``secrets``: a list of them, or one string)."""
    if isinstance(secrets, str):
        secrets = (secrets,)
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, REDACTED)
    return _SECRET_PATTERNS.sub(REDACTED, text)


def redact_value(value: object) -> object:
    """``value`` (JSON-like: text, lists, dicts) with ``redact_text`` applied to every string."""
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, Mapping):
        return {key: redact_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [redact_value(item) for item in value]
    return value


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``headers`` with credential values replaced."""
    return {
        name: (REDACTED if name.lower() in SENSITIVE_HEADERS else redact_text(value))
        for name, value in headers.items()
    }
