"""Reading the JSON files chatcontract writes (run record, baseline, review log).

One reader, so every command words an unreadable or malformed file the same way.
"""

from __future__ import annotations

import json
import os
from typing import Any

from chatcontract._textfile import FileProblemError, read_text
from chatcontract.errors import ConfigError

__all__ = ["MAX_JSON_FILE_BYTES", "read_json_file"]

#: The largest record read (a validate record is ~30 KB): a wrong 10 GB file or ``/dev/zero``
#: is refused here instead of filling memory.
MAX_JSON_FILE_BYTES = 64 * 1024 * 1024


def read_json_file(path: str | os.PathLike[str], *, remedy: str | None = None) -> Any:
    """The parsed JSON document at ``path``.

    Raises:
        FileNotFoundError: there is no file; the caller says what that means (an error, an
            empty log, no record yet).
        ConfigError: the file cannot be read, is larger than ``MAX_JSON_FILE_BYTES``, is not
            UTF-8, or is not JSON: ``PATH: not valid JSON (line N); REMEDY`` (the decoder's
            own words when no ``remedy`` is given).
    """
    shown = os.fspath(path)
    try:
        text = read_text(path, limit=MAX_JSON_FILE_BYTES)
    except FileNotFoundError:
        raise
    except FileProblemError as exc:
        raise ConfigError(f"{shown}: {exc}") from exc
    tail = f"; {remedy}" if remedy else ""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        tail = tail or f": {exc.msg}"
        raise ConfigError(f"{shown}: not valid JSON (line {exc.lineno}){tail}") from exc
    except RecursionError:
        raise ConfigError(f"{shown}: not usable JSON (nested too deeply){tail}") from None
    except ValueError as exc:  # an integer longer than Python converts (4300 digits)
        raise ConfigError(f"{shown}: not usable JSON (a number too long){tail}") from exc
