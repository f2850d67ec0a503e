"""Reading the JSON files chatcontract writes (run record, baseline, review log).

One reader, so every command words an unreadable or malformed file the same way.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from chatcontract.errors import ConfigError

__all__ = ["read_json_file"]


def read_json_file(path: str | os.PathLike[str], *, remedy: str | None = None) -> Any:
    """The parsed JSON document at ``path``.

    Raises:
        FileNotFoundError: there is no file; the caller says what that means (an error, an
            empty log, no record yet).
        ConfigError: the file cannot be read, or is not JSON: ``PATH: not valid JSON (line
            N); REMEDY`` (the decoder's own words when no ``remedy`` is given).
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise
    except OSError as exc:
        raise ConfigError(f"{os.fspath(path)}: cannot read ({exc.strerror})") from exc
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        tail = f"; {remedy}" if remedy else f": {exc.msg}"
        raise ConfigError(f"{os.fspath(path)}: not valid JSON (line {exc.lineno}){tail}") from exc
