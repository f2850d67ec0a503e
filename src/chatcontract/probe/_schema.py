"""The probe store's SQL: the tables, the indexes and how a ``ProbeRun`` becomes a row.

Version 2 added ``target`` to the tables of one target's rows (:data:`_TARGET_TABLES`);
its indexes are created after the migration.
"""

from __future__ import annotations

from typing import Any

from .records import ProbeRun

# Tables holding rows of one target (``target`` added by the version 2 migration).
_TARGET_TABLES = ("probe_runs", "validation_runs", "drift_events", "cost_ledger")

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS schema_version (
        version INTEGER NOT NULL PRIMARY KEY,
        applied_at DOUBLE PRECISION NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS shapes (
        digest TEXT NOT NULL PRIMARY KEY,
        paths TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS probe_runs (
        run_id TEXT NOT NULL PRIMARY KEY,
        execution_id TEXT NOT NULL,
        started_at DOUBLE PRECISION NOT NULL,
        hour_bucket BIGINT NOT NULL,
        probe TEXT NOT NULL,
        route TEXT NOT NULL,
        attempt INTEGER NOT NULL,
        ok INTEGER NOT NULL,
        kind TEXT,
        category TEXT,
        code TEXT,
        status INTEGER,
        retry_decision TEXT,
        total_ms DOUBLE PRECISION,
        ttfb_ms DOUBLE PRECISION,
        ttft_ms DOUBLE PRECISION,
        budget_ms DOUBLE PRECISION,
        prompt_size TEXT,
        requested_model TEXT,
        response_model TEXT,
        finish_reason TEXT,
        prompt_tokens INTEGER,
        completion_tokens INTEGER,
        total_tokens INTEGER,
        usage_present INTEGER NOT NULL,
        usage_expected INTEGER NOT NULL,
        cost_usd DOUBLE PRECISION NOT NULL,
        cost_estimated INTEGER NOT NULL,
        schema_valid INTEGER,
        stream INTEGER NOT NULL,
        stream_verdict TEXT,
        fingerprint TEXT,
        request_id TEXT,
        target TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS probe_runs_started_at ON probe_runs (started_at)",
    "CREATE INDEX IF NOT EXISTS probe_runs_probe_started ON probe_runs (probe, started_at)",
    "CREATE INDEX IF NOT EXISTS probe_runs_probe_ok_started ON probe_runs (probe, ok, started_at)",
    "CREATE INDEX IF NOT EXISTS probe_runs_fingerprint ON probe_runs (fingerprint)",
    """CREATE TABLE IF NOT EXISTS validation_runs (
        run_id TEXT NOT NULL PRIMARY KEY,
        at DOUBLE PRECISION NOT NULL,
        verdict TEXT NOT NULL,
        passed INTEGER NOT NULL,
        failed INTEGER NOT NULL,
        warned INTEGER NOT NULL,
        skipped INTEGER NOT NULL,
        report TEXT NOT NULL,
        target TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS validation_runs_at ON validation_runs (at)",
    """CREATE TABLE IF NOT EXISTS drift_events (
        event_id TEXT NOT NULL PRIMARY KEY,
        dedupe_key TEXT NOT NULL UNIQUE,
        at DOUBLE PRECISION NOT NULL,
        kind TEXT NOT NULL,
        detail TEXT NOT NULL,
        probe TEXT,
        target TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS drift_events_at ON drift_events (at)",
    """CREATE TABLE IF NOT EXISTS cost_ledger (
        entry_id TEXT NOT NULL PRIMARY KEY,
        run_id TEXT NOT NULL,
        at DOUBLE PRECISION NOT NULL,
        day TEXT NOT NULL,
        probe TEXT NOT NULL,
        route TEXT NOT NULL,
        model TEXT,
        cost_usd DOUBLE PRECISION NOT NULL,
        estimated INTEGER NOT NULL,
        target TEXT
    )""",
    "CREATE INDEX IF NOT EXISTS cost_ledger_day ON cost_ledger (day)",
    "CREATE INDEX IF NOT EXISTS cost_ledger_at ON cost_ledger (at)",
)

# Created after the migration (a version 1 table has no ``target`` until then).
_TARGET_INDEXES = (
    "CREATE INDEX IF NOT EXISTS probe_runs_target_started ON probe_runs (target, started_at)",
    "CREATE INDEX IF NOT EXISTS validation_runs_target_at ON validation_runs (target, at)",
    "CREATE INDEX IF NOT EXISTS drift_events_target_at ON drift_events (target, at)",
    "CREATE INDEX IF NOT EXISTS cost_ledger_target_day ON cost_ledger (target, day)",
)

_RUN_COLUMNS: tuple[str, ...] = (
    "run_id",
    "execution_id",
    "started_at",
    "hour_bucket",
    "probe",
    "route",
    "attempt",
    "ok",
    "kind",
    "category",
    "code",
    "status",
    "retry_decision",
    "total_ms",
    "ttfb_ms",
    "ttft_ms",
    "budget_ms",
    "prompt_size",
    "requested_model",
    "response_model",
    "finish_reason",
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "usage_present",
    "usage_expected",
    "cost_usd",
    "cost_estimated",
    "schema_valid",
    "stream",
    "stream_verdict",
    "fingerprint",
    "request_id",
    "target",
)
_PLACEHOLDERS = ", ".join("?" for _ in _RUN_COLUMNS)
# Built from the column constants above, never from input.
_INSERT_RUN = f"INSERT INTO probe_runs ({', '.join(_RUN_COLUMNS)}) VALUES ({_PLACEHOLDERS})"  # noqa: S608
_INSERT_SHAPE = "INSERT INTO shapes (digest, paths) VALUES (?, ?) ON CONFLICT (digest) DO NOTHING"
_INSERT_COST = (
    "INSERT INTO cost_ledger (entry_id, run_id, at, day, probe, route, model, cost_usd, "
    "estimated, target) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


def _flag(value: bool | None) -> int | None:
    return None if value is None else int(value)


def _run_values(run: ProbeRun) -> tuple[Any, ...]:
    return (
        run.run_id,
        run.execution_id,
        run.started_at,
        run.hour_bucket,
        run.probe,
        run.route,
        run.attempt,
        int(run.ok),
        run.kind,
        run.category,
        run.code,
        run.status,
        run.retry_decision,
        run.total_ms,
        run.ttfb_ms,
        run.ttft_ms,
        run.budget_ms,
        run.prompt_size,
        run.requested_model,
        run.response_model,
        run.finish_reason,
        run.prompt_tokens,
        run.completion_tokens,
        run.total_tokens,
        int(run.usage_present),
        int(run.usage_expected),
        run.cost_usd,
        int(run.cost_estimated),
        _flag(run.schema_valid),
        int(run.stream),
        run.stream_verdict,
        run.fingerprint,
        run.request_id,
        run.target,
    )
