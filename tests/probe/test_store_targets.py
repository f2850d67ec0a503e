"""The probe store: rows per target, the version 1 migration, and write health (disk full)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from probe_helpers import PRESET_KEY, SIMULATED_KEY, make_run

from chatcontract.errors import ConfigError
from chatcontract.probe import DriftEvent, ProbeStore, ValidationRun
from chatcontract.probe.store import SCHEMA_VERSION, write_error_reason

NOW = 1_800_000_000.0


def fill_the_disk(store: ProbeStore) -> None:
    """A real SQLITE_FULL: the database may not grow past its current size."""
    conn = store._connection()  # the store has no public knob for this, on purpose
    pages = conn.execute("PRAGMA page_count").fetchone()[0]
    conn.execute(f"PRAGMA max_page_count = {pages}")


def free_the_disk(store: ProbeStore) -> None:
    store._connection().execute("PRAGMA max_page_count = 1073741823")


def write_until_full(store: ProbeStore) -> sqlite3.Error:
    for i in range(500):
        try:
            store.record_run(
                make_run(
                    NOW + i,
                    shape_paths=tuple(f"f{i}_{j}:string" for j in range(40)),
                    fingerprint=f"{i:016x}",
                )
            )
        except sqlite3.Error as exc:
            return exc
    raise AssertionError("the database never filled up")


def test_a_full_disk_is_remembered_then_cleared_when_space_returns(store: ProbeStore) -> None:
    store.record_run(make_run(NOW))
    assert store.health().writable
    fill_the_disk(store)
    error = write_until_full(store)
    assert "database or disk is full" in str(error)
    health = store.health()
    assert (health.writable, health.reason) == (False, "disk_full")
    assert health.error == "database or disk is full"
    assert health.since is not None
    assert store.ping()  # reads still work: the page and /metrics keep serving

    free_the_disk(store)
    store.record_run(make_run(NOW + 1000))
    health = store.health()
    assert health.writable and health.error is None
    assert health.failed_writes == {"disk_full": 1}


def test_failed_writes_keep_the_first_failure_time(store: ProbeStore) -> None:
    fill_the_disk(store)
    write_until_full(store)
    first = store.health()
    too_big = make_run(NOW, shape_paths=tuple(f"g{j}:string" for j in range(400)), fingerprint="f")
    with pytest.raises(sqlite3.OperationalError):
        store.record_run(too_big)
    again = store.health()
    assert again.since == first.since
    assert again.failed_writes["disk_full"] >= 2


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        ("database or disk is full", "disk_full"),
        ("attempt to write a readonly database", "read_only"),
        ("database is locked", "locked"),
        ("disk I/O error", "io_error"),
        ("something else", "other"),
    ],
    ids=["full", "readonly", "locked", "io", "other"],
)
def test_write_errors_have_a_bounded_reason(message: str, reason: str) -> None:
    assert write_error_reason(sqlite3.OperationalError(message)) == reason


def test_reads_for_a_target_see_only_its_rows(store: ProbeStore) -> None:
    store.record_run(make_run(NOW, target=PRESET_KEY, cost_usd=0.5))
    store.record_run(make_run(NOW + 1, ok=False, target=SIMULATED_KEY, cost_usd=2.0))
    day = "2027-01-15"
    assert store.spent_on(day, target=PRESET_KEY) == pytest.approx(0.5)
    assert store.spent_on(day, target=SIMULATED_KEY) == pytest.approx(2.0)
    assert store.probe_states(target=PRESET_KEY)["non_streaming"].last_ok is True
    assert store.probe_states(target=SIMULATED_KEY)["non_streaming"].last_ok is False
    assert len(store.shape_rows(since=0, target=PRESET_KEY)) == 1
    counts = store.other_targets(PRESET_KEY)
    assert (counts.simulated, counts.other, counts.unknown) == (1, 0, 0)
    assert store.latest_target() == SIMULATED_KEY


def _make_version_1(path: Path) -> None:
    """A store as chatcontract wrote it before targets were recorded (schema version 1)."""
    with ProbeStore.open(path) as store:
        store.record_run(make_run(NOW, target=None, cost_usd=1.0))
        store.record_validation(
            ValidationRun(
                run_id="v1",
                at=NOW,
                verdict="pass",
                passed=1,
                failed=0,
                warned=0,
                skipped=0,
                report_json="{}",
            )
        )
        store.record_drift(DriftEvent(at=NOW, kind="new_field", detail="d", key="k"))
    conn = sqlite3.connect(path)
    for index in (
        "probe_runs_target_started",
        "validation_runs_target_at",
        "drift_events_target_at",
        "cost_ledger_target_day",
    ):
        conn.execute(f"DROP INDEX {index}")
    for table in ("probe_runs", "validation_runs", "drift_events", "cost_ledger"):
        conn.execute(f"ALTER TABLE {table} DROP COLUMN target")
    conn.execute("UPDATE schema_version SET version = 1")
    conn.commit()
    conn.close()


def test_a_version_1_store_is_migrated_and_its_rows_match_no_target(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _make_version_1(path)
    with ProbeStore.open(path) as store:
        assert store.schema_version() == SCHEMA_VERSION
        assert store.count_runs() == 1
        for key in (PRESET_KEY, SIMULATED_KEY):
            assert store.probe_states(target=key) == {}
            assert store.spent_on("2027-01-15", target=key) == 0.0
            assert store.last_validation(target=key) is None
            assert store.drift_events(target=key) == []
        assert store.other_targets(PRESET_KEY).unknown == 1
        store.record_run(make_run(NOW + 1, target=PRESET_KEY))  # new rows carry their target
        assert store.probe_states(target=PRESET_KEY)["non_streaming"].last_ok is True
    with ProbeStore.open(path) as reopened:  # a second open does not migrate again
        assert reopened.schema_version() == SCHEMA_VERSION


def test_a_store_that_cannot_be_written_at_open_says_to_free_space(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(_self: ProbeStore, _synchronous: str) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(ProbeStore, "_initialise", full)
    with pytest.raises(
        ConfigError,
        match=r"cannot write the probe store \(database or disk is full\); free disk space",
    ):
        ProbeStore.open(tmp_path / "p.db")
