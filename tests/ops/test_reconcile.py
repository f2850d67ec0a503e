"""Reconciliation on generated ledgers and exports with known discrepancies: every number."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from chatcontract.ops.reconcile import reconcile_files, render_text
from reconcile_data import at, bucket, cost, page, record, write_csv, write_ledger

HEADER = ["request_id", "time", "model", "prompt_tokens", "completion_tokens"]


def side(requests: int, prompt: int, completion: int, usd: float | None = None) -> dict:
    usd = cost(prompt, completion) if usd is None else usd
    return {
        "requests": requests,
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "cost_usd": pytest.approx(usd, abs=1e-12),
    }


def diff(value: float, export: float) -> dict:
    pct = 0.0 if export == 0 and value == 0 else round(100 * value / export, 4)
    return {"diff": pytest.approx(value, abs=1e-12), "diff_pct": pct}


def diffs(ledger: dict, export: dict) -> dict:
    names = ("requests", "prompt_tokens", "completion_tokens", "total_tokens")
    result = {name: diff(ledger[name] - export[name], export[name]) for name in names}
    mine, theirs = ledger["cost_usd"].expected, export["cost_usd"].expected
    result["cost_usd"] = diff(mine - theirs, theirs)
    return result


# -- per request ---------------------------------------------------------------------------------


@pytest.fixture
def per_request(tmp_path: Path) -> tuple[Path, Path]:
    ledger = write_ledger(
        tmp_path / "usage.jsonl",
        [
            record(at("13:00"), "r1", prompt=100, completion=20),
            record(at("13:05"), "r2", prompt=200, completion=40),  # export says 50: drift
            record(at("13:10"), "r3", prompt=300, completion=60),  # missing from the export
            record(at("13:15"), "r4", prompt=None, completion=None),  # usage missing on our side
            record(at("13:20"), "r5", prompt=None, completion=None, status=503, kind="api_error"),
            record(at("13:25"), "dup", prompt=50, completion=10),
            record(at("13:26"), "dup", prompt=50, completion=10),  # same id again
            record(at("09:00", "2026-12-07"), "later", prompt=1, completion=1),  # after the export
        ],
    )
    export = write_csv(
        tmp_path / "export.csv",
        HEADER,
        [
            ["r1", "2026-12-05T13:00:01Z", "gpt-4o-mini", 100, 20],
            ["r2", "2026-12-05T13:05:01Z", "gpt-4o-mini", 200, 50],
            ["r4", "2026-12-05T13:15:01Z", "gpt-4o-mini", 150, 30],
            ["dup", "2026-12-05T13:25:01Z", "gpt-4o-mini", 50, 10],
            ["r8", "2026-12-05T13:40:01Z", "gpt-4o-mini", 400, 80],  # only in the export
            ["r1", "2026-12-05T13:00:01Z", "gpt-4o-mini", 100, 20],  # listed twice
        ],
    )
    return ledger, export


def test_per_request_report_counts_every_discrepancy(per_request: tuple[Path, Path]) -> None:
    ledger_path, export_path = per_request
    data = reconcile_files([ledger_path], export_path).to_dict()
    assert data["period"] == {"start": "2026-12-05T00:00:00Z", "end": "2026-12-06T00:00:00Z"}
    assert data["ledger"] == {
        "files": [str(ledger_path)],
        "records": 8,
        "outside_period": 1,
        "not_billable": 1,
        "skipped_lines": [],
    }
    assert data["export"] == {
        "file": str(export_path),
        "format": "csv",
        "mapping": "columns",
        "rows": 6,
        "ignored_columns": [],
    }
    assert data["matched"] == {"calls": 4, "buckets": 0}
    assert data["only_in_ledger"] == {
        "calls": 1,
        "sample": [{"request_id": "r3", "time": "2026-12-05T13:10:00Z", "model": "gpt-4o-mini"}],
    }
    assert data["only_in_export"] == {
        "calls": 1,
        "rows_without_request_id": 0,
        "buckets": 0,
        "duplicates_checked": True,
        "sample": [
            {"request_id": "r8", "time": "2026-12-05T13:40:01Z", "model": "gpt-4o-mini",
             "line": 6, "prompt_tokens": 400, "completion_tokens": 80},
        ],
    }  # fmt: skip
    assert data["duplicates"] == {
        "ledger": [{"id": "dup", "count": 2}],
        "export": [{"id": "r1", "count": 2}],
        "ledger_ids": 1,
        "export_ids": 1,
    }
    assert data["usage_missing"] == {
        "calls": 1,
        "sample": [
            {"request_id": "r4", "time": "2026-12-05T13:15:00Z", "model": "gpt-4o-mini",
             "status": 200, "export_prompt_tokens": 150, "export_completion_tokens": 30},
        ],
    }  # fmt: skip
    assert data["token_mismatches"] == {
        "calls": 1,
        "sample": [
            {"request_id": "r2", "time": "2026-12-05T13:05:00Z", "model": "gpt-4o-mini",
             "completion_tokens": {"ledger": 40, "export": 50}},
        ],
    }  # fmt: skip
    # ledger: r1, r2, r3, r4 (no usage), dup once; export: r1 once, r2, r4, dup, r8
    mine, theirs = side(5, 650, 130), side(5, 900, 190)
    expected_row = {
        "day": "2026-12-05",
        "model": "gpt-4o-mini",
        "ledger": mine,
        "export": theirs,
        "diff": diffs(mine, theirs),
        "usage_missing": 1,
        "only_in_ledger": 1,
        "only_in_export": 1,
        "exceeds": ["prompt_tokens", "completion_tokens", "total_tokens", "cost_usd"],
    }
    assert data["by_model_day"] == [expected_row]
    total = {k: v for k, v in expected_row.items() if k not in ("day", "model")}
    assert data["totals"] == total
    assert [(e["day"], e["field"], e["diff"]) for e in data["exceeded"]] == [
        ("2026-12-05", "prompt_tokens", -250),
        ("2026-12-05", "completion_tokens", -60),
        ("2026-12-05", "total_tokens", -310),
        ("2026-12-05", "cost_usd", pytest.approx(cost(650, 130) - cost(900, 190))),
        (None, "prompt_tokens", -250),
        (None, "completion_tokens", -60),
        (None, "total_tokens", -310),
        (None, "cost_usd", pytest.approx(cost(650, 130) - cost(900, 190))),
    ]
    assert reconcile_files([ledger_path], export_path).exit_code == 1


def test_a_small_drift_within_tolerance_passes(tmp_path: Path) -> None:
    ledger = write_ledger(
        tmp_path / "usage.jsonl",
        [record(at(f"13:{m:02d}"), f"r{m}", prompt=1000, completion=100) for m in range(10)],
    )
    rows = [[f"r{m}", f"2026-12-05T13:{m:02d}:00Z", "gpt-4o-mini", 1000, 100] for m in range(10)]
    rows[0][3] = 1150  # +150 prompt tokens on 10000: 1.5 %
    export = write_csv(tmp_path / "export.csv", HEADER, rows)
    report = reconcile_files([ledger], export)
    [row] = report.to_dict()["by_model_day"]
    assert row["diff"]["prompt_tokens"] == {"diff": -150, "diff_pct": round(-150 / 10150 * 100, 4)}
    assert report.exit_code == 0
    assert reconcile_files([ledger], export, tolerance=0.01).exit_code == 1


def test_the_same_files_reconciled_twice_give_the_same_report(
    per_request: tuple[Path, Path],
) -> None:
    first = reconcile_files([per_request[0]], per_request[1]).to_dict()
    second = reconcile_files([per_request[0]], per_request[1]).to_dict()
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)


def test_the_text_report_names_each_finding(per_request: tuple[Path, Path]) -> None:
    text = render_text(reconcile_files([per_request[0]], per_request[1]).to_dict())
    for line in (
        "matched: 4 calls, 0 buckets",
        "only in the ledger: 1 calls",
        "  r3 2026-12-05T13:10:00Z gpt-4o-mini",
        "only in the export: 1 calls, 0 buckets (0 rows without a request id)",
        "duplicated id in the ledger: dup x2 (counted once)",
        "duplicated id in the export: r1 x2 (counted once)",
        "usage missing on our side: 1 calls",
        "  r4 2026-12-05T13:15:00Z gpt-4o-mini export: 150+30 tokens",
        "  r2: completion_tokens 40 vs 50",
        "2026-12-05 gpt-4o-mini  EXCEEDS",
        "FAIL: 8 difference(s) above 2%",
    ):
        assert line in text.splitlines(), line
    assert "  prompt_tokens                 650            900  -250 (-27.7778%)" in text


def test_rotated_ledger_files_are_read_with_the_active_one(tmp_path: Path) -> None:
    write_ledger(tmp_path / "usage.2026-12-05.1.jsonl", [record(at("13:00"), "r1")])
    active = write_ledger(tmp_path / "usage.jsonl", [record(at("14:00"), "r2")])
    export = write_csv(
        tmp_path / "export.csv",
        HEADER,
        [["r1", "2026-12-05T13:00:00Z", "gpt-4o-mini", 100, 20],
         ["r2", "2026-12-05T14:00:00Z", "gpt-4o-mini", 100, 20]],
    )  # fmt: skip
    data = reconcile_files([active], export).to_dict()
    assert data["matched"]["calls"] == 2
    assert data["ledger"]["files"] == [str(tmp_path / "usage.2026-12-05.1.jsonl"), str(active)]
    assert data["exceeded"] == []


# -- per bucket (OpenAI usage API) ---------------------------------------------------------------

SNAPSHOT = "gpt-4o-mini-2024-07-18"
# (provider time, prompt, completion): three calls in the 13:00 hour, two in the 14:00 hour.
CALLS = [("13:10", 100, 10), ("13:30", 200, 20), ("13:59", 300, 30), ("14:00:30", 400, 40),
         ("14:20", 500, 50)]  # fmt: skip


def openai_export(tmp_path: Path, *, lines: bool) -> Path:
    first = bucket(at("13:00"), at("14:00"), (SNAPSHOT, 600, 60, 3))
    second = bucket(at("14:00"), at("15:00"), (SNAPSHOT, 900, 90, 2))
    empty = bucket(at("15:00"), at("16:00"))
    path = tmp_path / "usage.json"
    if lines:  # one page per line, as `jq -c` writes paginated answers
        path.write_text(json.dumps(page(first, next_page="p2")) + "\n" +
                        json.dumps(page(second, empty)) + "\n")  # fmt: skip
    else:
        path.write_text(json.dumps(page(first, second, empty), indent=2))
    return path


def skewed_ledger(tmp_path: Path, skew_s: float) -> Path:
    return write_ledger(
        tmp_path / "usage.jsonl",
        [
            record(at(clock) + skew_s, f"r{n}", prompt=p, completion=c, answered=SNAPSHOT)
            for n, (clock, p, c) in enumerate(CALLS)
        ],
    )


@pytest.mark.parametrize(
    "skew_s", [120.0, -120.0, 0.0], ids=["ledger-2m-ahead", "ledger-2m-behind", "in-sync"]
)
@pytest.mark.parametrize("lines", [True, False], ids=["page-per-line", "one-document"])
def test_clock_skew_does_not_break_bucket_matching(
    tmp_path: Path, skew_s: float, lines: bool
) -> None:
    report = reconcile_files(
        [skewed_ledger(tmp_path, skew_s)], openai_export(tmp_path, lines=lines)
    )
    data = report.to_dict()
    assert data["export"]["mapping"] == "openai-usage-buckets"
    assert data["period"] == {"start": "2026-12-05T13:00:00Z", "end": "2026-12-05T16:00:00Z"}
    assert data["matched"] == {"calls": 0, "buckets": 2}
    assert data["bucket_differences"] == []
    mine = side(5, 1500, 150, cost(1500, 150))
    [row] = data["by_model_day"]
    assert (row["day"], row["model"]) == ("2026-12-05", SNAPSHOT)
    assert row["ledger"] == mine
    assert row["export"] == mine
    assert report.exit_code == 0


def test_without_a_skew_allowance_a_skewed_call_lands_in_the_wrong_bucket(tmp_path: Path) -> None:
    report = reconcile_files(
        [skewed_ledger(tmp_path, 120.0)], openai_export(tmp_path, lines=True), skew_s=0.0
    )
    data = report.to_dict()
    assert [(b["start"], b["ledger"]["requests"], b["export"]["requests"])
            for b in data["bucket_differences"]] == [
        ("2026-12-05T13:00:00Z", 2, 3),
        ("2026-12-05T14:00:00Z", 3, 2),
    ]  # fmt: skip
    assert data["by_model_day"][0]["exceeds"] == []  # the day still adds up
    assert report.exit_code == 0


def test_buckets_report_missing_rows_drift_and_unknown_models(tmp_path: Path) -> None:
    ledger = write_ledger(
        tmp_path / "usage.jsonl",
        [
            record(at("13:10"), "a", prompt=100, completion=10, answered=SNAPSHOT),
            record(at("13:20"), "b", prompt=100, completion=10, answered=SNAPSHOT),
            record(at("13:30"), "c", prompt=None, completion=None, answered=SNAPSHOT),
            record(at("13:40"), "d", prompt=70, completion=7, model="other-model"),
            record(at("13:50"), "e", prompt=None, completion=None, status=429, kind="api_error"),
            record(at("12:00"), "early", prompt=5, completion=5, answered=SNAPSHOT),
        ],
    )
    export = tmp_path / "usage.jsonl.json"
    export.write_text(
        json.dumps(
            page(
                bucket(at("13:00"), at("14:00"), (SNAPSHOT, 330, 33, 3)),
                bucket(at("14:00"), at("15:00"), (SNAPSHOT, 50, 5, 1)),
            )
        )
    )
    data = reconcile_files([ledger], export, format="json").to_dict()
    assert data["ledger"]["outside_period"] == 1
    assert data["ledger"]["not_billable"] == 1
    assert data["matched"] == {"calls": 0, "buckets": 1}
    assert data["only_in_export"]["buckets"] == 1
    assert data["only_in_ledger"]["calls"] == 1
    assert data["only_in_ledger"]["sample"][0]["model"] == "other-model"
    assert data["usage_missing"]["calls"] == 1
    rows = {row["model"]: row for row in data["by_model_day"]}
    snapshot = rows[SNAPSHOT]
    assert snapshot["ledger"] == side(3, 200, 20)
    assert snapshot["export"] == side(4, 380, 38)
    assert (snapshot["usage_missing"], snapshot["only_in_export"]) == (1, 1)
    assert snapshot["exceeds"] == [
        "requests",
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "cost_usd",
    ]
    other = rows["other-model"]
    assert other["ledger"] == {"requests": 1, "prompt_tokens": 70, "completion_tokens": 7,
                               "total_tokens": 77, "cost_usd": None}  # fmt: skip
    assert other["export"] == {"requests": 0, "prompt_tokens": 0, "completion_tokens": 0,
                               "total_tokens": 0, "cost_usd": None}  # fmt: skip
    assert other["only_in_ledger"] == 1
    assert data["totals"]["ledger"]["requests"] == 4
    assert data["totals"]["export"]["requests"] == 4


def test_an_export_not_grouped_by_model_is_compared_across_models(tmp_path: Path) -> None:
    ledger = write_ledger(
        tmp_path / "usage.jsonl",
        [record(at("13:10"), "a", prompt=100, completion=10, answered=SNAPSHOT),
         record(at("13:20"), "b", prompt=20, completion=2, model="gpt-4.1-nano")],
    )  # fmt: skip
    export = tmp_path / "usage.json"
    export.write_text(json.dumps(page(bucket(at("13:00"), at("14:00"), (None, 120, 12, 2)))))
    data = reconcile_files([ledger], export).to_dict()
    assert data["by_model"] is False
    [row] = data["by_model_day"]
    assert row["model"] == "*"
    assert (row["ledger"]["prompt_tokens"], row["export"]["prompt_tokens"]) == (120, 120)
    assert row["exceeds"] == []


def test_a_requested_model_matches_the_dated_snapshot_in_the_export(tmp_path: Path) -> None:
    ledger = write_ledger(
        tmp_path / "usage.jsonl", [record(at("13:10"), "a", prompt=100, completion=10)]
    )
    export = tmp_path / "usage.json"
    export.write_text(json.dumps(page(bucket(at("13:00"), at("14:00"), (SNAPSHOT, 100, 10, 1)))))
    data = reconcile_files([ledger], export).to_dict()
    assert data["matched"]["buckets"] == 1
    assert data["only_in_ledger"]["calls"] == 0


def test_timed_rows_without_ids_are_counted_per_hour(tmp_path: Path) -> None:
    ledger = write_ledger(
        tmp_path / "usage.jsonl",
        [record(at("13:58"), "a", prompt=10, completion=1),
         record(at("14:01"), "b", prompt=20, completion=2)],
    )  # fmt: skip
    export = write_csv(
        tmp_path / "export.csv",
        ["time", "model", "prompt_tokens", "completion_tokens"],
        [["2026-12-05 14:00:30", "gpt-4o-mini", 10, 1],  # the provider's clock is 2.5 min later
         ["2026-12-05 14:03:00", "gpt-4o-mini", 20, 2]],
    )  # fmt: skip
    data = reconcile_files([ledger], export).to_dict()
    assert data["matched"] == {"calls": 0, "buckets": 1}
    assert data["bucket_differences"] == []
    assert data["exceeded"] == []


def test_calls_without_usage_on_our_side_still_compare_cost(tmp_path: Path) -> None:
    ledger = write_ledger(
        tmp_path / "usage.jsonl", [record(at("13:15"), "r4", prompt=None, completion=None)]
    )
    export = write_csv(
        tmp_path / "export.csv", HEADER, [["r4", "2026-12-05T13:15:01Z", "gpt-4o-mini", 150, 30]]
    )
    data = reconcile_files([ledger], export).to_dict()
    [row] = data["by_model_day"]
    assert row["ledger"]["cost_usd"] is None
    assert row["export"]["cost_usd"] == pytest.approx(cost(150, 30))
    assert row["diff"]["cost_usd"] == {"diff": pytest.approx(-cost(150, 30)), "diff_pct": -100.0}
    assert row["exceeds"] == ["prompt_tokens", "completion_tokens", "total_tokens", "cost_usd"]
    assert (row["usage_missing"], data["usage_missing"]["calls"]) == (1, 1)


def test_an_exported_cost_column_is_compared_as_given(tmp_path: Path) -> None:
    ledger = write_ledger(
        tmp_path / "usage.jsonl", [record(at("13:00"), "r1", prompt=1000, completion=100)]
    )
    export = write_csv(
        tmp_path / "export.csv",
        [*HEADER, "cost_usd"],
        [["r1", "2026-12-05T13:00:00Z", "gpt-4o-mini", 1000, 100, "$0.000200"]],
    )
    [row] = reconcile_files([ledger], export).to_dict()["by_model_day"]
    assert row["export"]["cost_usd"] == pytest.approx(0.0002)
    assert row["diff"]["cost_usd"]["diff"] == pytest.approx(cost(1000, 100) - 0.0002)
    assert row["exceeds"] == ["cost_usd"]


def test_a_reused_response_id_is_not_a_duplicate_and_a_unique_one_matches(tmp_path: Path) -> None:
    first = record(at("13:00"), "req-a", prompt=10, completion=1)
    second = record(at("13:01"), "req-b", prompt=20, completion=2)
    third = record(at("13:02"), None, prompt=30, completion=3)
    first["response_id"] = second["response_id"] = "chatcmpl-fixed"  # a server reusing one id
    third["response_id"] = "chatcmpl-unique"
    ledger = write_ledger(tmp_path / "usage.jsonl", [first, second, third])
    export = write_csv(
        tmp_path / "export.csv",
        HEADER,
        [["req-a", "2026-12-05T13:00:00Z", "gpt-4o-mini", 10, 1],
         ["req-b", "2026-12-05T13:01:00Z", "gpt-4o-mini", 20, 2],
         ["chatcmpl-unique", "2026-12-05T13:02:00Z", "gpt-4o-mini", 30, 3]],
    )  # fmt: skip
    data = reconcile_files([ledger], export).to_dict()
    assert data["duplicates"]["ledger_ids"] == 0
    assert data["matched"]["calls"] == 3
    assert data["exceeded"] == []
