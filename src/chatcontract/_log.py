"""The package's loggers: every one is under ``chatcontract``, which has a ``NullHandler``.

A library does not print: without the handler, the stdlib's last-resort handler would write
every warning of a chatcontract logger (the JSON event log included) to stderr in an application
that configured no logging. An application that configures logging still gets every record.

The handler is installed here, by the modules that log, rather than by ``import chatcontract``:
``logging`` costs about 10 ms to import, and ``chatcontract --help`` logs nothing. Every logger
of the package comes from :func:`get_logger` (``tests/test_log.py`` checks it).
"""

from __future__ import annotations

import logging

__all__ = ["get_logger", "library_logger"]

logging.getLogger("chatcontract").addHandler(logging.NullHandler())


def get_logger(name: str) -> logging.Logger:
    """The logger ``name`` (``chatcontract.…``), under the package logger and its NullHandler."""
    if name != "chatcontract" and not name.startswith("chatcontract."):
        raise ValueError(f"a chatcontract logger is named chatcontract.<part>, got {name!r}")
    return logging.getLogger(name)


def library_logger(name: str) -> logging.Logger:
    """A third-party library's own logger (``httpx2``), for a record chatcontract writes in
    that library's place (the client sends a request itself, ``httpx2``'s ``send`` logged it);
    never a chatcontract logger."""
    if name == "chatcontract" or name.startswith("chatcontract."):
        raise ValueError(f"{name!r} is a chatcontract logger: use get_logger")
    return logging.getLogger(name)
