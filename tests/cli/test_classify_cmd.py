import io
import json
import os
import sys

import pytest

from chatcontract.failures import FAILURE_KEYS

E5 = b'{"error":{"code":"model_not_found","message":"no available channel for group default and model sora-2-all (distributor) (request id: 20260205132859798638387SIHCnxzJ)","type":"comet_api_error"}}'
OK = b'{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4.1-nano-2025-04-14","choices":[{"index":0,"message":{"role":"assistant","content":"pong"},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}'


def test_classify_json_has_exactly_the_documented_keys(cli, tmp_path):
    body = tmp_path / "body.json"
    body.write_bytes(E5)
    code, out, _ = cli("classify", "--status", "503", "--body-file", str(body), "--format", "json")
    assert code == 1
    data = json.loads(out)
    assert tuple(data) == FAILURE_KEYS
    assert data["category"] == "model" and data["retry"] == "none"
    assert data["request_id"] == "20260205132859798638387SIHCnxzJ"


def test_classify_success_prints_null_and_exits_0(cli, tmp_path):
    body = tmp_path / "ok.json"
    body.write_bytes(OK)
    code, out, _ = cli("classify", "--status", "200", "--body-file", str(body), "--format", "json")
    assert code == 0
    assert json.loads(out) is None
    code, out, _ = cli("classify", "--status", "200", "--body-file", str(body))
    assert code == 0 and out.startswith("success")


def test_classify_reads_the_body_from_stdin_and_headers(cli, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"")))
    code, out, _ = cli(
        "classify",
        "--status",
        "429",
        "--body-file",
        "-",
        "--header",
        "X-Oneapi-Request-Id: 2026abc",
    )
    assert code == 1
    assert "rate_limit" in out and "2026abc" in out


def test_classify_with_the_openai_preset(cli, tmp_path):
    body = tmp_path / "b.json"
    body.write_bytes(
        b'{"error":{"message":"nope","type":"invalid_request_error","param":null,"code":"model_not_found"}}'
    )
    code, out, _ = cli(
        "classify",
        "--status",
        "404",
        "--body-file",
        str(body),
        "--preset",
        "openai",
        "--format",
        "json",
    )
    assert code == 1 and json.loads(out)["category"] == "model"


def test_classify_bad_arguments_are_one_line_exit_2(cli, tmp_path):
    body = tmp_path / "ok.json"
    body.write_bytes(OK)
    given = ("--body-file", str(body))
    for argv, says in (
        (("classify", "--status", "200", "--header", "no-colon", *given), "Name: value"),
        (("classify", "--status", "999", *given), "between 100 and 599"),
        (
            ("classify", "--status", "200", "--body-file", str(tmp_path / "missing")),
            "cannot be read",
        ),
        (("classify", "--status", "200", "--preset", "nope", *given), "cometapi, openai"),
        (("classify", "--status", "200", "--max-tokens", "-5", *given), "from 1 to 100000000"),
        (("classify", "--status", "200", "--max-tokens", "1" * 30, *given), "from 1 to 100000000"),
    ):
        code, _, err = cli(*argv)
        assert code == 2, argv
        assert err.count("\n") == 1 and "Traceback" not in err
        assert says in err


CHUNK = 'data: {"id":"c","model":"m","choices":[{"index":0,"delta":{"content":"po"},"finish_reason":null}]}\n\n'
FINISH = 'data: {"id":"c","model":"m","choices":[{"index":0,"delta":{"content":"ng"},"finish_reason":"stop"}]}\n\n'
USAGE = 'data: {"id":"c","model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}\n\n'
COMPLETE_SSE = (CHUNK + FINISH + USAGE + "data: [DONE]\n\n").encode()
CUT_SSE = CHUNK.encode()


def test_classify_without_a_body_is_a_one_line_usage_error(cli):
    code, out, err = cli("classify", "--status", "429")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and "--body-file" in err and "Traceback" not in err


def test_classify_an_empty_body_given_explicitly(cli, tmp_path):
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    code, out, _ = cli("classify", "--status", "429", "--body-file", str(empty), "--format", "json")
    assert code == 1 and json.loads(out)["category"] == "rate_limit"


def test_classify_a_complete_captured_stream_by_its_content_type(cli, tmp_path):
    body = tmp_path / "stream.sse"
    body.write_bytes(COMPLETE_SSE)
    argv = ("classify", "--status", "200", "--body-file", str(body))
    code, out, _ = cli(*argv, "--header", "Content-Type: text/event-stream")
    assert code == 0 and out.startswith("success")
    code, out, _ = cli(*argv)  # without the header it is not a JSON completion
    assert code == 1 and "invalid_json" in out


@pytest.mark.parametrize(
    ("extra", "body"),
    [
        (("--header", "content-type: text/event-stream; charset=utf-8"), CUT_SSE),
        (("--stream",), CUT_SSE),
        (("--stream",), CUT_SSE + b"data: [DONE]\n\n"),
    ],
    ids=["header", "flag", "done-without-finish"],
)
def test_classify_a_cut_captured_stream_gives_the_truncation_code(cli, tmp_path, extra, body):
    path = tmp_path / "cut.sse"
    path.write_bytes(body)
    code, out, _ = cli(
        "classify", "--status", "200", "--body-file", str(path), "--format", "json", *extra
    )
    assert code == 1
    data = json.loads(out)
    assert (data["kind"], data["category"]) == ("parser", "contract")
    assert data["code"] == ("stream_truncated" if b"[DONE]" in body else "stream_cut")


def test_classify_a_captured_stream_from_stdin(cli, monkeypatch):
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(COMPLETE_SSE)))
    code, out, _ = cli("classify", "--status", "200", "--body-file", "-", "--stream")
    assert code == 0 and out.startswith("success")


NO_USAGE_SSE = (CHUNK + FINISH + "data: [DONE]\n\n").encode()


@pytest.mark.parametrize(
    ("extra", "code", "words"),
    [((), 0, "success"), (("--usage-asked",), 1, "missing_usage")],
    ids=["not-asked", "asked"],
)
def test_a_captured_stream_without_usage_is_judged_by_what_was_asked(
    cli, tmp_path, extra, code, words
):
    path = tmp_path / "no-usage.sse"
    path.write_bytes(NO_USAGE_SSE)
    got, out, _ = cli("classify", "--status", "200", "--body-file", str(path), "--stream", *extra)
    assert got == code
    assert words in out


def test_a_body_larger_than_the_limit_is_refused_not_cut(cli, tmp_path, monkeypatch):
    from chatcontract.cli import classify_cmd

    monkeypatch.setattr(classify_cmd, "_BODY_LIMIT", len(OK) - 1)
    body = tmp_path / "ok.json"
    body.write_bytes(OK)

    code, out, err = cli("classify", "--status", "200", "--body-file", str(body))

    assert code == 2 and out == ""
    assert "larger than" in err and "a body cut short" in err and "Traceback" not in err


def test_an_endless_body_file_is_refused_after_the_limit(cli):
    code, _, err = cli("classify", "--status", "200", "--body-file", "/dev/zero")

    assert code == 2 and "/dev/zero: larger than 16 MiB" in err


def test_a_body_file_that_is_a_fifo_without_a_writer_is_an_empty_body(cli, tmp_path):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)

    code, out, _ = cli("classify", "--status", "200", "--body-file", str(fifo))

    assert code == 1 and "empty_body" in out
