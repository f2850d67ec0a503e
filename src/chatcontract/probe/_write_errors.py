"""Naming a failed SQLite write: a bounded reason for ``/healthz`` and ``probe_store_*``."""

from __future__ import annotations

import sqlite3

__all__ = ["WRITE_ERROR_REASONS", "write_error_reason"]

#: The ``reason`` values of ``probe_store_write_errors_total``.
WRITE_ERROR_REASONS: tuple[str, ...] = ("disk_full", "read_only", "locked", "io_error", "other")
_REASON_BY_CODE = {
    sqlite3.SQLITE_FULL: "disk_full",
    sqlite3.SQLITE_READONLY: "read_only",
    sqlite3.SQLITE_BUSY: "locked",
    sqlite3.SQLITE_LOCKED: "locked",
    sqlite3.SQLITE_IOERR: "io_error",
}
_REASON_BY_TEXT = (
    ("disk is full", "disk_full"),
    ("readonly", "read_only"),
    ("read-only", "read_only"),
    ("locked", "locked"),
    ("disk i/o", "io_error"),
)


def write_error_reason(exc: sqlite3.Error) -> str:
    """The bounded reason of a failed write (``disk_full``, ``read_only``, ...)."""
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int) and (code & 0xFF) in _REASON_BY_CODE:
        return _REASON_BY_CODE[code & 0xFF]
    text = str(exc).lower()
    for needle, reason in _REASON_BY_TEXT:
        if needle in text:
            return reason
    return "other"
