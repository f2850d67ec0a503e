"""``chatcontract reconcile``: exit 0 within tolerance, 1 above, 2 bad input; text and json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reconcile_data import at, bucket, page, record, write_csv, write_ledger

HEADER = ["request_id", "time", "model", "prompt_tokens", "completion_tokens"]


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    ledger = write_ledger(
        tmp_path / "usage.jsonl",
        [record(at("13:00"), "r1", prompt=1000, completion=100),
         record(at("13:10"), "r2", prompt=1000, completion=100)],
    )  # fmt: skip
    export = write_csv(
        tmp_path / "export.csv",
        HEADER,
        [["r1", "2026-12-05T13:00:00Z", "gpt-4o-mini", 1000, 100],
         ["r2", "2026-12-05T13:10:00Z", "gpt-4o-mini", 1000, 103]],  # +3 of 203: 1.5 %
    )  # fmt: skip
    return ledger, export


def test_within_tolerance_exits_0_with_a_text_report(cli, files: tuple[Path, Path]) -> None:
    code, out, err = cli("reconcile", "--ledger", str(files[0]), "--export", str(files[1]))
    assert (code, err) == (0, "")
    assert "matched: 2 calls, 0 buckets" in out.splitlines()
    assert "  completion_tokens             200            203  -3 (-1.4778%)" in out
    assert out.rstrip().endswith("OK: every difference within 2%")


def test_above_tolerance_exits_1_and_json_lists_what_exceeded(
    cli, files: tuple[Path, Path]
) -> None:
    code, out, _ = cli(
        "reconcile", "--ledger", str(files[0]), "--export", str(files[1]),
        "--tolerance", "1%", "--report-format", "json",
    )  # fmt: skip
    assert code == 1
    data = json.loads(out)
    assert [(e["day"], e["model"], e["field"], e["diff"]) for e in data["exceeded"]] == [
        ("2026-12-05", "gpt-4o-mini", "completion_tokens", -3),
        (None, None, "completion_tokens", -3),
    ]
    assert data["tolerance_pct"] == 1.0


def test_an_openai_bucket_export_with_skewed_clocks(cli, tmp_path: Path) -> None:
    ledger = write_ledger(
        tmp_path / "usage.jsonl",
        [record(at("13:58") + 120, "a", prompt=10, completion=1),  # provider: 13:58
         record(at("14:05") + 120, "b", prompt=20, completion=2)],
    )  # fmt: skip
    export = tmp_path / "usage.json"
    export.write_text(
        json.dumps(page(bucket(at("13:00"), at("14:00"), ("gpt-4o-mini", 10, 1, 1)),
                        bucket(at("14:00"), at("15:00"), ("gpt-4o-mini", 20, 2, 1))))
    )  # fmt: skip
    argv = ("reconcile", "--ledger", str(ledger), "--export", str(export))
    code, out, _ = cli(*argv, "--max-skew", "2m")
    assert code == 0
    assert "matched: 0 calls, 2 buckets" in out.splitlines()
    code, out, _ = cli(*argv, "--max-skew", "0s", "--report-format", "json")
    assert json.loads(out)["bucket_differences"] != []


def test_console_columns_are_mapped_with_map(cli, tmp_path: Path, files) -> None:
    export = write_csv(
        tmp_path / "console.csv",
        ["Time", "Token Name", "Model", "Prompt", "Completion"],
        [["2026-12-05 13:00:05", "prod", "gpt-4o-mini", 1000, 100],
         ["2026-12-05 13:10:05", "prod", "gpt-4o-mini", 1000, 100]],
    )  # fmt: skip
    argv = ("reconcile", "--ledger", str(files[0]), "--export", str(export))
    code, _, err = cli(*argv)
    assert code == 2
    assert err.startswith("chatcontract: error: console.csv: no column for prompt_tokens")
    assert "unknown columns: 'Token Name', 'Prompt', 'Completion'" in err
    assert "--map COLUMN=FIELD" in err
    assert len(err.splitlines()) == 1
    code, out, _ = cli(*argv, "--map", "Prompt=prompt_tokens", "Completion=completion_tokens",
                       "--map", "Token Name=ignore")  # fmt: skip
    assert code == 0
    assert "matched: 0 calls, 1 buckets" in out.splitlines()


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--tolerance", "two"), "--tolerance 'two': write a percentage"),
        (("--map", "Prompt"), "--map 'Prompt': write COLUMN=FIELD"),
        (("--max-skew=-1s",), "--max-skew '-1s': write a duration"),
    ],
    ids=["tolerance", "map", "skew"],
)
def test_bad_options_exit_2_with_one_line(cli, files, extra: tuple[str, ...], message: str) -> None:
    code, out, err = cli("reconcile", "--ledger", str(files[0]), "--export", str(files[1]), *extra)
    assert code == 2
    assert message in err
    assert len(err.splitlines()) == 1
    assert out == ""


def test_a_missing_export_exits_2(cli, files, tmp_path: Path) -> None:
    code, _, err = cli("reconcile", "--ledger", str(files[0]), "--export", str(tmp_path / "no.csv"))
    assert code == 2
    assert "no such file" in err


def test_a_ledger_written_by_usage_ledger_reconciles_with_its_export(cli, tmp_path: Path) -> None:
    from chatcontract.contract import load_preset
    from chatcontract.telemetry import CallLabels, UsageLedger
    from chatcontract.transport import Exchange, RequestFacts, ResponseFacts, Timings
    from chatcontract.wire import Usage

    ledger = UsageLedger(tmp_path / "usage.jsonl", contract=load_preset("cometapi"))
    labels = CallLabels(provider="cometapi", endpoint="/chat/completions")
    rows = []
    for n in range(3):
        started = at(f"13:0{n}")
        ledger.handle_exchange(
            Exchange(
                request=RequestFacts(method="POST", url="https://x/v1/chat/completions",
                                     model="gpt-4o-mini"),
                response=ResponseFacts(status=200, model="gpt-4o-mini",
                                       request_ids={"x-request-id": f"req-{n}"},
                                       usage=Usage(prompt_tokens=100 + n, completion_tokens=10,
                                                   total_tokens=110 + n)),
                timings=Timings(total_ms=300.0),
                started_at=started,
            ),
            labels,
        )  # fmt: skip
        rows.append([f"req-{n}", f"2026-12-05T13:0{n}:01Z", "gpt-4o-mini", 100 + n, 10])
    export = write_csv(tmp_path / "export.csv", HEADER, rows)
    code, out, _ = cli("reconcile", "--ledger", str(tmp_path / "usage.jsonl"),
                       "--export", str(export), "--report-format", "json")  # fmt: skip
    data = json.loads(out)
    assert code == 0
    assert data["matched"]["calls"] == 3
    mine, theirs = data["totals"]["ledger"], data["totals"]["export"]
    assert mine == {**theirs, "cost_usd": pytest.approx(theirs["cost_usd"])}
    assert mine["total_tokens"] == 333
    assert mine["cost_usd"] == pytest.approx((303 * 0.12 + 30 * 0.48) / 1e6)  # preset prices


KEY = "sk-proj-AbCdEf0123456789AbCdEf0123"


@pytest.mark.parametrize("report", ["text", "json"])
def test_ids_from_the_files_are_printed_redacted(cli, tmp_path: Path, report: str) -> None:
    ledger = write_ledger(tmp_path / "usage.jsonl", [record(at("13:00"), KEY)])
    export = write_csv(tmp_path / "e.csv", HEADER, [["r9", "2026-12-05T13:00:00Z", "m", 1, 1]])
    code, out, _ = cli(
        "reconcile", "--ledger", str(ledger), "--export", str(export), "--report-format", report
    )
    assert code == 1
    assert "AbCdEf" not in out and "***" in out


def test_an_id_with_a_line_break_or_an_escape_stays_on_its_line(cli, tmp_path: Path) -> None:
    ledger = write_ledger(tmp_path / "usage.jsonl", [record(at("13:00"), "r1")])
    rows = [["r1", "2026-12-05T13:00:00Z", "m", 100, 20],
            ["evil\nFAKE LINE\x1b[2J", "2026-12-05T13:01:00Z", "m", 1, 1]]  # fmt: skip
    export = write_csv(tmp_path / "e.csv", HEADER, rows)
    code, out, _ = cli("reconcile", "--ledger", str(ledger), "--export", str(export))
    assert code == 1
    assert "  evil\\x0aFAKE LINE\\x1b[2J 2026-12-05T13:01:00Z m (line 4)" in out.splitlines()
    assert "\x1b" not in out
