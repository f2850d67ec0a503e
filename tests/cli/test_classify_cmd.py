import io
import json
import sys

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
    for argv in (
        ("classify", "--status", "200", "--header", "no-colon"),
        ("classify", "--status", "999"),
        ("classify", "--status", "200", "--body-file", str(tmp_path / "missing")),
        ("classify", "--status", "200", "--preset", "nope"),
    ):
        code, _, err = cli(*argv)
        assert code == 2, argv
        assert err.count("\n") == 1 and "Traceback" not in err
