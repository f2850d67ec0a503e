"""The probe store: schema, restarts, a kill -9, retention, deduplication, bad files."""

from __future__ import annotations

import json
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from probe_helpers import make_run

from chatcontract.errors import ConfigError
from chatcontract.probe import SCHEMA_VERSION, DriftEvent, ProbeStore, ValidationRun


def test_open_creates_the_directory_the_schema_and_its_version(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "probe.db"
    with ProbeStore.open(path) as store:
        assert store.schema_version() == SCHEMA_VERSION
        assert store.ping()
    assert path.is_file()


def test_rows_survive_close_and_reopen(tmp_path: Path) -> None:
    path = tmp_path / "probe.db"
    runs = [make_run(1_000.0 + i, cost_usd=0.001) for i in range(5)]
    with ProbeStore.open(path) as store:
        for run in runs:
            store.record_run(run)
    with ProbeStore.open(path) as store:
        assert store.count_runs() == 5
        ids = {row[0] for row in store.fetchall("SELECT run_id FROM probe_runs")}
        assert ids == {run.run_id for run in runs}
        assert store.spent_on("1970-01-01") == pytest.approx(0.005)
        assert store.schema_version() == SCHEMA_VERSION


def test_shape_paths_are_stored_once_per_fingerprint(store: ProbeStore) -> None:
    for i in range(3):
        store.record_run(make_run(100.0 + i))
    rows = store.fetchall("SELECT digest, paths FROM shapes")
    assert rows == [("00000000000000aa", json.dumps(["$:object", "id:string"]))]


def test_the_journal_is_wal(store: ProbeStore) -> None:
    assert store.fetchone("PRAGMA journal_mode") == ("wal",)


_WRITER = """
import sys, uuid
from chatcontract.probe import ProbeRun, ProbeStore
store = ProbeStore.open(sys.argv[1])
for i in range(100_000):
    run_id = uuid.uuid4().hex
    store.record_run(ProbeRun(run_id=run_id, execution_id=run_id, started_at=1000.0 + i,
                              probe="non_streaming", route="primary", attempt=1, ok=True))
    print(run_id, flush=True)
"""


def test_a_kill_9_loses_no_committed_row(tmp_path: Path) -> None:
    path = tmp_path / "probe.db"
    child = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(path)], stdout=subprocess.PIPE, text=True
    )
    committed: list[str] = []
    deadline = time.monotonic() + 20
    try:
        assert child.stdout is not None
        while len(committed) < 40 and time.monotonic() < deadline:
            line = child.stdout.readline()
            if not line:
                break
            committed.append(line.strip())
        child.send_signal(signal.SIGKILL)
    finally:
        child.wait(timeout=10)
        if child.stdout is not None:
            committed += [line.strip() for line in child.stdout.read().splitlines() if line.strip()]
            child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    assert len(committed) >= 40
    with ProbeStore.open(path) as store:
        stored = {row[0] for row in store.fetchall("SELECT run_id FROM probe_runs")}
    assert set(committed) <= stored


def test_prune_removes_old_history_and_keeps_the_last_validation(store: ProbeStore) -> None:
    day = 86_400.0
    now = 100 * day
    old = [make_run(now - 40 * day, cost_usd=0.01, fingerprint="0000000000000old")]
    recent = [make_run(now - 1 * day, cost_usd=0.01) for _ in range(2)]
    for run in old + recent:
        store.record_run(run)
    for at, run_id in ((now - 50 * day, "v-old"), (now - 45 * day, "v-last")):
        store.record_validation(
            ValidationRun(
                run_id=run_id,
                at=at,
                verdict="pass",
                passed=1,
                failed=0,
                warned=0,
                skipped=0,
                report_json="{}",
            )
        )
    store.record_drift(DriftEvent(at=now - 40 * day, kind="new_field", detail="x", key="k-old"))
    store.record_drift(DriftEvent(at=now - day, kind="new_field", detail="y", key="k-new"))

    result = store.prune(before=now - 30 * day)

    assert (result.probe_runs, result.cost_ledger, result.validation_runs) == (1, 1, 1)
    assert (result.drift_events, result.shapes) == (1, 1)
    assert store.count_runs() == 2
    last = store.last_validation()
    assert last is not None and last.run_id == "v-last"
    assert [event.key for event in store.drift_events()] == ["k-new"]
    assert store.fetchall("SELECT digest FROM shapes") == [("00000000000000aa",)]


def test_a_drift_difference_is_stored_once(store: ProbeStore) -> None:
    first = store.record_drift(DriftEvent(at=1.0, kind="new_field", detail="d", key="same"))
    second = store.record_drift(DriftEvent(at=2.0, kind="new_field", detail="d", key="same"))
    assert (first, second) == (True, False)
    assert len(store.drift_events()) == 1


def test_drift_events_come_newest_first_and_bounded(store: ProbeStore) -> None:
    for i in range(60):
        store.record_drift(DriftEvent(at=float(i), kind="new_model", detail=f"m{i}", key=f"k{i}"))
    events = store.drift_events(limit=50)
    assert len(events) == 50
    assert events[0].detail == "m59"
    assert [e.at for e in events] == sorted((e.at for e in events), reverse=True)


def test_a_validation_run_is_stored_once(store: ProbeStore) -> None:
    run = ValidationRun(
        run_id="abc",
        at=5.0,
        verdict="fail",
        passed=3,
        failed=1,
        warned=0,
        skipped=2,
        report_json="{}",
    )
    assert store.record_validation(run)
    assert not store.record_validation(run)
    assert store.last_validation() == run


def test_probe_states_follow_the_primary_route(store: ProbeStore) -> None:
    store.record_run(make_run(10.0, probe="streaming", ok=True))
    store.record_run(make_run(20.0, probe="streaming", ok=False))
    store.record_run(make_run(30.0, probe="streaming", ok=True, route="smaller-model"))
    states = store.probe_states()
    assert set(states) == {"streaming"}
    state = states["streaming"]
    assert (state.last_run_at, state.last_success_at, state.last_ok) == (20.0, 10.0, False)


def test_a_file_that_is_not_a_database_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "notes.db"
    path.write_bytes(b"this is not sqlite, just some text " * 100)
    with pytest.raises(ConfigError, match="not a usable chatcontract probe store"):
        ProbeStore.open(path)


def test_a_directory_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is a directory"):
        ProbeStore.open(tmp_path)


def test_a_store_from_a_newer_chatcontract_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "future.db"
    ProbeStore.open(path).close()
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("INSERT INTO schema_version (version, applied_at) VALUES (99, 0)")
    conn.close()
    with pytest.raises(ConfigError, match="newer chatcontract"):
        ProbeStore.open(path)


def test_a_closed_store_does_not_answer(tmp_path: Path) -> None:
    store = ProbeStore.open(tmp_path / "probe.db")
    store.close()
    assert not store.ping()
    assert store.closed


def test_the_schema_uses_portable_types_only(store: ProbeStore) -> None:
    portable = {"TEXT", "INTEGER", "BIGINT", "DOUBLE PRECISION"}
    tables = [row[0] for row in store.fetchall("SELECT name FROM sqlite_master WHERE type='table'")]
    assert {
        "probe_runs",
        "shapes",
        "validation_runs",
        "drift_events",
        "cost_ledger",
        "schema_version",
    } <= set(tables)
    for table in tables:
        for column in store.fetchall(f"PRAGMA table_info({table})"):
            assert column[2] in portable, (table, column[1], column[2])


def test_another_programs_database_is_refused_and_left_unchanged(tmp_path: Path) -> None:
    # A wrong --db naming an application's SQLite file: nothing may be written to it.
    path = tmp_path / "app.db"
    conn = sqlite3.connect(path)
    with conn:
        conn.execute("CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("INSERT INTO users VALUES (1, 'ada')")
    conn.close()
    before = path.read_bytes()
    with pytest.raises(ConfigError, match=r"another program's SQLite database \(tables: users\)"):
        ProbeStore.open(path)
    assert path.read_bytes() == before  # no probe tables, journal mode not switched to WAL
    assert not (tmp_path / "app.db-wal").exists()


def test_an_empty_file_becomes_a_probe_store(tmp_path: Path) -> None:
    path = tmp_path / "empty.db"
    path.touch()
    with ProbeStore.open(path) as store:
        assert store.schema_version() == SCHEMA_VERSION


def test_a_store_whose_directory_was_deleted_while_open_records_to_a_new_file(
    tmp_path: Path,
) -> None:
    # A cleanup removed .chatcontract/ under a running probe: its writes went to the deleted
    # inode, /healthz said ok, and every run was lost at exit.
    folder = tmp_path / ".chatcontract"
    with ProbeStore.open(folder / "probe.db") as store:
        store.record_run(make_run(10.0))
        shutil.rmtree(folder)
        store.record_run(make_run(20.0))
        assert store.health().writable
        assert store.count_runs() == 1  # the new file holds what came after
    with ProbeStore.open(folder / "probe.db") as reopened:
        assert [row[0] for row in reopened.fetchall("SELECT started_at FROM probe_runs")] == [20.0]


def test_a_store_file_that_cannot_be_created_again_fails_the_write_and_says_why(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "state"
    with ProbeStore.open(folder / "probe.db") as store:
        shutil.rmtree(folder)
        folder.write_text("a file where the directory was")
        with pytest.raises(sqlite3.OperationalError, match="deleted and cannot be created again"):
            store.record_run(make_run(20.0))
        health = store.health()
        assert not health.writable
        assert health.error is not None and "was deleted" in health.error


def test_an_empty_path_is_named_as_such(tmp_path: Path) -> None:
    # --db '' said " is a directory; pass --db with a file path" (the current directory).
    with pytest.raises(ConfigError, match="the probe store path is empty; pass --db FILE"):
        ProbeStore.open("")


def test_an_in_memory_store_opens_and_records() -> None:
    with ProbeStore.open(":memory:") as store:
        store.record_run(make_run(10.0))
        assert store.count_runs() == 1
