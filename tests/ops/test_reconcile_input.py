"""Bad input for reconcile: unknown columns, torn ledgers, bad cells, huge exports."""

from __future__ import annotations

import inspect
import json
import os
import tracemalloc
from pathlib import Path

import pytest

from chatcontract.errors import UsageError
from chatcontract.ops._export import ExportReader, parse_map
from chatcontract.ops.reconcile import (
    MAX_EXPORT_ONLY_IDS,
    parse_skew,
    parse_tolerance,
    reconcile_files,
)
from reconcile_data import at, bucket, page, record, write_csv, write_ledger

# Columns like a gateway console's log export: not ours to guess, so they must be mapped.
CONSOLE = ["Time", "Token Name", "Model", "Prompt", "Completion", "Quota"]
CONSOLE_ROWS = [["2026-12-05 13:00:10", "prod", "gpt-4o-mini", 100, 20, 75],
                ["2026-12-05 13:20:10", "prod", "gpt-4o-mini", 200, 40, 150]]  # fmt: skip


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    return write_ledger(
        tmp_path / "usage.jsonl",
        [record(at("13:00"), "r1", prompt=100, completion=20),
         record(at("13:20"), "r2", prompt=200, completion=40)],
    )  # fmt: skip


def test_unknown_columns_are_named_with_the_map_fix(tmp_path: Path, ledger: Path) -> None:
    export = write_csv(tmp_path / "console.csv", CONSOLE, CONSOLE_ROWS)
    with pytest.raises(UsageError) as caught:
        reconcile_files([ledger], export)
    message = str(caught.value)
    assert message.startswith(
        "console.csv: no column for prompt_tokens, completion_tokens or total_tokens; unknown "
        "columns: 'Token Name', 'Prompt', 'Completion', 'Quota'. Map them with --map "
        "COLUMN=FIELD (e.g. --map 'Prompt=prompt_tokens' --map 'Time=time')"
    )


def test_mapped_console_columns_reconcile_and_the_rest_are_listed(
    tmp_path: Path, ledger: Path
) -> None:
    export = write_csv(tmp_path / "console.csv", CONSOLE, CONSOLE_ROWS)
    overrides = parse_map(["Prompt=prompt_tokens", "Completion=completion_tokens"])
    data = reconcile_files([ledger], export, overrides=overrides).to_dict()
    assert data["export"]["ignored_columns"] == ["Token Name", "Quota"]
    assert data["matched"] == {"calls": 0, "buckets": 1}
    assert data["exceeded"] == []


@pytest.mark.parametrize(
    ("items", "message"),
    [
        (["Prompt"], "--map 'Prompt': write COLUMN=FIELD"),
        (["Prompt=tokens"], "--map 'Prompt=tokens': unknown field 'tokens'; use one of request_id"),
    ],
    ids=["no-field", "unknown-field"],
)
def test_a_bad_map_says_what_to_write(items: list[str], message: str) -> None:
    with pytest.raises(UsageError, match=message):
        parse_map(items)


def test_a_map_naming_a_missing_column_lists_the_columns(tmp_path: Path, ledger: Path) -> None:
    export = write_csv(tmp_path / "console.csv", CONSOLE, CONSOLE_ROWS)
    with pytest.raises(UsageError, match=r"--map: 'tokens' not in console.csv's columns \('Time'"):
        reconcile_files([ledger], export, overrides=parse_map(["Tokens=total_tokens"]))


def test_a_torn_last_ledger_line_is_reported_and_the_rest_reconciled(
    tmp_path: Path, ledger: Path
) -> None:
    with ledger.open("a") as stream:
        stream.write('{"v": 1, "time": "2026-12-05T13:30:00.000Z", "request_ids": ["r3"], "pro')
    export = write_csv(
        tmp_path / "export.csv",
        ["request_id", "time", "model", "prompt_tokens", "completion_tokens"],
        [["r1", "2026-12-05T13:00:00Z", "gpt-4o-mini", 100, 20],
         ["r2", "2026-12-05T13:20:00Z", "gpt-4o-mini", 200, 40]],
    )  # fmt: skip
    report = reconcile_files([ledger], export)
    data = report.to_dict()
    assert data["ledger"]["skipped_lines"] == [
        {"file": str(ledger), "line": 3, "kind": "torn",
         "detail": "unterminated last line (a write cut short)"},
    ]  # fmt: skip
    assert data["matched"]["calls"] == 2
    assert report.exit_code == 0


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (
            ["r1", "2026-12-05T13:00:00Z", "gpt-4o-mini", "ten", 20],
            "export.csv line 3, prompt_tokens: 'ten' is not a whole number",
        ),
        (
            ["r1", "yesterday", "gpt-4o-mini", 10, 20],
            "export.csv line 3, time: 'yesterday' is not a time; write ISO 8601",
        ),
        (
            ["r1", "2026-12-05T13:00:00Z", "gpt-4o-mini", 10, 20, "extra"],
            "export.csv line 3: 6 cells for 5 columns",
        ),
        (["r1", "2026-12-05T13:00:00Z", "gpt-4o-mini"], "export.csv line 3: 3 cells for 5 columns"),
        (
            ["r1", "2026-12-05T13:00:00Z", "gpt-4o-mini", "1" * 10_000, 20],
            r"prompt_tokens: '1{40}'\.\.\. \(10000 characters\) is not a whole number from 0 "
            "to 1e15",
        ),
        (
            ["r1", "2026-12-05T13:00:00Z", "gpt-4o-mini", "1" * 4_000, 20],
            r"\(4000 characters\) is not a whole number from 0 to 1e15",
        ),
        (
            ["r1", "2026-12-05T13:00:00Z", "gpt-4o-mini", "²", 20],
            "prompt_tokens: '²' is not a whole number",
        ),
        (
            ["r1", "2026-12-05T13:00:00Z", "gpt-4o-mini", "1e309", 20],
            "prompt_tokens: '1e309' is not a whole number",
        ),
        (
            ["r1", "2026-12-05T13:00:00Z", "gpt-4o-mini", "NaN", 20],
            "prompt_tokens: 'NaN' is not a whole number",
        ),
        (
            ["r1", "1e300", "gpt-4o-mini", 10, 20],
            "time: '1e300' is not a time between 1970 and 9999",
        ),
        (
            ["r1", "-1e12", "gpt-4o-mini", 10, 20],
            "time: '-1e12' is not a time between 1970 and 9999",
        ),
        (
            ["r1", "0001-01-01T00:00:00+14:00", "gpt-4o-mini", 10, 20],
            "time: '0001-01-01T00:00:00\\+14:00' is not a time",
        ),
        (
            ["r1", "x" * 100_000, "gpt-4o-mini", 10, 20],
            r"time: 'x{40}'\.\.\. \(100000 characters\) is not a time",
        ),
        (
            ["r1", "2026-12-05T13:00:00Z", "gpt-4o-mini", "sk-proj-AbCdEf0123456789AbCdEf01", 20],
            "prompt_tokens: '\\*\\*\\*' is not a whole number",
        ),
    ],
    ids=[
        "tokens",
        "time",
        "extra-cell",
        "missing-cells",
        "10k-digits",
        "4k-digits",
        "unicode-digit",
        "1e309",
        "nan",
        "time-1e300",
        "time-negative",
        "time-year-0",
        "100k-character-cell",
        "secret-shaped-cell",
    ],
)
def test_a_bad_cell_names_the_line(tmp_path: Path, ledger: Path, row: list, message: str) -> None:
    header = ["request_id", "time", "model", "prompt_tokens", "completion_tokens"]
    good = ["r0", "2026-12-05T13:00:00Z", "gpt-4o-mini", 1, 1]
    export = write_csv(tmp_path / "export.csv", header, [good, row])
    with pytest.raises(UsageError, match=message):
        reconcile_files([ledger], export)


def test_a_negative_cost_is_refused(tmp_path: Path, ledger: Path) -> None:
    header = ["request_id", "time", "model", "total_tokens", "cost_usd"]
    export = write_csv(tmp_path / "e.csv", header, [["r1", at("13:00"), "m", 1, "-1.5"]])
    with pytest.raises(UsageError, match=r"cost_usd: '-1\.5' is not a cost; write a number of"):
        reconcile_files([ledger], export)


def test_a_repeated_column_feeds_its_field_from_the_first_one_as_reported(
    tmp_path: Path, ledger: Path
) -> None:
    header = ["request_id", "time", "prompt_tokens", "completion_tokens", "prompt_tokens"]
    rows = [["r1", "2026-12-05T13:00:00Z", 100, 20, 999],
            ["r2", "2026-12-05T13:20:00Z", 200, 40, 999]]  # fmt: skip
    data = reconcile_files([ledger], write_csv(tmp_path / "e.csv", header, rows)).to_dict()
    assert data["export"]["ignored_columns"] == ["prompt_tokens"]
    assert data["by_model_day"][0]["export"]["prompt_tokens"] == 300


@pytest.mark.parametrize("delimiter", [";", "\t"], ids=["semicolon", "tab"])
def test_a_semicolon_or_tab_separated_export_is_read(
    tmp_path: Path, ledger: Path, delimiter: str
) -> None:
    header = ["request_id", "time", "model", "prompt_tokens", "completion_tokens"]
    rows = [["r1", "2026-12-05T13:00:00Z", "gpt-4o-mini", 100, 20],
            ["r2", "2026-12-05T13:20:00Z", "gpt-4o-mini", 200, 40]]  # fmt: skip
    export = tmp_path / "e.csv"
    export.write_text("\n".join(delimiter.join(map(str, r)) for r in [header, *rows]) + "\n")
    report = reconcile_files([ledger], export)
    assert report.to_dict()["matched"]["calls"] == 2
    assert report.exit_code == 0


def test_a_json_export_is_walked_in_file_order_through_nested_lists(tmp_path: Path) -> None:
    rows = [{"request_id": f"r{n}", "time": at("13:00"), "total_tokens": 1} for n in range(6)]
    export = tmp_path / "e.json"
    export.write_text(json.dumps([rows[0], [rows[1], [rows[2]]], {"data": rows[3:5]}, rows[5]]))
    assert [row.request_id for row in ExportReader(export)] == [f"r{n}" for n in range(6)]


def test_a_json_line_over_the_limit_is_refused_not_read_whole(
    tmp_path: Path, ledger: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chatcontract.ops import _export

    monkeypatch.setattr(_export, "MAX_JSON_DOCUMENT_BYTES", 64)
    export = tmp_path / "e.jsonl"
    export.write_text(json.dumps({"request_id": "r1", "time": 1, "pad": "x" * 100}))
    with pytest.raises(UsageError, match=r"e\.jsonl line 1: longer than"):
        reconcile_files([ledger], export)


@pytest.mark.parametrize("kind", ["fifo", "directory", "device"])
def test_an_export_that_is_not_a_regular_file_says_so(
    tmp_path: Path, ledger: Path, kind: str
) -> None:
    path = {"fifo": tmp_path / "e.csv", "directory": tmp_path, "device": Path("/dev/zero")}[kind]
    if kind == "fifo":
        os.mkfifo(path)
    with pytest.raises(UsageError, match=r"not a regular file .* save the provider's export"):
        reconcile_files([ledger], path)


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_ledger_that_is_not_a_regular_file_is_refused_without_waiting(
    tmp_path: Path, kind: str
) -> None:
    export = write_csv(tmp_path / "e.csv", ["request_id", "total_tokens"], [["a", 1]])
    path = Path("/dev/zero") if kind == "device" else tmp_path / "usage.jsonl"
    if kind == "fifo":
        os.mkfifo(path)
    with pytest.raises(UsageError, match=r"--ledger .*: not a regular file"):
        reconcile_files([path], export)


def test_an_overlong_ledger_line_is_skipped_a_piece_at_a_time(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chatcontract.telemetry import ledger as ledger_module

    monkeypatch.setattr(ledger_module, "MAX_LINE_BYTES", 1024)
    path = tmp_path / "usage.jsonl"
    good = json.dumps(record(at("13:00"), "r1"))
    path.write_text("x" * 10_000 + "\n" + good + "\n")
    export = write_csv(tmp_path / "e.csv", ["request_id", "total_tokens"], [["r1", 120]])
    data = reconcile_files([path], export).to_dict()
    assert data["matched"]["calls"] == 1
    [issue] = data["ledger"]["skipped_lines"]
    assert (issue["line"], issue["kind"]) == (1, "corrupt") and "longer than 1024" in issue[
        "detail"
    ]


def test_a_csv_export_cut_inside_a_quoted_cell_says_so(tmp_path: Path, ledger: Path) -> None:
    export = tmp_path / "e.csv"
    rows = "".join(f"r{n},2026-12-05T13:00:00Z,1\n" for n in range(3, 50))
    export.write_text('request_id,time,total_tokens\n"r1,2026-12-05T13:00:00Z,1\n' + rows)
    with pytest.raises(UsageError, match=r"e\.csv line 2: a quoted cell here is never closed"):
        reconcile_files([ledger], export)


def test_a_json_export_cut_short_says_so(tmp_path: Path, ledger: Path) -> None:
    export = tmp_path / "usage.jsonl"
    whole = json.dumps(page(bucket(at("13:00"), at("14:00"), ("gpt-4o-mini", 300, 60, 2))))
    export.write_text(whole + "\n" + whole[:40])
    with pytest.raises(UsageError, match=r"usage\.jsonl line 2: cut short"):
        reconcile_files([ledger], export)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: parse_tolerance("2"), "write a percentage, e.g. --tolerance 2%"),
        (lambda: parse_tolerance("200%"), "from 0% to 100%"),
        (lambda: parse_skew("soon"), "write seconds or minutes"),
        (
            lambda: reconcile_files(["/nonexistent/usage.jsonl"], "/nonexistent/x.csv"),
            "no such file",
        ),
    ],
    ids=["tolerance-no-percent", "tolerance-too-big", "skew", "missing-export"],
)
def test_bad_arguments_say_what_to_write(call, message: str) -> None:
    with pytest.raises(UsageError, match=message):
        call()


def test_a_missing_ledger_says_which(tmp_path: Path) -> None:
    export = write_csv(tmp_path / "e.csv", ["request_id", "total_tokens"], [["a", 1]])
    with pytest.raises(UsageError, match=r"--ledger .*nope.jsonl: no such ledger file"):
        reconcile_files([tmp_path / "nope.jsonl"], export)


# -- huge exports ----------------------------------------------------------------------------------

HUGE = 200_000


def _huge_export(path: Path, rows: int, *, ids: bool) -> Path:
    with path.open("w") as stream:
        stream.write(
            ("request_id," if ids else "") + "time,model,prompt_tokens,completion_tokens\n"
        )
        for n in range(rows):
            key = f"req-{n:08d}," if ids else ""
            stream.write(
                f"{key}2026-12-05T{n % 24:02d}:{n % 60:02d}:00Z,gpt-4o-mini,{n % 900},{n % 90}\n"
            )
    return path


def test_the_export_is_read_lazily_one_row_at_a_time(tmp_path: Path) -> None:
    reader = ExportReader(_huge_export(tmp_path / "huge.csv", 1_000, ids=True))
    rows = iter(reader)
    assert inspect.isgenerator(rows)
    first = next(rows)
    assert (first.request_id, reader.rows_read) == ("req-00000000", 1)


def test_a_200k_row_export_is_reconciled_in_full(tmp_path: Path, ledger: Path) -> None:
    export = _huge_export(tmp_path / "huge.csv", HUGE, ids=True)
    data = reconcile_files([ledger], export).to_dict()
    assert data["export"]["rows"] == HUGE
    assert data["only_in_export"]["calls"] == HUGE
    assert data["only_in_export"]["duplicates_checked"] is False  # beyond MAX_EXPORT_ONLY_IDS
    assert HUGE > MAX_EXPORT_ONLY_IDS
    assert data["only_in_ledger"]["calls"] == 2
    [row] = data["by_model_day"]
    assert row["export"]["prompt_tokens"] == sum(n % 900 for n in range(HUGE))
    assert row["export"]["completion_tokens"] == sum(n % 90 for n in range(HUGE))
    assert row["ledger"]["requests"] == 2


def _peak(path: Path, ledger: Path) -> int:
    tracemalloc.start()
    try:
        reconcile_files([ledger], path)
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_does_not_grow_with_the_export(tmp_path: Path, ledger: Path) -> None:
    small = _peak(_huge_export(tmp_path / "small.csv", 2_000, ids=False), ledger)
    large = _peak(_huge_export(tmp_path / "large.csv", 20_000, ids=False), ledger)
    # Ten times the rows (about 1 MB more file): the peak stays where it was.
    assert large - small < 128 * 1024, (small, large)


def test_a_ledger_record_with_a_bad_time_is_skipped_naming_its_file_and_line(
    tmp_path: Path,
) -> None:
    good = record(at("13:00"), "r1")
    path = write_ledger(tmp_path / "usage.jsonl", [good, {**good, "time": 1e300}])
    export = write_csv(tmp_path / "e.csv", ["request_id", "total_tokens"], [["r1", 120]])
    [issue] = reconcile_files([path], export).to_dict()["ledger"]["skipped_lines"]
    assert (issue["file"], issue["line"], issue["kind"]) == (str(path), 2, "corrupt")
    assert issue["detail"].startswith("time: 1e+300 is not a time between 1970 and 9999")


def test_an_export_without_a_prompt_column_has_no_total_rather_than_a_wrong_one(
    tmp_path: Path, ledger: Path
) -> None:
    header = ["request_id", "time", "model", "completion_tokens"]
    rows = [["r1", "2026-12-05T13:00:00Z", "gpt-4o-mini", 20],
            ["r2", "2026-12-05T13:20:00Z", "gpt-4o-mini", 40]]  # fmt: skip
    report = reconcile_files([ledger], write_csv(tmp_path / "e.csv", header, rows))
    [row] = report.to_dict()["by_model_day"]
    assert row["export"]["completion_tokens"] == 60
    assert row["export"]["prompt_tokens"] is None and row["export"]["total_tokens"] is None
    assert report.exit_code == 0  # completion tokens agree; nothing else can be compared
