"""Reading a provider usage export as a stream of rows, with column mapping.

Two shapes are understood:

- OpenAI's completions usage API (``GET /v1/organization/usage/completions``): pages of buckets
  (``{"object": "page", "data": [{"start_time", "end_time", "results": [{"model",
  "input_tokens", "output_tokens", "num_model_requests", ...}]}]}``). A page, a bucket or a
  list of them per line (``jq -c``), or one document. Rows carry a time bucket, no request id.
- Flat rows (CSV with a header, or JSON objects one per line): columns are found by name
  (``FIELD_ALIASES``, case-insensitive) or mapped with ``COLUMN=FIELD``. With a ``request_id``
  column rows are single calls; without one, timed rows are counted per hour and model.

Rows are produced one at a time from the file (``csv.reader`` over the open file, or one JSON
line at a time): memory does not grow with the export. A single pretty-printed JSON document is
the exception (it is parsed whole), so it is capped at ``MAX_JSON_DOCUMENT_BYTES``.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import os
import stat
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from chatcontract.errors import UsageError
from chatcontract.redact import redact_text

__all__ = [
    "FIELDS",
    "FIELD_ALIASES",
    "MAX_JSON_DOCUMENT_BYTES",
    "ExportReader",
    "ExportRow",
    "parse_map",
    "parse_time",
]

#: The fields a column can be mapped to (``ignore`` drops a column without a note).
FIELDS = (
    "request_id",
    "time",
    "start_time",
    "end_time",
    "model",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "requests",
    "cost_usd",
)
#: Column names recognised without ``--map`` (the generic per-request mapping, plus OpenAI's
#: bucket names so a CSV of OpenAI's buckets needs no mapping either).
FIELD_ALIASES: Mapping[str, tuple[str, ...]] = {
    "request_id": ("request_id", "request id", "x-request-id"),
    "time": ("time", "timestamp", "created_at"),
    "start_time": ("start_time",),
    "end_time": ("end_time",),
    "model": ("model",),
    "prompt_tokens": ("prompt_tokens", "input_tokens"),
    "completion_tokens": ("completion_tokens", "output_tokens"),
    "total_tokens": ("total_tokens",),
    "requests": ("requests", "num_model_requests"),
    "cost_usd": ("cost_usd",),
}
_TOKEN_FIELDS = ("prompt_tokens", "completion_tokens", "total_tokens")
MAX_JSON_DOCUMENT_BYTES = 64 * 1024 * 1024
_HOUR = 3600.0
#: The largest count a cell may hold (tokens or requests): a month of a large organisation is
#: ~1e11 tokens; more is a wrong column, and Python would refuse a 4300-digit number anyway.
MAX_COUNT = 10**15
#: Times from 1970-01-01 to 9999-12-31 (epoch seconds): outside, ``datetime`` cannot go.
_LAST_TIME = 253_402_300_799.0
#: How much of a cell an error message quotes (a 100,000-character cell is not repeated).
_SHOWN_CELL = 40


def _shown(value: Any) -> str:
    """A cell as a message quotes it: credential-shaped text hidden, long text cut."""
    text = redact_text(str(value))
    if len(text) > _SHOWN_CELL:
        return repr(text[:_SHOWN_CELL]) + f"... ({len(text)} characters)"
    return repr(text) if isinstance(value, str) else text


@dataclass(slots=True, kw_only=True)
class ExportRow:
    """One row of the export in our terms; ``start``/``end`` set for a time bucket."""

    line: int
    request_id: str | None = None
    time: float | None = None
    start: float | None = None
    end: float | None = None
    model: str | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    requests: int = 1
    cost_usd: float | None = None


def parse_map(items: Sequence[str]) -> dict[str, str]:
    """``["Prompt=prompt_tokens", ...]`` → ``{"prompt": "prompt_tokens"}`` (columns lowered)."""
    mapping: dict[str, str] = {}
    for item in items:
        column, sep, target = item.rpartition("=")
        column, target = column.strip(), target.strip()
        if not sep or not column:
            raise UsageError(
                f"--map {item!r}: write COLUMN=FIELD, e.g. --map 'Prompt Tokens=prompt_tokens'"
            )
        if target not in FIELDS and target != "ignore":
            raise UsageError(
                f"--map {item!r}: unknown field {target!r}; use one of {', '.join(FIELDS)}, "
                "or ignore"
            )
        mapping[column.lower()] = target
    return mapping


def parse_time(value: Any, *, where: str) -> float:
    """Epoch seconds from epoch seconds or milliseconds, or ISO 8601 (no offset: UTC)."""
    if isinstance(value, bool):
        raise UsageError(f"{where}: {_shown(value)} is not a time")
    number: float | None = None
    if isinstance(value, int | float):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            number = float(text)
        except ValueError:
            try:
                moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
                if moment.tzinfo is None:
                    moment = moment.replace(tzinfo=dt.UTC)
                number = moment.timestamp()
            except (ValueError, OverflowError):  # OverflowError: year 1 at +14:00
                raise UsageError(
                    f"{where}: {_shown(value)} is not a time; write ISO 8601 "
                    "(2026-12-05T13:01:02Z) or epoch seconds"
                ) from None
            return _in_range(number, value, where)
    if number is None or not math.isfinite(number):
        raise UsageError(f"{where}: {_shown(value)} is not a time")
    if number > 1e11:  # milliseconds since the epoch
        number /= 1000.0
    return _in_range(number, value, where)


def _in_range(number: float, value: Any, where: str) -> float:
    if not 0.0 <= number <= _LAST_TIME:
        raise UsageError(
            f"{where}: {_shown(value)} is not a time between 1970 and 9999; write ISO 8601 "
            "(2026-12-05T13:01:02Z) or epoch seconds"
        )
    return number


def _int(value: Any, *, where: str) -> int | None:
    if type(value) is int:
        return value if 0 <= value <= MAX_COUNT else _bad_int(value, where)
    if type(value) is str and value.isascii() and value.isdigit() and len(value) <= 16:
        return _counted(int(value), value, where)
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if isinstance(value, bool):
        raise UsageError(f"{where}: {_shown(value)} is not a whole number")
    text = str(value).strip().replace(",", "")
    if len(text) > 32:  # float() of a 10,000-digit number is slow for nothing
        return _bad_int(value, where)
    try:
        number = float(text)
    except ValueError:
        raise UsageError(f"{where}: {_shown(value)} is not a whole number") from None
    if not number.is_integer() or number < 0:  # NaN and infinity are not integers
        raise UsageError(f"{where}: {_shown(value)} is not a whole number")
    return _counted(number, value, where)


def _counted(number: float, value: Any, where: str) -> int:
    if number > MAX_COUNT:
        return _bad_int(value, where)
    return int(number)


def _bad_int(value: Any, where: str) -> int:
    raise UsageError(
        f"{where}: {_shown(value)} is not a whole number from 0 to {MAX_COUNT:.0e}".replace(
            "e+", "e"
        )
    )


def _float(value: Any, *, where: str) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    text = str(value).strip().lstrip("$")
    try:
        number = float(text) if len(text) <= 32 else math.nan
    except ValueError:
        raise UsageError(f"{where}: {_shown(value)} is not a number") from None
    if not math.isfinite(number) or number < 0:
        raise UsageError(
            f"{where}: {_shown(value)} is not a cost; write a number of dollars, 0 or more"
        )
    return number


def _text(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip()
    return text or None


@dataclass(slots=True)
class _Columns:
    """Which field each column feeds, for one header."""

    fields: dict[str, str]  # column as written → field
    ignored: list[str] = field(default_factory=list)


def _resolve(header: Sequence[str], overrides: Mapping[str, str], *, source: str) -> _Columns:
    wanted = {column.lower() for column in overrides}
    present = {column.strip().lower() for column in header}
    absent = sorted(wanted - present)
    if absent:
        raise UsageError(
            f"--map: {', '.join(repr(c) for c in absent)} not in {source}'s columns "
            f"({', '.join(repr(c) for c in header)})"
        )
    fields: dict[str, str] = {}
    ignored: list[str] = []
    taken: set[str] = set()
    for column in header:
        key = column.strip().lower()
        target = overrides.get(key)
        if target is None:
            target = next((f for f, names in FIELD_ALIASES.items() if key in names), None)
        if target == "ignore":
            continue
        if target is None or target in taken:
            ignored.append(column)
            continue
        fields[column] = target
        taken.add(target)
    has_tokens = any(name in taken for name in _TOKEN_FIELDS)
    has_key = bool(taken & {"request_id", "time", "start_time"})
    if not (has_tokens and has_key):
        needed = []
        if not has_key:
            needed.append("request_id or time (or start_time)")
        if not has_tokens:
            needed.append("prompt_tokens, completion_tokens or total_tokens")
        unknown = ", ".join(repr(c) for c in ignored) or "none"
        raise UsageError(
            f"{source}: no column for {' and '.join(needed)}; unknown columns: {unknown}. "
            "Map them with --map COLUMN=FIELD (e.g. --map 'Prompt=prompt_tokens' "
            f"--map 'Time=time'); fields: {', '.join(FIELDS)}"
        )
    return _Columns(fields, ignored)


_TIME_ATTRIBUTE = {"time": "time", "start_time": "start", "end_time": "end"}


def _row(
    values: Sequence[Any],
    plan: Sequence[tuple[int, str, str]],
    *,
    line: int,
    where: str,
) -> ExportRow:
    """One ``ExportRow`` from a record's cells; ``plan`` lists (cell index, column as written,
    field)."""
    row = ExportRow(line=line)
    size = len(values)
    for key, column, target in plan:
        value = values[key] if key < size else None
        if target == "request_id":
            row.request_id = _text(value)
        elif target == "model":
            row.model = _text(value)
        elif target in _TIME_ATTRIBUTE:
            if _text(value) is not None:
                moment = parse_time(value, where=f"{where} line {line}, {column}")
                setattr(row, _TIME_ATTRIBUTE[target], moment)
        elif target == "cost_usd":
            row.cost_usd = _float(value, where=f"{where} line {line}, {column}")
        else:
            count = _int(value, where=f"{where} line {line}, {column}")
            if target == "requests":
                row.requests = 1 if count is None else count
            else:
                setattr(row, target, count)
    if row.start is not None and row.end is None:
        row.end = row.start + _HOUR
    if row.start is None and row.request_id is None and row.time is not None:
        row.start = math.floor(row.time / _HOUR) * _HOUR  # counted per hour and model
        row.end = row.start + _HOUR
    return row


class ExportReader:
    """A provider usage export, read lazily: iterate it for ``ExportRow`` values.

    ``mapping`` names what was recognised (``openai-usage-buckets`` or ``columns``),
    ``ignored`` the columns nothing was mapped to, ``per_request`` whether rows are calls
    (a request id column) rather than buckets. Bad input raises ``UsageError`` naming the file
    and line.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        format: str | None = None,
        overrides: Mapping[str, str] | None = None,
    ) -> None:
        self.path = os.fspath(path)
        self.name = os.path.basename(self.path)
        self.overrides = dict(overrides or {})
        if format is None:
            format = "csv" if self.path.lower().endswith(".csv") else "json"
        if format not in ("csv", "json"):
            raise UsageError(f"--format {format!r}: use csv or json")
        self.format = format
        self.mapping = "columns"
        self.ignored: list[str] = []
        self.per_request = False
        self.rows_read = 0
        try:
            mode = os.stat(self.path).st_mode
        except OSError:
            raise UsageError(
                f"--export {self.path}: no such file; give the provider's export"
            ) from None
        if not stat.S_ISREG(mode):
            raise UsageError(
                f"--export {self.path}: not a regular file (a directory, a pipe or a device); "
                "save the provider's export to a file and give that"
            )
        self.delimiter = ","
        if format == "csv":
            self._columns = self._csv_header()

    # -- CSV -----------------------------------------------------------------------------------

    def _csv_header(self) -> _Columns:
        try:
            with open(self.path, encoding="utf-8-sig", newline="") as stream:
                header = next(csv.reader(stream, strict=True), None)
                if header is not None and len(header) == 1:
                    header = self._other_delimiter(header, stream)
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise UsageError(f"--export {self.path}: cannot read it as CSV ({exc})") from exc
        if not header:
            raise UsageError(f"--export {self.path}: empty file; expected a CSV header line")
        columns = _resolve(header, self.overrides, source=self.name)
        self.ignored = columns.ignored
        self.per_request = "request_id" in columns.fields.values()
        return columns

    def _other_delimiter(self, header: list[str], stream: Any) -> list[str]:
        """A one-column header split on ``;`` or a tab when that gives more columns: the
        export of a spreadsheet in a locale whose decimal mark is a comma."""
        for delimiter in (";", "\t"):
            if delimiter in header[0]:
                self.delimiter = delimiter
                stream.seek(0)
                return next(csv.reader(stream, delimiter=delimiter, strict=True))
        return header

    def _csv_rows(self) -> Iterator[ExportRow]:
        with open(self.path, encoding="utf-8-sig", newline="") as stream:
            reader = csv.reader(stream, delimiter=self.delimiter, strict=True)
            header = next(reader)
            plan: list[tuple[int, str, str]] = []
            planned: set[str] = set()
            for index, column in enumerate(header):
                # A repeated column name: the first one feeds the field, as the note says.
                if column in self._columns.fields and column not in planned:
                    plan.append((index, column, self._columns.fields[column]))
                    planned.add(column)
            started = reader.line_num + 1  # the line the record being read starts on
            try:
                for record in reader:
                    if any(cell.strip() for cell in record):
                        if len(record) != len(header):  # a torn or shifted row
                            raise UsageError(
                                f"{self.name} line {reader.line_num}: {len(record)} cells for "
                                f"{len(header)} columns"
                            )
                        self.rows_read += 1
                        yield _row(record, plan, line=reader.line_num, where=self.name)
                    started = reader.line_num + 1
            except (csv.Error, UnicodeDecodeError) as exc:
                if str(exc) == "unexpected end of data":  # strict: a quote opened, never closed
                    raise UsageError(
                        f"{self.name} line {started}: a quoted cell here is never closed (a "
                        'download cut short, or a stray "); download the export again'
                    ) from exc
                raise UsageError(f"{self.name} line {reader.line_num}: {exc}") from exc

    # -- JSON ----------------------------------------------------------------------------------

    def _documents(self) -> Iterator[tuple[int, Any]]:
        """JSON values, one per line; a pretty-printed document as one value."""
        with open(self.path, "rb") as stream:
            number = 0
            while raw := stream.readline(MAX_JSON_DOCUMENT_BYTES + 1):
                number += 1
                if len(raw) > MAX_JSON_DOCUMENT_BYTES:
                    raise UsageError(
                        f"{self.name} line {number}: longer than "
                        f"{MAX_JSON_DOCUMENT_BYTES // (1024 * 1024)} MiB; write one page or "
                        "bucket per line (jq -c '.data[]' pages.json > buckets.jsonl)"
                    )
                if not raw.strip():
                    continue
                try:
                    yield number, orjson.loads(raw)
                except orjson.JSONDecodeError:
                    if number > 1 and raw.endswith(b"\n"):
                        raise UsageError(
                            f"{self.name} line {number}: not JSON; write one JSON value per "
                            "line, or a single JSON document"
                        ) from None
                    if number > 1:  # a torn last line
                        raise UsageError(
                            f"{self.name} line {number}: cut short (unterminated last line); "
                            "download the export again"
                        ) from None
                    break
            else:
                return
        size = os.path.getsize(self.path)
        if size > MAX_JSON_DOCUMENT_BYTES:
            raise UsageError(
                f"{self.name}: a single JSON document of {size} bytes; write one page or "
                "bucket per line instead (jq -c '.' pages.json > pages.jsonl)"
            )
        with open(self.path, "rb") as stream:
            try:
                yield 1, orjson.loads(stream.read())
            except orjson.JSONDecodeError as exc:
                raise UsageError(f"{self.name}: not JSON ({exc})") from exc

    def _json_rows(self) -> Iterator[ExportRow]:
        plan: list[tuple[int, str, str]] | None = None
        for line, value in self._documents():
            # Depth first, in file order; a deque so a list of 200,000 rows costs 200,000 steps
            # (list.pop(0) moved every row left each time: 4.7 s for 200k, 15 s for 400k).
            stack: deque[Any] = deque([value])
            while stack:
                item = stack.popleft()
                if isinstance(item, list):
                    stack.extendleft(reversed(item))
                elif isinstance(item, dict) and isinstance(item.get("data"), list):
                    stack.extendleft(reversed(item["data"]))  # a page
                elif isinstance(item, dict) and isinstance(item.get("results"), list):
                    yield from self._bucket(item, line)
                elif isinstance(item, dict):
                    if plan is None:
                        columns = _resolve(list(item), self.overrides, source=self.name)
                        self.ignored = columns.ignored
                        self.per_request = "request_id" in columns.fields.values()
                        plan = [
                            (index, name, target)
                            for index, (name, target) in enumerate(columns.fields.items())
                        ]
                    self.rows_read += 1
                    cells = [item.get(name) for _, name, _ in plan]
                    yield _row(cells, plan, line=line, where=self.name)
                else:
                    raise UsageError(
                        f"{self.name} line {line}: expected an object, a page of buckets or a "
                        f"list, got {type(item).__name__}"
                    )

    def _bucket(self, bucket: Mapping[str, Any], line: int) -> Iterator[ExportRow]:
        self.mapping = "openai-usage-buckets"
        where = f"{self.name} line {line}"
        if "start_time" not in bucket or "end_time" not in bucket:
            raise UsageError(f"{where}: a bucket without start_time and end_time")
        start = parse_time(bucket["start_time"], where=f"{where}, start_time")
        end = parse_time(bucket["end_time"], where=f"{where}, end_time")
        if end <= start:
            raise UsageError(f"{where}: bucket end_time is not after start_time")
        # An empty bucket still says the period was covered.
        yield ExportRow(line=line, start=start, end=end, requests=0)
        for result in bucket["results"]:
            if not isinstance(result, dict):
                raise UsageError(f"{where}: a bucket result that is not an object")
            self.rows_read += 1
            yield ExportRow(
                line=line,
                start=start,
                end=end,
                model=_text(result.get("model")),
                prompt_tokens=_int(result.get("input_tokens"), where=f"{where}, input_tokens"),
                completion_tokens=_int(
                    result.get("output_tokens"), where=f"{where}, output_tokens"
                ),
                requests=_int(
                    result.get("num_model_requests"), where=f"{where}, num_model_requests"
                )
                or 0,
            )

    def __iter__(self) -> Iterator[ExportRow]:
        return self._csv_rows() if self.format == "csv" else self._json_rows()
