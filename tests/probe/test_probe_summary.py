"""``/api/summary``'s content: its fixed structure and every figure, from seeded store rows."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

import pytest
from probe_helpers import SIMULATED_KEY, make_run

from chatcontract.contract import load_preset
from chatcontract.failures import KINDS
from chatcontract.probe import SUMMARY_KEYS, DriftEvent, ProbeStore, ValidationRun, build_summary
from chatcontract.probe.summary import TargetSummary

NOW = dt.datetime(2026, 3, 2, 12, 30, tzinfo=dt.UTC).timestamp()
HOUR = 3600.0
TARGET = TargetSummary(base_url="http://127.0.0.1:1/v1", simulated=True, model="gpt-4.1-nano")
CONTRACT = dataclasses.replace(
    load_preset("cometapi"), reviewed_on=dt.date(2026, 1, 1), owner="platform-team"
)


def summary(store: ProbeStore, hours: int = 24) -> dict[str, Any]:
    return dict(build_summary(store, contract=CONTRACT, target=TARGET, now=NOW, hours=hours))


def assert_structure(data: dict[str, Any]) -> None:
    assert tuple(data) == SUMMARY_KEYS[""]
    for key in ("contract", "target", "totals", "failures_by_kind", "rates", "counts", "cost"):
        assert tuple(data[key]) == SUMMARY_KEYS[key], key
    for bucket in data["timeline"]:
        assert tuple(bucket) == SUMMARY_KEYS["timeline[]"]
        assert tuple(bucket["by_kind"]) == SUMMARY_KEYS["failures_by_kind"]
    for latency in data["latency_by_prompt_size"].values():
        assert tuple(latency) == SUMMARY_KEYS["latency_by_prompt_size.*"]
    for probe in data["probes"].values():
        assert tuple(probe) == SUMMARY_KEYS["probes.*"]
    for event in data["drift_events"]:
        assert tuple(event) == SUMMARY_KEYS["drift_events[]"]
    if data["last_validation"] is not None:
        assert tuple(data["last_validation"]) == SUMMARY_KEYS["last_validation"]


def test_the_structure_is_the_documented_one() -> None:
    assert SUMMARY_KEYS[""] == (
        "generated_at",
        "window_hours",
        "contract",
        "target",
        "totals",
        "failures_by_kind",
        "rates",
        "counts",
        "response_models",
        "latency_by_prompt_size",
        "timeline",
        "probes",
        "last_validation",
        "drift_events",
        "cost",
    )
    assert SUMMARY_KEYS["failures_by_kind"] == KINDS
    assert SUMMARY_KEYS["rates"] == (
        "schema_valid",
        "client_timeout",
        "fallback_activation",
        "retry_success",
        "usage_available",
    )
    assert SUMMARY_KEYS["counts"] == (
        "missing_required_paths",
        "parse_failures",
        "auth_failures",
        "rate_limited",
        "quota",
    )
    assert SUMMARY_KEYS["timeline[]"] == (
        "t",
        "success",
        "failure",
        "by_kind",
        "p50_ms",
        "p95_ms",
        "schema_valid_rate",
    )


def test_an_empty_store_gives_the_full_structure_with_nulls(store: ProbeStore) -> None:
    data = summary(store)
    assert_structure(data)
    assert data["totals"] == {"probes": 0, "success": 0, "failure": 0}
    assert data["failures_by_kind"] == dict.fromkeys(KINDS, 0)
    assert set(data["rates"].values()) == {None}
    assert data["timeline"] == [] and data["probes"] == {} and data["drift_events"] == []
    assert data["latency_by_prompt_size"] == {}
    assert data["last_validation"] is None
    assert data["generated_at"] == "2026-03-02T12:30:00Z"


def test_contract_review_dates(store: ProbeStore) -> None:
    contract = summary(store)["contract"]
    assert contract == {
        "name": CONTRACT.name,
        "provider": "cometapi",
        "owner": "platform-team",
        "reviewed_on": "2026-01-01",
        "review_due_on": "2026-04-01",
        "days_until_review": 30,
    }


@pytest.fixture
def seeded(store: ProbeStore) -> ProbeStore:
    """Two hours of history and one run outside the 24 h window."""
    base = NOW - 2 * HOUR  # 10:30
    runs = [
        make_run(base, total_ms=100.0),
        make_run(base + 60, total_ms=300.0, prompt_size="large"),
        make_run(
            base + 120,
            probe="streaming",
            prompt_size="short",
            total_ms=50.0,
            usage_expected=False,
            usage_present=False,
        ),
        # a parser failure: missing a required path, schema invalid, then retried and fell back
        make_run(
            base + 180,
            ok=False,
            kind="parser",
            category="contract",
            code="missing_field",
            schema_valid=False,
            execution_id="e1",
        ),
        make_run(
            base + 181,
            ok=False,
            kind="parser",
            category="contract",
            code="missing_field",
            schema_valid=False,
            attempt=2,
            execution_id="e1",
        ),
        make_run(
            base + 182,
            route="smaller-model",
            attempt=3,
            execution_id="e1",
            response_model="gpt-4o-mini-2024-07-18",
        ),
        # next hour: a client timeout then a successful retry; a rate limit; an auth failure
        make_run(
            base + HOUR,
            ok=False,
            kind="transport",
            category="timeout",
            code="read_timeout",
            status=None,
            schema_valid=None,
            usage_expected=False,
            usage_present=False,
            response_model=None,
            execution_id="e2",
        ),
        make_run(base + HOUR + 1, attempt=2, execution_id="e2", total_ms=200.0),
        make_run(
            base + HOUR + 60,
            ok=False,
            kind="http",
            category="rate_limit",
            code="rate_limited",
            status=429,
            schema_valid=None,
            usage_expected=False,
            usage_present=False,
            response_model=None,
        ),
        make_run(
            base + HOUR + 120,
            ok=False,
            kind="api_error",
            category="auth",
            code="invalid_key",
            status=401,
            schema_valid=None,
            usage_expected=False,
            usage_present=False,
            response_model=None,
        ),
        make_run(base + HOUR + 180, usage_present=False, total_ms=400.0),  # usage missing
        make_run(NOW - 30 * HOUR, ok=False, kind="budget", category="budget", code="x"),
    ]
    store.record_runs(runs)
    return store


def test_totals_failures_and_counts(seeded: ProbeStore) -> None:
    data = summary(seeded)
    assert_structure(data)
    # Probes, each counted once by its verdict: e1 (failed, retried, fell back) failed, e2
    # (timed out, retry passed) passed; the other counts are of calls.
    assert data["totals"] == {"probes": 8, "success": 5, "failure": 3}
    assert data["failures_by_kind"] == {
        "transport": 1,
        "http": 1,
        "api_error": 1,
        "parser": 2,
        "semantic": 0,
        "budget": 0,
    }
    assert data["counts"] == {
        "missing_required_paths": 2,
        "parse_failures": 2,
        "auth_failures": 1,
        "rate_limited": 1,
        "quota": 0,
    }


def test_probe_success_counts_each_probe_once_by_its_verdict(store: ProbeStore) -> None:
    """Every probe failing on the primary route reads 0 % even when retries and fallbacks answer.

    Counting calls, these 12 probes read 6 ok of 20 "probes": the fallback calls that
    answered (resilience working) and nothing that says the primary is broken.
    """
    base = NOW - HOUR
    runs = []
    for index in range(6):  # failed, retried, failed again, the fallback answered
        execution = f"fallback-{index}"
        at = base + index * 60
        runs += [
            make_run(at, ok=False, kind="http", category="server", execution_id=execution),
            make_run(
                at + 1,
                ok=False,
                kind="http",
                category="server",
                attempt=2,
                execution_id=execution,
            ),
            make_run(at + 2, route="smaller-model", attempt=3, execution_id=execution),
        ]
    for index in range(6):  # a deadline spent on the first attempt: straight to the fallback
        execution = f"deadline-{index}"
        at = base + 600 + index * 60
        runs += [
            make_run(at, ok=False, kind="transport", category="timeout", execution_id=execution),
            make_run(at + 1, route="smaller-model", attempt=2, execution_id=execution),
        ]
    store.record_runs(runs)
    data = summary(store)
    assert data["totals"] == {"probes": 12, "success": 0, "failure": 12}
    assert [(b["success"], b["failure"]) for b in data["timeline"]] == [(0, 12)]


def test_a_retry_whose_first_attempt_is_before_the_window_is_not_a_probe(
    store: ProbeStore,
) -> None:
    start = NOW - 24 * HOUR
    store.record_runs(
        [
            make_run(start - 1, ok=False, kind="http", category="server", execution_id="e"),
            make_run(start + 1, attempt=2, execution_id="e"),
            make_run(start + 60, execution_id="f"),
        ]
    )
    assert summary(store)["totals"] == {"probes": 1, "success": 1, "failure": 0}


def test_a_probe_whose_large_prompt_fails_is_not_passing(store: ProbeStore) -> None:
    # The large prompt runs every 5th cycle: the latest run alone (a short one) said passing.
    store.record_runs(
        [
            make_run(NOW - 30 * HOUR, prompt_size="large", ok=False, kind="http"),  # too old
            make_run(NOW - 20 * HOUR, probe="streaming", prompt_size=None),
            make_run(NOW - 300, prompt_size="short"),
            make_run(NOW - 299, prompt_size="large", ok=False, kind="http", category="upstream"),
            make_run(NOW - 240, prompt_size="short"),
            make_run(NOW - 60, probe="streaming", prompt_size=None),
        ]
    )
    probes = summary(store)["probes"]
    assert probes["non_streaming"]["last_ok"] is False
    assert probes["streaming"]["last_ok"] is True
    store.record_runs([make_run(NOW - 1, prompt_size="large")])
    assert summary(store)["probes"]["non_streaming"]["last_ok"] is True
    store.record_runs([make_run(NOW - 0.5, prompt_size="short", ok=False, kind="http")])
    assert summary(store)["probes"]["non_streaming"]["last_ok"] is False


def test_rates(seeded: ProbeStore) -> None:
    rates = summary(seeded)["rates"]
    assert rates["schema_valid"] == pytest.approx(
        6 / 8, abs=1e-4
    )  # 8 rows with a 2xx body, 2 invalid
    assert rates["client_timeout"] == pytest.approx(1 / 11, abs=1e-4)
    assert rates["fallback_activation"] == pytest.approx(
        1 / 8, abs=1e-4
    )  # 8 first attempts, 1 fallback
    assert rates["retry_success"] == pytest.approx(1 / 2, abs=1e-4)
    assert rates["usage_available"] == pytest.approx(6 / 7, abs=1e-4)


def test_response_models_are_counted(seeded: ProbeStore) -> None:
    assert summary(seeded)["response_models"] == {
        "gpt-4.1-nano-2025-04-14": 7,
        "gpt-4o-mini-2024-07-18": 1,
    }


def test_latency_by_prompt_size_uses_successful_primary_non_streaming_runs(
    seeded: ProbeStore,
) -> None:
    latency = summary(seeded)["latency_by_prompt_size"]
    assert latency == {
        "short": {"p50_ms": 200.0, "p95_ms": 400.0, "samples": 3},
        "large": {"p50_ms": 300.0, "p95_ms": 300.0, "samples": 1},
    }


def test_the_timeline_has_one_bucket_per_hour_oldest_first(seeded: ProbeStore) -> None:
    timeline = summary(seeded)["timeline"]
    assert [bucket["t"] for bucket in timeline] == ["2026-03-02T10:00:00Z", "2026-03-02T11:00:00Z"]
    first, second = timeline
    assert (first["success"], first["failure"]) == (3, 1)
    assert first["by_kind"]["parser"] == 2
    assert first["schema_valid_rate"] == pytest.approx(4 / 6, abs=1e-4)
    assert (first["p50_ms"], first["p95_ms"]) == (100.0, 100.0)
    assert (second["p50_ms"], second["p95_ms"]) == (200.0, 400.0)
    assert (second["success"], second["failure"]) == (2, 2)
    assert second["by_kind"] == {
        "transport": 1,
        "http": 1,
        "api_error": 1,
        "parser": 0,
        "semantic": 0,
        "budget": 0,
    }


def test_a_longer_window_includes_older_runs(seeded: ProbeStore) -> None:
    data = summary(seeded, hours=48)
    assert data["window_hours"] == 48
    assert data["totals"]["probes"] == 9
    assert data["failures_by_kind"]["budget"] == 1


def test_probes_validation_drift_and_cost(seeded: ProbeStore) -> None:
    seeded.record_validation(
        ValidationRun(
            run_id="v",
            at=NOW - HOUR,
            verdict="pass",
            passed=9,
            failed=0,
            warned=1,
            skipped=2,
            report_json="{}",
            target=SIMULATED_KEY,
        )
    )
    for i in range(55):
        seeded.record_drift(
            DriftEvent(
                at=NOW - 100 + i,
                kind="new_field",
                detail=f"d{i}",
                key=f"k{i}",
                target=SIMULATED_KEY,
            )
        )
    data = summary(seeded)
    assert_structure(data)
    assert data["probes"]["streaming"] == {
        "last_run_at": "2026-03-02T10:32:00Z",
        "last_success_at": "2026-03-02T10:32:00Z",
        "last_ok": True,
    }
    assert data["last_validation"] == {
        "at": "2026-03-02T11:30:00Z",
        "verdict": "pass",
        "passed": 9,
        "failed": 0,
        "warned": 1,
        "skipped": 2,
    }
    assert len(data["drift_events"]) == 50
    assert data["drift_events"][0]["detail"] == "d54"
    assert data["cost"] == {"spent_today_usd": 0.0, "daily_cap_usd": 0.5, "paused": False}


def test_cost_says_paused_once_the_cap_is_reached(store: ProbeStore) -> None:
    store.record_run(make_run(NOW - 60, cost_usd=0.6))
    assert summary(store)["cost"] == {"spent_today_usd": 0.6, "daily_cap_usd": 0.5, "paused": True}


@pytest.mark.parametrize("hours", [0, -1, 10_000], ids=["zero", "negative", "too-many"])
def test_a_bad_window_is_refused(store: ProbeStore, hours: int) -> None:
    with pytest.raises(ValueError, match="hours"):
        summary(store, hours=hours)
