"""The usage ledger: one JSON line per call, every call, for reconciling with the provider's bill.

An opt-in ``TelemetrySink``. Each Exchange becomes one line: when it started, the provider's
request ids, the route and attempt, the model asked for and the model that answered, the tokens
as reported, whether usage was missing, the cost estimated from the contract's prices
(``policy.prices``, USD per million tokens) with the prices used, and the outcome (success,
closed when the caller stopped the call before its answer ended, or the failure's kind,
category and code). Never the prompt, the completion text or a key: every
text from the outside world goes through ``redact_text`` before it is written.
``chatcontract reconcile`` reads these files against a provider usage export.

Files: ``path`` is the active file; it is rotated to ``<stem>.<YYYY-MM-DD>.<n><suffix>`` beside
it when the UTC day changes or it would exceed ``max_file_bytes``. Rotated files older than
``keep_days`` (default 35: a billing month and some) are removed; when all files together exceed
``max_total_bytes`` the oldest are removed too (a warning, and ``reason="size"`` in
``llm_usage_ledger_files_removed_total``: raise the bound to keep the 35 days). One writer per
file: threads of one process share a ledger object (a lock orders the appends); separate
processes each get their own path (e.g. with the pid or host in the name).

Each line is written with one ``write`` call on an unbuffered append handle opened for that
record, so it reaches the operating system before the call returns and nothing stays open.
A crash mid-write can leave a torn last line; the next record seals it with a newline first,
so later records stay whole, and readers skip it. A write
error (disk full, permission) is counted in ``llm_usage_ledger_write_errors_total`` and logged
once; it never fails the call.

Example::

    ledger = UsageLedger("/var/lib/app/usage.jsonl", contract=contract, registry=registry)
    client = ChatClient(contract, api_key=key, telemetry_sinks=[ledger])
    http_client = chatcontract.instrument(contract=contract, sinks=[ledger])
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from prometheus_client import CollectorRegistry, Counter

from chatcontract._log import get_logger
from chatcontract.contract import Contract, Prices
from chatcontract.errors import ConfigError
from chatcontract.redact import known_secrets, redact_text
from chatcontract.transport import Exchange

from .events import CallLabels, ClientEvent

__all__ = [
    "DEFAULT_KEEP_DAYS",
    "DEFAULT_MAX_FILE_BYTES",
    "DEFAULT_MAX_TOTAL_BYTES",
    "LEDGER_VERSION",
    "LedgerMetrics",
    "LedgerReadIssue",
    "UsageLedger",
    "ledger_files",
    "ledger_record",
    "read_ledger",
    "read_ledger_lines",
]

logger = get_logger("chatcontract.telemetry.ledger")

#: The ``v`` member of every line; readers refuse lines of a newer version.
LEDGER_VERSION = 1
#: The longest line ``read_ledger`` keeps (a record is ~600 bytes): a wrong file without line
#: breaks is skipped a piece at a time instead of read whole.
MAX_LINE_BYTES = 1024 * 1024
#: A billing month and a few days of slack: what a reconciliation needs.
DEFAULT_KEEP_DAYS = 35
DEFAULT_MAX_FILE_BYTES = 64 * 1024 * 1024
#: Around five million calls at ~400 bytes a line; raise it for more traffic.
DEFAULT_MAX_TOTAL_BYTES = 2 * 1024 * 1024 * 1024

# errno → the ``reason`` label of a write error (a small fixed set).
_REASONS = {
    errno.ENOSPC: "disk_full",
    errno.EDQUOT: "disk_full",
    errno.EACCES: "permission",
    errno.EPERM: "permission",
    errno.EROFS: "read_only",
    errno.EIO: "io_error",
}


class LedgerMetrics:
    """The ledger's own health, on an injected registry.

    ``llm_usage_ledger_records_total`` (records written), ``llm_usage_ledger_write_errors_total``
    (records lost, by ``reason``) and ``llm_usage_ledger_files_removed_total`` (retention,
    ``reason`` ``age`` or ``size``), each labelled with the contract's ``provider``.
    """

    def __init__(self, registry: CollectorRegistry, *, provider: str) -> None:
        self.provider = provider
        self.records = Counter(
            "llm_usage_ledger_records",
            "Calls written to the usage ledger.",
            ("provider",),
            registry=registry,
        )
        self.write_errors = Counter(
            "llm_usage_ledger_write_errors",
            "Ledger records that could not be written (the call itself went on).",
            ("provider", "reason"),
            registry=registry,
        )
        self.files_removed = Counter(
            "llm_usage_ledger_files_removed",
            "Rotated ledger files removed by retention (age) or the total size bound (size).",
            ("provider", "reason"),
            registry=registry,
        )
        self.records.labels(provider)
        for reason in (*sorted(set(_REASONS.values())), "other"):
            self.write_errors.labels(provider, reason)
        for reason in ("age", "size"):
            self.files_removed.labels(provider, reason)


def _outcome(exchange: Exchange) -> str:
    """``success``, ``failure``, or ``closed``: the caller stopped the call before its answer
    ended (``Exchange.closed_by_caller``), which is neither."""
    if exchange.failure is not None:
        return "failure"
    return "closed" if exchange.closed_by_caller else "success"


def _price(prices: Mapping[str, Prices], *models: str | None) -> Prices | None:
    for model in models:
        if model and model in prices:
            return prices[model]
    return None


def _iso(timestamp: float) -> str:
    moment = dt.datetime.fromtimestamp(timestamp, dt.UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _clean(value: str | None, secrets: Sequence[str]) -> str | None:
    return None if value is None else redact_text(value, secrets)


def ledger_record(
    exchange: Exchange,
    labels: CallLabels,
    *,
    prices: Mapping[str, Prices],
    secrets: Sequence[str] = (),
) -> dict[str, Any]:
    """The ledger line of one Exchange, as plain data (no prompt, no content, no key)."""
    request, response, failure = exchange.request, exchange.response, exchange.failure
    usage = None if response is None else response.usage
    prompt = None if usage is None else usage.prompt_tokens
    completion = None if usage is None else usage.completion_tokens
    total = None if usage is None else usage.total_tokens
    missing = prompt is None and completion is None and total is None
    answered = None if response is None else _clean(response.model, secrets)
    price = _price(prices, request.model, answered)
    cost = None
    if price is not None and not (prompt is None and completion is None):
        cost = round(price.cost(prompt or 0, completion or 0), 10)
    ids: list[str] = []
    candidates = [] if response is None else list(response.request_ids.values())
    if failure is not None and failure.request_id:
        candidates.append(failure.request_id)
    for value in candidates:
        cleaned = redact_text(value, secrets)
        if cleaned and cleaned not in ids:
            ids.append(cleaned)
    record: dict[str, Any] = {
        "v": LEDGER_VERSION,
        "time": _iso(exchange.started_at),
        "duration_ms": round(exchange.timings.total_ms, 3),
        "provider": labels.provider,
        "endpoint": labels.endpoint,
        "route": exchange.route,
        "attempt": exchange.attempt,
        "request_ids": ids,
        "response_id": None if response is None else _clean(response.response_id, secrets),
        "model_requested": _clean(request.model, secrets),
        "model_answered": answered,
        "stream": request.stream,
        "status": None if response is None else response.status,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": total,
        "usage_missing": missing,
        "cost_usd": cost,
        "price": None
        if price is None
        else {
            "input_per_million": price.input_per_million,
            "output_per_million": price.output_per_million,
        },
        "outcome": _outcome(exchange),
    }
    if failure is not None:
        record["kind"] = failure.kind
        record["category"] = failure.category
        record["code"] = redact_text(failure.code, secrets)
    return record


@dataclass(frozen=True, slots=True)
class _RotatedName:
    day: str
    seq: int


def _rotated_pattern(path: Path) -> re.Pattern[str]:
    stem, suffix = re.escape(path.stem), re.escape(path.suffix)
    return re.compile(rf"^{stem}\.(\d{{4}}-\d{{2}}-\d{{2}})\.(\d+){suffix}$")


def _rotated(path: Path) -> list[tuple[_RotatedName, Path]]:
    """The rotated files of ``path``, oldest first."""
    pattern = _rotated_pattern(path)
    found = []
    try:
        names = os.listdir(path.parent)
    except OSError:
        return []
    for name in names:
        match = pattern.match(name)
        if match:
            found.append((_RotatedName(match.group(1), int(match.group(2))), path.parent / name))
    found.sort(key=lambda item: (item[0].day, item[0].seq))
    return found


def ledger_files(path: str | os.PathLike[str]) -> list[Path]:
    """Every file of the ledger at ``path``, oldest first: the rotated ones, then ``path``."""
    active = Path(path)
    files = [item[1] for item in _rotated(active)]
    if active.exists():
        files.append(active)
    return files


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno is not None:
        return _REASONS.get(exc.errno, "other")
    return "other"


class UsageLedger:
    """A ``TelemetrySink`` appending one JSON line per call to a rotated, bounded file set.

    Args:
        path: the active ledger file (``usage.jsonl``); its directory is created.
        contract: gives the prices (``policy.prices``) and the ``provider`` metric label.
        registry: where ``LedgerMetrics`` are registered (none when ``None``).
        keep_days: rotated files whose day is older than this many days are removed (>= 1).
        max_file_bytes: the active file is rotated before it would exceed this.
        max_total_bytes: all files together are kept under this, the oldest removed first.
        secrets: strings redacted from every line (the API key), on top of the
            credential-shaped patterns ``redact_text`` always removes.
        clock: epoch seconds, for rotation and retention (injected in tests).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        contract: Contract,
        registry: CollectorRegistry | None = None,
        keep_days: int = DEFAULT_KEEP_DAYS,
        max_file_bytes: int = DEFAULT_MAX_FILE_BYTES,
        max_total_bytes: int = DEFAULT_MAX_TOTAL_BYTES,
        secrets: Sequence[str] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        for name, value, low in (
            ("keep_days", keep_days, 1),
            ("max_file_bytes", max_file_bytes, 4096),
            ("max_total_bytes", max_total_bytes, 4096),
        ):
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ConfigError(
                    f"UsageLedger {name} must be a whole number >= {low}, got {value!r}"
                )
        if max_total_bytes < 2 * max_file_bytes:
            raise ConfigError(
                f"UsageLedger max_total_bytes ({max_total_bytes}) must be at least twice "
                f"max_file_bytes ({max_file_bytes}), so a rotated file can be kept"
            )
        self.path = Path(path)
        if self.path.is_dir():
            raise ConfigError(f"UsageLedger path {self.path} is a directory; give a file name")
        self.prices = dict(contract.policy.prices)
        self.keep_days = keep_days
        self.max_file_bytes = max_file_bytes
        self.max_total_bytes = max_total_bytes
        self.metrics = (
            None if registry is None else LedgerMetrics(registry, provider=contract.provider)
        )
        self.records_written = 0
        self.write_errors = 0
        try:
            self._secrets = known_secrets(secrets)
        except TypeError as exc:
            raise ConfigError(f"UsageLedger {exc}") from None
        self._clock = clock
        self._lock = threading.Lock()
        self._day: str | None = None
        self._size: int | None = None  # of the active file; None: not looked at yet
        self._warned_error = False
        self._warned_size = False

    # -- the sink ------------------------------------------------------------------------------

    def handle_exchange(self, exchange: Exchange, labels: CallLabels) -> None:
        """Append the call's line; a failure to write is counted, never raised."""
        try:
            record = ledger_record(exchange, labels, prices=self.prices, secrets=self._secrets)
            line = orjson.dumps(record) + b"\n"
            with self._lock:
                self._append(line)
                self.records_written += 1
        except Exception as exc:  # a ledger must never fail the call it records
            self._failed(exc)
            return
        if self.metrics is not None:
            self.metrics.records.labels(self.metrics.provider).inc()

    def handle_event(self, event: ClientEvent, labels: CallLabels) -> None:
        """Client decisions are not calls: nothing to record."""

    def close(self) -> None:
        """Forget what is known of the active file (it is looked at again on the next record);
        nothing stays open between records, so this is never required."""
        with self._lock:
            self._size = None

    # -- writing -------------------------------------------------------------------------------

    def _today(self) -> str:
        return dt.datetime.fromtimestamp(self._clock(), dt.UTC).date().isoformat()

    def _inspect(self) -> None:
        """Size and day of an existing active file; a torn last line (a crash) is sealed."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._size, self._day = 0, None
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return
        self._size = stat.st_size
        self._day = dt.datetime.fromtimestamp(stat.st_mtime, dt.UTC).date().isoformat()
        if not self._size or not self.path.is_file():
            return
        with open(self.path, "rb") as stream:
            stream.seek(-1, os.SEEK_END)
            torn = stream.read(1) != b"\n"
        if torn:
            with open(self.path, "ab", buffering=0) as stream:
                stream.write(b"\n")
            self._size += 1

    def _append(self, line: bytes) -> None:
        if self._size is None:
            self._inspect()
        today = self._today()
        if self._size and (
            self._day != today or (self._size or 0) + len(line) > self.max_file_bytes
        ):
            self._rotate()
            self._size, self._day = 0, today
        try:
            # Opened per record: nothing stays open between calls, and a file moved away by
            # hand is simply started again.
            with open(self.path, "ab", buffering=0) as stream:
                written = stream.write(line)
        except BaseException:
            self._size = None  # look again (and seal a torn end) before the next record
            raise
        if written != len(line):  # a short write on a full disk
            self._size = None
            raise OSError(errno.ENOSPC, "short write to the usage ledger")
        self._size = (self._size or 0) + len(line)
        if self._day is None:
            self._day = today

    def _rotate(self) -> None:
        day = self._day or self._today()
        taken = [name.seq for name, _ in _rotated(self.path) if name.day == day]
        target = self.path.with_name(
            f"{self.path.stem}.{day}.{max(taken, default=0) + 1}{self.path.suffix}"
        )
        os.replace(self.path, target)
        self._prune()

    def _prune(self) -> None:
        today = dt.date.fromisoformat(self._today())
        oldest_kept = (today - dt.timedelta(days=self.keep_days)).isoformat()
        rotated = _rotated(self.path)
        kept: list[tuple[Path, int]] = []
        for name, file in rotated:
            if name.day < oldest_kept:
                self._remove(file, "age")
                continue
            try:
                kept.append((file, file.stat().st_size))
            except OSError:
                continue
        total = sum(size for _, size in kept)
        while kept and total > self.max_total_bytes - self.max_file_bytes:
            file, size = kept.pop(0)
            self._remove(file, "size")
            total -= size
            if not self._warned_size:
                self._warned_size = True
                logger.warning(
                    "chatcontract: the usage ledger %s reached max_total_bytes (%d); the oldest "
                    "files are removed before %d days: raise max_total_bytes to keep them",
                    self.path,
                    self.max_total_bytes,
                    self.keep_days,
                )

    def _remove(self, file: Path, reason: str) -> None:
        try:
            file.unlink()
        except FileNotFoundError:
            return
        if self.metrics is not None:
            self.metrics.files_removed.labels(self.metrics.provider, reason).inc()

    def _failed(self, exc: Exception) -> None:
        reason = _reason(exc)
        with self._lock:
            self.write_errors += 1
            first = not self._warned_error
            self._warned_error = True
        if self.metrics is not None:
            self.metrics.write_errors.labels(self.metrics.provider, reason).inc()
        if first:
            logger.warning(
                "chatcontract: the usage ledger %s could not write a record (%s, %s); the call "
                "went on, further errors are only counted",
                self.path,
                reason,
                type(exc).__name__,
            )


# -- reading ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True, kw_only=True)
class LedgerReadIssue:
    """A line a reader skipped: ``torn`` (the file's unterminated last line, a crash
    mid-write) or ``corrupt`` (not a ledger record)."""

    file: str
    line: int
    kind: str  # torn | corrupt
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "kind": self.kind, "detail": self.detail}


def _skip_rest_of_line(stream: Any, read: bytes) -> None:
    """Read past the end of an overlong line, a bounded piece at a time."""
    while read and not read.endswith(b"\n"):
        read = stream.readline(MAX_LINE_BYTES)


def read_ledger(
    files: Sequence[str | os.PathLike[str]],
    issues: list[LedgerReadIssue],
) -> Iterator[dict[str, Any]]:
    """Yield every ledger record of ``files`` in order, one line at a time.

    A line that is not a whole record is skipped and appended to ``issues``; the other
    records are all read. Raises ``OSError`` when a file cannot be opened.
    """
    for _, _, record in read_ledger_lines(files, issues):
        yield record


def read_ledger_lines(
    files: Sequence[str | os.PathLike[str]],
    issues: list[LedgerReadIssue],
) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """``read_ledger`` with where each record is: ``(file, line number, record)``."""
    for file in files:
        name = os.fspath(file)
        with open(file, "rb") as stream:
            number = 0
            while raw := stream.readline(MAX_LINE_BYTES + 1):
                number += 1
                if len(raw) > MAX_LINE_BYTES:
                    _skip_rest_of_line(stream, raw)
                    detail = f"longer than {MAX_LINE_BYTES} bytes: not a ledger line"
                    issues.append(
                        LedgerReadIssue(file=name, line=number, kind="corrupt", detail=detail)
                    )
                    continue
                if not raw.strip():
                    continue
                torn = not raw.endswith(b"\n")
                try:
                    record = orjson.loads(raw)
                except orjson.JSONDecodeError:
                    record = None
                if not isinstance(record, dict) or "time" not in record:
                    kind = "torn" if torn else "corrupt"
                    detail = (
                        "unterminated last line (a write cut short)" if torn else "not a record"
                    )
                    issues.append(LedgerReadIssue(file=name, line=number, kind=kind, detail=detail))
                    continue
                if isinstance(record.get("v"), int) and record["v"] > LEDGER_VERSION:
                    issues.append(
                        LedgerReadIssue(
                            file=name,
                            line=number,
                            kind="corrupt",
                            detail=f"ledger version {record['v']} is newer than this chatcontract",
                        )
                    )
                    continue
                yield name, number, record
