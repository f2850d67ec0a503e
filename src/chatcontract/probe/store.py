"""The probe store: SQLite (stdlib, WAL) with a schema that ports to PostgreSQL unchanged.

Tables: ``schema_version``, ``probe_runs`` (one row per probe call), ``shapes`` (response shape
paths, shared by every run with the same fingerprint), ``validation_runs``, ``drift_events``
(one row per distinct difference) and ``cost_ledger``. Every row but a shape carries ``target``,
the :class:`~chatcontract.identity.TargetIdentity` key it came from; reads for a target see
only its rows, so simulated runs never count for a real endpoint. Schema version 1 (no
``target``) is migrated in place: its rows keep ``target`` NULL ("unknown target") and match
no target. Plain types only (``TEXT``, ``INTEGER``,
``BIGINT``, ``DOUBLE PRECISION``), text primary keys (uuids: rows from several probe instances
merge without clashes), ``INSERT ... ON CONFLICT DO NOTHING``; the only SQLite-specific
statements are the connection pragmas.

Durability: every probe run is committed on its own (``synchronous=FULL`` by default), so a
``kill -9`` loses nothing that was committed. One connection is shared by the probe loop and
the HTTP app behind a lock; every statement is short.

A store file deleted or replaced while open (a cleanup of ``.chatcontract/``) would take every
later write into a deleted inode, lost at exit while ``/healthz`` said ok: before each write the
path is checked, and the store is opened anew there (a new file, its directory recreated); if
that fails the write fails as below.

A write that fails (disk full, read-only file, locked) raises ``sqlite3.Error`` as before and
is remembered: :meth:`ProbeStore.health` says whether the last write failed, why, since when,
and how many writes failed by reason; the next successful write clears it (space came back).

Example::

    with ProbeStore.open(".chatcontract/chatcontract.db") as store:
        store.record_run(run)
        store.spent_on("2026-01-31")
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self

from chatcontract._log import get_logger
from chatcontract.errors import ConfigError
from chatcontract.identity import UNKNOWN_TARGET
from chatcontract.redact import redact_text

from ._schema import (
    _INSERT_COST,
    _INSERT_RUN,
    _INSERT_SHAPE,
    _SCHEMA,
    _TARGET_INDEXES,
    _TARGET_TABLES,
    _run_values,
)
from ._write_errors import WRITE_ERROR_REASONS, write_error_reason
from .cost import utc_day
from .records import PROBE_KINDS, DriftEvent, ProbeRun, ValidationRun

__all__ = [
    "DEFAULT_DB_PATH",
    "SCHEMA_VERSION",
    "WRITE_ERROR_REASONS",
    "ProbeState",
    "ProbeStore",
    "PruneResult",
    "StoreHealth",
    "TargetCounts",
    "write_error_reason",
]

logger = get_logger("chatcontract.probe")

DEFAULT_DB_PATH = ".chatcontract/chatcontract.db"
#: 2: every row carries ``target`` (migrated from 1 by adding the column, NULL for old rows).
SCHEMA_VERSION = 2

Synchronous = Literal["NORMAL", "FULL"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ProbeState:
    """The latest primary-route run of one probe kind (``last_ok``: see ``probe_states``)."""

    last_run_at: float | None
    last_success_at: float | None
    last_ok: bool | None


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreHealth:
    """Whether the store accepts writes: the last write's error, if it failed.

    ``error`` is the database's message (e.g. ``database or disk is full``), ``since`` when
    writes started failing (epoch seconds), ``failed_writes`` the count by reason since the
    store was opened.
    """

    writable: bool
    error: str | None = None
    reason: str | None = None
    since: float | None = None
    failed_writes: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class TargetCounts:
    """Probe rows of other targets than the one asked for (not counted for it)."""

    simulated: int = 0
    unknown: int = 0
    other: int = 0

    def in_words(self) -> list[str]:
        """Each count that is not zero, in words (``["3 simulated", "1 of other targets"]``)."""
        return [
            f"{count} {what}"
            for count, what in (
                (self.simulated, "simulated"),
                (self.other, "of other targets"),
                (self.unknown, f"of an {UNKNOWN_TARGET} (recorded by an older chatcontract)"),
            )
            if count
        ]


@dataclass(frozen=True, slots=True, kw_only=True)
class PruneResult:
    """Rows removed by :meth:`ProbeStore.prune`, per table."""

    probe_runs: int = 0
    cost_ledger: int = 0
    validation_runs: int = 0
    drift_events: int = 0
    shapes: int = 0

    @property
    def total(self) -> int:
        return (
            self.probe_runs
            + self.cost_ledger
            + self.validation_runs
            + self.drift_events
            + self.shapes
        )


class ProbeStore:
    """Probe history in SQLite. Open with :meth:`open`; close it (or use ``with``).

    Raises ``ConfigError`` when the file cannot be created, is not a database, or was written
    by a newer chatcontract.
    """

    def __init__(
        self,
        connection: sqlite3.Connection,
        path: str,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._conn: sqlite3.Connection | None = connection
        self.path = path
        self._lock = threading.RLock()
        self._clock = clock
        self._write_error: tuple[str, str, float] | None = None  # (message, reason, since)
        self._failed_writes: dict[str, int] = {}
        self._synchronous: Synchronous = "FULL"
        self._file: tuple[int, int] | None = None  # (st_dev, st_ino) of the file opened

    @classmethod
    def open(
        cls, path: str | Path = DEFAULT_DB_PATH, *, synchronous: Synchronous = "FULL"
    ) -> ProbeStore:
        """Open (creating the file, its directory and the schema when needed)."""
        if synchronous not in ("NORMAL", "FULL"):
            raise ConfigError(f"synchronous={synchronous!r}; use NORMAL or FULL")
        if not str(path).strip():
            raise ConfigError(
                f"the probe store path is empty; pass --db FILE, e.g. {DEFAULT_DB_PATH}"
            )
        location = Path(path)
        try:
            location.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(
                f"{path}: cannot create the directory {location.parent} ({exc.strerror}); "
                "pass --db with a writable path"
            ) from exc
        if location.is_dir():
            raise ConfigError(f"{path} is a directory; pass --db with a file path")
        try:
            conn = sqlite3.connect(
                str(location), check_same_thread=False, isolation_level=None, timeout=5.0
            )
        except sqlite3.Error as exc:
            raise ConfigError(
                f"{path}: cannot open the probe store ({exc}); pass --db with a writable path"
            ) from exc
        store = cls(conn, str(location))
        store._synchronous = synchronous
        try:
            store._initialise(synchronous)
            with contextlib.suppress(OSError):  # ":memory:" has no file to follow
                store._file = _file_identity(store.path)
        except sqlite3.OperationalError as exc:
            store.close()
            if write_error_reason(exc) in ("disk_full", "read_only", "io_error"):
                raise ConfigError(
                    f"{path}: cannot write the probe store ({exc}); free disk space, or pass "
                    "--db with a writable path"
                ) from exc
            raise ConfigError(
                f"{path}: not a usable chatcontract probe store ({exc}); "
                "pass --db with another file"
            ) from exc
        except sqlite3.DatabaseError as exc:
            store.close()
            raise ConfigError(
                f"{path}: not a usable chatcontract probe store ({exc}); "
                "pass --db with another file"
            ) from exc
        except ConfigError:
            store.close()
            raise
        return store

    def _initialise(self, synchronous: Synchronous) -> None:
        conn = self._connection()
        self._refuse_foreign(conn)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        with self._transaction() as cur:
            for statement in _SCHEMA:
                cur.execute(statement)
            row = cur.execute("SELECT MAX(version) FROM schema_version").fetchone()
            version = row[0] if row else None
            if version is None:
                cur.execute(
                    "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
                    (SCHEMA_VERSION, time.time()),
                )
            elif version > SCHEMA_VERSION:
                raise ConfigError(
                    f"{self.path}: schema version {version} was written by a newer chatcontract "
                    f"(this one reads {SCHEMA_VERSION}); upgrade, or pass --db with another file"
                )
            elif version < SCHEMA_VERSION:
                self._migrate(cur, version)
            for statement in _TARGET_INDEXES:
                cur.execute(statement)

    def _refuse_foreign(self, conn: sqlite3.Connection) -> None:
        """Refuse another program's database before anything is written to it.

        A wrong ``--db`` naming an application's SQLite file would otherwise get the probe
        tables added and its journal mode switched to WAL. A new or empty file, or a probe
        store (it has ``schema_version``), is fine.
        """
        cur = conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' "
            "ORDER BY name"
        )
        try:
            tables = [
                name if name.isprintable() else repr(name)
                for name in (str(row[0])[:64] for row in cur.fetchall())
            ]
        finally:
            cur.close()
        if tables and "schema_version" not in tables:
            shown = ", ".join(tables[:5]) + (", ..." if len(tables) > 5 else "")
            raise ConfigError(
                f"{self.path}: another program's SQLite database (tables: {shown}), not a "
                "chatcontract probe store; left unchanged: pass --db with another file"
            )

    def _migrate(self, cur: sqlite3.Cursor, version: int) -> None:
        """Bring an older schema up to :data:`SCHEMA_VERSION` (in the caller's transaction)."""
        if version < 2:
            for table in _TARGET_TABLES:
                columns = {row[1] for row in cur.execute(f"PRAGMA table_info({table})")}
                if "target" not in columns:
                    # Table names come from the constant above, never from input.
                    cur.execute(f"ALTER TABLE {table} ADD COLUMN target TEXT")
        cur.execute(
            "INSERT INTO schema_version (version, applied_at) VALUES (?, ?)",
            (SCHEMA_VERSION, time.time()),
        )

    # -- plumbing -----------------------------------------------------------------------------

    def _connection(self) -> sqlite3.Connection:
        if self._conn is None:
            raise sqlite3.ProgrammingError("the probe store is closed")
        return self._conn

    def _follow_file(self) -> None:
        """Open the store anew when its file was deleted or replaced since it was opened.

        Raises ``sqlite3.OperationalError`` (a failed write) when that is not possible.
        """
        if self._file is None or self._conn is None:
            return
        try:
            now = _file_identity(self.path)
        except OSError:
            now = None
        if now == self._file:
            return
        what = "deleted" if now is None else "replaced"
        try:
            fresh = ProbeStore.open(self.path, synchronous=self._synchronous)
        except ConfigError as exc:
            raise sqlite3.OperationalError(
                f"the store file was {what} and cannot be created again: {exc}"
            ) from exc
        self._conn.close()
        self._conn, fresh._conn = fresh._conn, None
        self._file = fresh._file
        logger.warning("probe store %s was %s while open; recording to a new file", self.path, what)

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Cursor]:
        """One write transaction; a failed write is remembered (see :meth:`health`)."""
        with self._lock:
            try:
                self._follow_file()
            except sqlite3.Error as exc:
                self._write_failed(exc)
                raise
            conn = self._connection()
            cur = conn.cursor()
            try:
                cur.execute("BEGIN")
                yield cur
                conn.commit()
            except BaseException as exc:
                if conn.in_transaction:
                    conn.rollback()
                if isinstance(exc, sqlite3.Error) and not isinstance(exc, sqlite3.ProgrammingError):
                    self._write_failed(exc)
                raise
            else:
                self._write_error = None
            finally:
                cur.close()

    def _write_failed(self, exc: sqlite3.Error) -> None:
        reason = write_error_reason(exc)
        self._failed_writes[reason] = self._failed_writes.get(reason, 0) + 1
        since = self._write_error[2] if self._write_error is not None else self._clock()
        self._write_error = (redact_text(str(exc)), reason, since)

    def health(self) -> StoreHealth:
        """Whether the last write succeeded; the error, its reason and since when if not."""
        with self._lock:
            failed = dict(self._failed_writes)
            if self._write_error is None:
                return StoreHealth(writable=True, failed_writes=failed)
            message, reason, since = self._write_error
            return StoreHealth(
                writable=False, error=message, reason=reason, since=since, failed_writes=failed
            )

    def fetchall(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run a read-only query and return its rows."""
        with self._lock:
            cur = self._connection().execute(sql, tuple(params))
            try:
                return list(cur.fetchall())
            finally:
                cur.close()

    def fetchone(self, sql: str, params: Sequence[Any] = ()) -> tuple[Any, ...] | None:
        rows = self.fetchall(sql, params)
        return rows[0] if rows else None

    def ping(self) -> bool:
        """True when the store answers a query."""
        try:
            return self.fetchone("SELECT COUNT(*) FROM schema_version") is not None
        except sqlite3.Error:
            return False

    def schema_version(self) -> int:
        row = self.fetchone("SELECT MAX(version) FROM schema_version")
        return int(row[0]) if row and row[0] is not None else 0

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    @property
    def closed(self) -> bool:
        return self._conn is None

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ProbeStore({self.path!r}{', closed' if self.closed else ''})"

    # -- writes -------------------------------------------------------------------------------

    def record_run(self, run: ProbeRun, *, day: str | None = None) -> None:
        """Store one probe run (its shape and its cost entry), committed at once."""
        self.record_runs((run,), day_of=None if day is None else (lambda _run: day))

    def record_runs(
        self, runs: Iterable[ProbeRun], *, day_of: Callable[[ProbeRun], str] | None = None
    ) -> int:
        """Store many runs in one transaction (seeding, benchmarks). Returns how many.

        ``day_of(run) -> 'YYYY-MM-DD'`` names the cost day; default: the run's UTC date.
        """
        count = 0
        with self._transaction() as cur:
            for run in runs:
                if run.shape_paths and run.fingerprint:
                    cur.execute(_INSERT_SHAPE, (run.fingerprint, json.dumps(list(run.shape_paths))))
                cur.execute(_INSERT_RUN, _run_values(run))
                if run.cost_usd > 0:
                    day = day_of(run) if day_of is not None else utc_day(run.started_at)
                    cur.execute(
                        _INSERT_COST,
                        (
                            run.run_id,
                            run.run_id,
                            run.started_at,
                            day,
                            run.probe,
                            run.route,
                            run.response_model or run.requested_model,
                            run.cost_usd,
                            int(run.cost_estimated),
                            run.target,
                        ),
                    )
                count += 1
        return count

    def record_validation(self, run: ValidationRun) -> bool:
        """Store a validation run once (by ``run_id``); True when it was new."""
        with self._transaction() as cur:
            cur.execute(
                "INSERT INTO validation_runs (run_id, at, verdict, passed, failed, warned, "
                "skipped, report, target) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (run_id) DO NOTHING",
                (
                    run.run_id,
                    run.at,
                    run.verdict,
                    run.passed,
                    run.failed,
                    run.warned,
                    run.skipped,
                    run.report_json,
                    run.target,
                ),
            )
            return cur.rowcount == 1

    def record_drift(self, event: DriftEvent) -> bool:
        """Store a drift event unless one with the same ``key`` exists; True when new."""
        with self._transaction() as cur:
            cur.execute(
                "INSERT INTO drift_events (event_id, dedupe_key, at, kind, detail, probe, target) "
                "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (dedupe_key) DO NOTHING",
                (
                    event.event_id,
                    event.key,
                    event.at,
                    event.kind,
                    event.detail,
                    event.probe,
                    event.target,
                ),
            )
            return cur.rowcount == 1

    def prune(self, *, before: float) -> PruneResult:
        """Delete history older than ``before`` (epoch seconds), keeping the latest validation."""
        with self._transaction() as cur:
            runs = cur.execute("DELETE FROM probe_runs WHERE started_at < ?", (before,)).rowcount
            ledger = cur.execute("DELETE FROM cost_ledger WHERE at < ?", (before,)).rowcount
            validations = cur.execute(
                "DELETE FROM validation_runs WHERE at < ? AND run_id NOT IN "
                "(SELECT run_id FROM validation_runs ORDER BY at DESC LIMIT 1)",
                (before,),
            ).rowcount
            drift = cur.execute("DELETE FROM drift_events WHERE at < ?", (before,)).rowcount
            shapes = 0
            if runs:
                shapes = cur.execute(
                    "DELETE FROM shapes WHERE NOT EXISTS (SELECT 1 FROM probe_runs "
                    "WHERE probe_runs.fingerprint = shapes.digest)"
                ).rowcount
        return PruneResult(
            probe_runs=runs,
            cost_ledger=ledger,
            validation_runs=validations,
            drift_events=drift,
            shapes=shapes,
        )

    # -- reads --------------------------------------------------------------------------------

    def count_runs(self) -> int:
        row = self.fetchone("SELECT COUNT(*) FROM probe_runs")
        return int(row[0]) if row else 0

    def spent_on(self, day: str, *, target: str | None = None) -> float:
        """USD spent by probes of ``target`` (None: every target) on a UTC day (``YYYY-MM-DD``)."""
        row = self.fetchone(
            "SELECT SUM(cost_usd) FROM cost_ledger WHERE day = ? AND (? IS NULL OR target = ?)",
            (day, target, target),
        )
        return float(row[0]) if row and row[0] is not None else 0.0

    def probe_states(
        self,
        kinds: Sequence[str] = PROBE_KINDS,
        *,
        target: str | None = None,
        since: float | None = None,
    ) -> dict[str, ProbeState]:
        """The latest primary-route run and success per probe kind (kinds never run omitted).

        With ``since``, ``last_ok`` is whether the latest run of each prompt size run since
        then passed (``non_streaming`` runs a large prompt every few cycles: the latest run
        alone says "passing" for four cycles in five while the large prompt always fails).
        """
        states: dict[str, ProbeState] = {}
        for kind in kinds:
            last = self.fetchone(
                "SELECT started_at, ok FROM probe_runs WHERE probe = ? AND route = 'primary' "
                "AND (? IS NULL OR target = ?) ORDER BY started_at DESC LIMIT 1",
                (kind, target, target),
            )
            if last is None:
                continue
            last_ok = bool(last[1])
            if since is not None and last_ok:
                last_ok = self._every_size_passed(kind, target=target, since=since)
            success = self.fetchone(
                "SELECT started_at FROM probe_runs WHERE probe = ? AND ok = 1 "
                "AND route = 'primary' AND (? IS NULL OR target = ?) "
                "ORDER BY started_at DESC LIMIT 1",
                (kind, target, target),
            )
            states[kind] = ProbeState(
                last_run_at=float(last[0]),
                last_success_at=None if success is None else float(success[0]),
                last_ok=last_ok,
            )
        return states

    def _every_size_passed(self, kind: str, *, target: str | None, since: float) -> bool:
        sizes = self.fetchall(
            "SELECT DISTINCT prompt_size FROM probe_runs WHERE probe = ? AND route = 'primary' "
            "AND (? IS NULL OR target = ?) AND started_at >= ?",
            (kind, target, target, since),
        )
        for (size,) in sizes:
            row = self.fetchone(
                "SELECT ok FROM probe_runs WHERE probe = ? AND route = 'primary' "
                "AND (prompt_size = ? OR (prompt_size IS NULL AND ? IS NULL)) "
                "AND (? IS NULL OR target = ?) AND started_at >= ? "
                "ORDER BY started_at DESC LIMIT 1",
                (kind, size, size, target, target, since),
            )
            if row is not None and not row[0]:
                return False
        return True

    def last_validation(self, *, target: str | None = None) -> ValidationRun | None:
        """The newest validation run of ``target`` (None: of any target)."""
        row = self.fetchone(
            "SELECT run_id, at, verdict, passed, failed, warned, skipped, report, target "
            "FROM validation_runs WHERE (? IS NULL OR target = ?) ORDER BY at DESC LIMIT 1",
            (target, target),
        )
        if row is None:
            return None
        return ValidationRun(
            run_id=row[0],
            at=float(row[1]),
            verdict=row[2],
            passed=row[3],
            failed=row[4],
            warned=row[5],
            skipped=row[6],
            report_json=row[7],
            target=row[8],
        )

    def drift_events(
        self, *, limit: int = 50, target: str | None = None, since: float | None = None
    ) -> list[DriftEvent]:
        """Drift events of ``target`` (None: every target), newest first."""
        rows = self.fetchall(
            "SELECT event_id, dedupe_key, at, kind, detail, probe, target FROM drift_events "
            "WHERE (? IS NULL OR target = ?) AND at >= ? ORDER BY at DESC, event_id LIMIT ?",
            (target, target, -1.0 if since is None else since, limit),
        )
        return [
            DriftEvent(
                event_id=r[0],
                key=r[1],
                at=float(r[2]),
                kind=r[3],
                detail=r[4],
                probe=r[5],
                target=r[6],
            )
            for r in rows
        ]

    def drift_keys(self) -> set[str]:
        return {row[0] for row in self.fetchall("SELECT dedupe_key FROM drift_events")}

    def latest_target(self) -> str | None:
        """The target of the newest probe run that has one (None: no such run)."""
        row = self.fetchone(
            "SELECT target FROM probe_runs WHERE target IS NOT NULL "
            "ORDER BY started_at DESC LIMIT 1"
        )
        return None if row is None else str(row[0])

    def other_targets(self, target: str, *, since: float = -1.0) -> TargetCounts:
        """Probe runs since ``since`` that do not count for ``target``, by why."""
        row = self.fetchone(
            "SELECT SUM(CASE WHEN target IS NULL THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN target LIKE 'simulated %' AND target <> ? THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN target IS NOT NULL AND target NOT LIKE 'simulated %' "
            "AND target <> ? THEN 1 ELSE 0 END) FROM probe_runs WHERE started_at >= ?",
            (target, target, since),
        )
        unknown, simulated, other = (int(value or 0) for value in (row or (0, 0, 0)))
        return TargetCounts(simulated=simulated, unknown=unknown, other=other)

    def shape_rows(
        self,
        *,
        since: float,
        route: str = "primary",
        limit: int = 10_000,
        target: str | None = None,
    ) -> list[dict[str, Any]]:
        """Recent runs' shape facts of ``target`` for drift detection (newest first, bounded)."""
        rows = self.fetchall(
            "SELECT r.status, r.stream, r.finish_reason, r.response_model, r.kind, s.paths "
            "FROM probe_runs r LEFT JOIN shapes s ON s.digest = r.fingerprint "
            "WHERE r.started_at >= ? AND r.route = ? AND r.status IS NOT NULL "
            "AND (? IS NULL OR r.target = ?) "
            "ORDER BY r.started_at DESC LIMIT ?",
            (since, route, target, target, limit),
        )
        return [
            {
                "status": int(r[0]),
                "stream": bool(r[1]),
                "finish_reason": r[2],
                "model": r[3],
                "kind": r[4],
                "paths": tuple(json.loads(r[5])) if r[5] else (),
            }
            for r in rows
        ]


def _file_identity(path: str) -> tuple[int, int]:
    info = os.stat(path)
    return (info.st_dev, info.st_ino)
