"""The usage ledger: one line per call (never sampled), no secret, rotated and bounded, torn
lines sealed and skipped, write errors counted and never raised."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import threading
from pathlib import Path

import httpx2
import msgspec
import pytest
from prometheus_client import CollectorRegistry

from chatcontract.contract import load_preset
from chatcontract.errors import ConfigError
from chatcontract.failures.classify import classify_response
from chatcontract.instrumentation import instrument
from chatcontract.telemetry import CallLabels, Telemetry, UsageLedger
from chatcontract.telemetry.ledger import LedgerReadIssue, ledger_files, read_ledger
from chatcontract.transport import Exchange, RequestFacts, ResponseFacts, Timings
from chatcontract.wire import Usage

COMET = load_preset("cometapi")  # prices: gpt-4.1-nano 0.08 / 0.32 USD per million tokens
LABELS = CallLabels(provider="cometapi", endpoint="/chat/completions")
KEY = "sk-ledgertestkey0123456789"
T0 = dt.datetime(2026, 12, 5, 13, 0, 0, tzinfo=dt.UTC).timestamp()


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def exchange(
    *,
    started_at: float = T0,
    status: int | None = 200,
    usage: Usage | None = None,
    request_id: str = "req-1",
    failure=None,
    model: str = "gpt-4.1-nano",
) -> Exchange:
    response = None
    if status is not None:
        response = ResponseFacts(
            status=status,
            model=model + "-2025-04-14",
            response_id="chatcmpl-1",
            usage=usage,
            request_ids={"x-request-id": request_id},
            content="the secret answer",
        )
    return Exchange(
        request=RequestFacts(
            method="POST", url="https://api.cometapi.com/v1/chat/completions", model=model
        ),
        response=response,
        timings=Timings(total_ms=812.5),
        started_at=started_at,
        attempt=2,
        route="backup",
        failure=failure,
    )


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def ledger(tmp_path: Path, **kwargs) -> UsageLedger:
    kwargs.setdefault("clock", Clock())
    return UsageLedger(tmp_path / "usage.jsonl", contract=COMET, secrets=[KEY], **kwargs)


USAGE = Usage(prompt_tokens=1_000, completion_tokens=250, total_tokens=1_250)


def test_a_success_is_one_line_with_tokens_cost_and_ids(tmp_path: Path) -> None:
    sink = ledger(tmp_path)
    sink.handle_exchange(exchange(usage=USAGE), LABELS)
    assert lines(tmp_path / "usage.jsonl") == [
        {
            "v": 1,
            "time": "2026-12-05T13:00:00.000Z",
            "duration_ms": 812.5,
            "provider": "cometapi",
            "endpoint": "/chat/completions",
            "route": "backup",
            "attempt": 2,
            "request_ids": ["req-1"],
            "response_id": "chatcmpl-1",
            "model_requested": "gpt-4.1-nano",
            "model_answered": "gpt-4.1-nano-2025-04-14",
            "stream": False,
            "status": 200,
            "prompt_tokens": 1_000,
            "completion_tokens": 250,
            "total_tokens": 1_250,
            "usage_missing": False,
            "cost_usd": pytest.approx((1_000 * 0.08 + 250 * 0.32) / 1e6),
            "price": {"input_per_million": 0.08, "output_per_million": 0.32},
            "outcome": "success",
        }
    ]


def test_a_call_the_caller_closed_is_neither_a_success_nor_a_failure(tmp_path: Path) -> None:
    sink = ledger(tmp_path)
    closed = msgspec.structs.replace(exchange(), closed_by_caller=True)
    sink.handle_exchange(closed, LABELS)
    [line] = lines(tmp_path / "usage.jsonl")
    assert (line["outcome"], line["usage_missing"], line["status"]) == ("closed", True, 200)
    assert "kind" not in line


def test_a_failure_records_kind_category_and_code_and_missing_usage(tmp_path: Path) -> None:
    body = b'{"error":{"message":"no channel (request id: 2026ABC)","code":"model_not_found"}}'
    failure = classify_response(503, {}, body, contract=COMET)
    sink = ledger(tmp_path)
    sink.handle_exchange(exchange(status=503, failure=failure), LABELS)
    [line] = lines(tmp_path / "usage.jsonl")
    assert (line["outcome"], line["kind"], line["category"], line["code"]) == (
        "failure",
        "api_error",
        "model",
        "model_not_found",
    )
    assert (line["usage_missing"], line["cost_usd"], line["status"]) == (True, None, 503)
    assert line["request_ids"] == ["req-1", "2026ABC"]


def test_a_200_without_usage_is_recorded_as_missing_usage(tmp_path: Path) -> None:
    sink = ledger(tmp_path)
    sink.handle_exchange(exchange(usage=None), LABELS)
    [line] = lines(tmp_path / "usage.jsonl")
    assert (line["usage_missing"], line["prompt_tokens"], line["cost_usd"]) == (True, None, None)


def test_no_prompt_content_or_key_reaches_the_file(tmp_path: Path) -> None:
    sink = ledger(tmp_path)
    sink.handle_exchange(exchange(usage=USAGE, request_id=f"req-{KEY}"), LABELS)
    text = (tmp_path / "usage.jsonl").read_text()
    assert KEY not in text
    assert "the secret answer" not in text
    assert lines(tmp_path / "usage.jsonl")[0]["request_ids"] == ["req-***"]


def test_every_call_is_recorded_and_counted(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    sink = ledger(tmp_path, registry=registry)
    for number in range(50):
        sink.handle_exchange(exchange(usage=USAGE, request_id=f"req-{number}"), LABELS)
    records = lines(tmp_path / "usage.jsonl")
    assert [r["request_ids"][0] for r in records] == [f"req-{n}" for n in range(50)]
    assert (
        registry.get_sample_value("llm_usage_ledger_records_total", {"provider": "cometapi"}) == 50
    )


def test_each_record_is_on_disk_when_the_call_returns(tmp_path: Path) -> None:
    sink = ledger(tmp_path)
    for number in range(3):
        sink.handle_exchange(exchange(usage=USAGE, request_id=f"req-{number}"), LABELS)
        assert len(lines(tmp_path / "usage.jsonl")) == number + 1  # no close, no flush


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="needs /dev/full")
def test_a_full_disk_is_counted_never_raised(caplog: pytest.LogCaptureFixture) -> None:
    registry = CollectorRegistry()
    sink = UsageLedger("/dev/full", contract=COMET, registry=registry)
    telemetry = Telemetry([sink], LABELS)
    with caplog.at_level(logging.WARNING, logger="chatcontract.telemetry.ledger"):
        for _ in range(3):
            telemetry.exchange(exchange(usage=USAGE))
    labels = {"provider": "cometapi", "reason": "disk_full"}
    assert registry.get_sample_value("llm_usage_ledger_write_errors_total", labels) == 3
    assert sink.write_errors == 3
    assert telemetry.sink_errors == 0  # the ledger handled it: the call never saw it
    assert len([r for r in caplog.records if "could not write" in r.getMessage()]) == 1


def test_an_unwritable_place_is_counted_and_writing_resumes_when_it_is_fixed(
    tmp_path: Path,
) -> None:
    registry = CollectorRegistry()
    blocker = tmp_path / "state"
    blocker.write_text("a file where the ledger's directory should be")
    sink = UsageLedger(blocker / "usage.jsonl", contract=COMET, registry=registry)
    sink.handle_exchange(exchange(usage=USAGE), LABELS)
    assert sink.write_errors == 1
    assert (
        registry.get_sample_value(
            "llm_usage_ledger_write_errors_total", {"provider": "cometapi", "reason": "other"}
        )
        == 1
    )
    blocker.unlink()
    sink.handle_exchange(exchange(usage=USAGE, request_id="req-after"), LABELS)
    assert [r["request_ids"] for r in lines(blocker / "usage.jsonl")] == [["req-after"]]


def test_a_new_utc_day_rotates_the_file(tmp_path: Path) -> None:
    clock = Clock()
    sink = ledger(tmp_path, clock=clock)
    sink.handle_exchange(exchange(usage=USAGE, request_id="day-1"), LABELS)
    clock.now += 86_400
    sink.handle_exchange(exchange(started_at=clock.now, usage=USAGE, request_id="day-2"), LABELS)
    rotated = tmp_path / "usage.2026-12-05.1.jsonl"
    assert [r["request_ids"] for r in lines(rotated)] == [["day-1"]]
    assert [r["request_ids"] for r in lines(tmp_path / "usage.jsonl")] == [["day-2"]]
    assert ledger_files(tmp_path / "usage.jsonl") == [rotated, tmp_path / "usage.jsonl"]


def test_size_rotation_keeps_every_record_in_order(tmp_path: Path) -> None:
    sink = ledger(tmp_path, max_file_bytes=4096, max_total_bytes=1 << 20)
    for number in range(40):
        sink.handle_exchange(exchange(usage=USAGE, request_id=f"req-{number}"), LABELS)
    files = ledger_files(tmp_path / "usage.jsonl")
    assert len(files) > 2
    assert all(file.stat().st_size <= 4096 for file in files)
    issues: list[LedgerReadIssue] = []
    ids = [r["request_ids"][0] for r in read_ledger(files, issues)]
    assert ids == [f"req-{n}" for n in range(40)]
    assert issues == []


def _old_file(tmp_path: Path, day: str, size: int = 10) -> Path:
    path = tmp_path / f"usage.{day}.1.jsonl"
    path.write_bytes(b"x" * (size - 1) + b"\n")
    return path


def test_files_older_than_35_days_are_removed_at_rotation(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    clock = Clock()
    expired = _old_file(tmp_path, "2026-10-31")  # 36 days before the rotation on 2026-12-06
    kept = _old_file(tmp_path, "2026-11-01")  # 35 days before
    sink = ledger(tmp_path, clock=clock, registry=registry)
    sink.handle_exchange(exchange(usage=USAGE), LABELS)
    clock.now += 86_400
    sink.handle_exchange(exchange(usage=USAGE), LABELS)
    assert not expired.exists()
    assert kept.exists()
    labels = {"provider": "cometapi", "reason": "age"}
    assert registry.get_sample_value("llm_usage_ledger_files_removed_total", labels) == 1


def test_the_total_size_bound_removes_the_oldest_files_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    registry = CollectorRegistry()
    oldest = _old_file(tmp_path, "2026-12-01", size=6000)
    newer = _old_file(tmp_path, "2026-12-02", size=6000)
    sink = ledger(tmp_path, registry=registry, max_file_bytes=4096, max_total_bytes=16_384)
    with caplog.at_level(logging.WARNING, logger="chatcontract.telemetry.ledger"):
        for number in range(20):
            sink.handle_exchange(exchange(usage=USAGE, request_id=f"req-{number}"), LABELS)
    assert not oldest.exists()
    total = sum(file.stat().st_size for file in ledger_files(tmp_path / "usage.jsonl"))
    assert total <= 16_384
    assert (
        registry.get_sample_value(
            "llm_usage_ledger_files_removed_total", {"provider": "cometapi", "reason": "size"}
        )
        >= 1
    )
    assert not newer.exists() or newer.stat().st_size == 6000
    assert any("max_total_bytes" in record.getMessage() for record in caplog.records)


def test_a_torn_line_is_sealed_so_later_records_stay_whole(tmp_path: Path) -> None:
    path = tmp_path / "usage.jsonl"
    sink = ledger(tmp_path)
    sink.handle_exchange(exchange(usage=USAGE, request_id="before"), LABELS)
    sink.close()
    with path.open("ab") as stream:
        stream.write(b'{"v":1,"time":"2026-12-05T13:00:01.000Z","request_i')  # crash mid-write
    again = ledger(tmp_path)
    again.handle_exchange(exchange(usage=USAGE, request_id="after"), LABELS)
    issues: list[LedgerReadIssue] = []
    files = ledger_files(path)
    ids = [r["request_ids"][0] for r in read_ledger(files, issues)]
    assert ids == ["before", "after"]
    assert [(i.line, i.kind) for i in issues] == [(2, "corrupt")]
    assert path.read_bytes().endswith(b"\n")


def test_a_torn_last_line_is_reported_and_the_rest_read(tmp_path: Path) -> None:
    path = tmp_path / "usage.jsonl"
    sink = ledger(tmp_path)
    for name in ("a", "b"):
        sink.handle_exchange(exchange(usage=USAGE, request_id=name), LABELS)
    with path.open("ab") as stream:
        stream.write(b'{"v":1,"time":"2026-12-05T13:00')
    issues: list[LedgerReadIssue] = []
    assert [r["request_ids"][0] for r in read_ledger([path], issues)] == ["a", "b"]
    assert [(i.line, i.kind) for i in issues] == [(3, "torn")]


def test_threads_sharing_a_ledger_never_interleave_lines(tmp_path: Path) -> None:
    sink = ledger(tmp_path, max_file_bytes=16_384, max_total_bytes=1 << 24)

    def write(worker: int) -> None:
        for number in range(100):
            sink.handle_exchange(exchange(usage=USAGE, request_id=f"w{worker}-{number}"), LABELS)

    threads = [threading.Thread(target=write, args=(worker,)) for worker in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    issues: list[LedgerReadIssue] = []
    ids = [r["request_ids"][0] for r in read_ledger(ledger_files(tmp_path / "usage.jsonl"), issues)]
    assert issues == []
    assert sorted(ids) == sorted(f"w{w}-{n}" for w in range(6) for n in range(100))
    for worker in range(6):  # each thread's records in its own order
        mine = [i for i in ids if i.startswith(f"w{worker}-")]
        assert mine == [f"w{worker}-{n}" for n in range(100)]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"keep_days": 0}, "keep_days must be a whole number >= 1"),
        ({"max_file_bytes": 10}, "max_file_bytes must be a whole number >= 4096"),
        ({"max_file_bytes": 8192, "max_total_bytes": 8192}, "at least twice max_file_bytes"),
    ],
    ids=["keep-days", "tiny-file", "total-below-two-files"],
)
def test_bad_settings_say_what_to_write(tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        UsageLedger(tmp_path / "usage.jsonl", contract=COMET, **kwargs)


COMPLETION = {
    "id": "chatcmpl-9",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-4.1-nano-2025-04-14",
    "choices": [{"index": 0, "finish_reason": "stop",
                 "message": {"role": "assistant", "content": "pong"}}],
    "usage": {"prompt_tokens": 9, "completion_tokens": 1, "total_tokens": 10},
}  # fmt: skip


def test_instrument_feeds_the_ledger_through_its_sinks(tmp_path: Path) -> None:
    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json=COMPLETION, headers={"x-request-id": "req-sdk-1"})

    sink = UsageLedger(tmp_path / "usage.jsonl", contract=COMET)
    http = instrument(transport=httpx2.MockTransport(handler), sinks=[sink], event_log=False)
    with http:
        http.post(
            "https://api.cometapi.com/v1/chat/completions",
            json={"model": "gpt-4.1-nano", "messages": [{"role": "user", "content": "hi"}]},
        )
        # Observed inline: the line is written before post() returns.
        [line] = lines(tmp_path / "usage.jsonl")
    [line] = lines(tmp_path / "usage.jsonl")
    assert (line["request_ids"], line["response_id"], line["total_tokens"]) == (
        ["req-sdk-1"],
        "chatcmpl-9",
        10,
    )
    assert line["cost_usd"] == pytest.approx((9 * 0.08 + 1 * 0.32) / 1e6)


def test_chat_client_feeds_the_ledger_through_its_telemetry_sinks(tmp_path: Path) -> None:
    from chatcontract import ChatClient

    def handler(request: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json=COMPLETION, headers={"x-request-id": "req-client-1"})

    sink = UsageLedger(tmp_path / "usage.jsonl", contract=COMET)
    with ChatClient(
        COMET,
        environ={"COMETAPI_KEY": KEY},
        telemetry_sinks=[sink],
        transport=httpx2.MockTransport(handler),
    ) as client:
        client.complete([{"role": "user", "content": "hi"}], max_tokens=16)
    [line] = lines(tmp_path / "usage.jsonl")
    assert (line["request_ids"], line["outcome"], line["prompt_tokens"]) == (
        ["req-client-1"],
        "success",
        9,
    )
    assert KEY not in (tmp_path / "usage.jsonl").read_text()
