"""`chatcontract validate`: --timeout-deadline-ms, the preflight, and the fault checks end to end."""

from __future__ import annotations

import json
import socket

import pytest

from fast_server import fast_server

KEY = "sk-validate-cli-secret-0123456789"
FAULT_CHECKS = ("--check", "client_timeout", "--check", "stream_interruption")


@pytest.fixture(autouse=True)
def _scratch(tmp_path, monkeypatch):
    """No ./chatcontract.yaml, no recorded run left behind in the repository."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def with_key(monkeypatch):
    monkeypatch.setenv("COMETAPI_KEY", KEY)


@pytest.fixture
def closed_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def checks_of(out):
    return {check["id"]: check for check in json.loads(out)["checks"]}


def test_the_option_is_on_the_command_line(cli, capsys):
    with pytest.raises(SystemExit):
        cli("validate", "--help")
    assert "--timeout-deadline-ms MS" in capsys.readouterr().out


def test_the_deadline_given_is_the_one_client_timeout_proves(cli):
    code, out, _ = cli(
        "validate", "--simulate", "--check", "client_timeout", "--timeout-deadline-ms", "80",
        "--format", "json", "--no-record",
    )  # fmt: skip
    result = checks_of(out)["client_timeout"]
    assert code == 0
    assert result["status"] == "pass"
    assert result["evidence"]["deadline_ms"] == 80


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "--timeout-deadline-ms 0: must be a number of milliseconds between 10 and 60000"),
        ("-5", "--timeout-deadline-ms -5: must be a number of milliseconds"),
        ("1e30", "--timeout-deadline-ms 1e30: must be a number of milliseconds"),
        ("nan", "--timeout-deadline-ms nan: must be a number of milliseconds"),
        ("inf", "--timeout-deadline-ms inf: must be a number of milliseconds"),
        ("soon", "--timeout-deadline-ms soon: must be a number of milliseconds"),
    ],
    ids=["zero", "negative", "huge", "nan", "inf", "text"],
)
def test_an_absurd_deadline_is_one_line_and_exit_2(cli, value, message):
    code, out, err = cli("validate", "--simulate", "--timeout-deadline-ms", value)
    assert code == 2
    assert message in err
    assert "write e.g. --timeout-deadline-ms 250" in err
    assert err.count("\n") == 1
    assert out == ""


def test_a_refused_endpoint_is_one_preflight_line_and_exit_1(cli, with_key, closed_port):
    code, out, err = cli("validate", "--base-url", f"http://127.0.0.1:{closed_port}/v1")
    assert code == 1
    assert (
        err
        == f"chatcontract: cannot reach 127.0.0.1:{closed_port}: connection refused; no check ran\n"
    )
    assert out == ""


def test_an_unresolvable_endpoint_is_one_preflight_line_and_exit_1(cli, with_key, tmp_path):
    code, out, err = cli(
        "validate", "--base-url", "https://api.chatcontract-test.invalid/v1", "--format", "json"
    )
    assert code == 1
    assert err.startswith("chatcontract: cannot reach api.chatcontract-test.invalid: DNS failed")
    assert err.count("\n") == 1
    assert KEY not in out + err
    assert not (tmp_path / ".chatcontract").exists()  # nothing ran, nothing recorded


def test_offline_checks_need_no_preflight(cli, with_key, closed_port):
    code, out, _ = cli(
        "validate", "--base-url", f"http://127.0.0.1:{closed_port}/v1",
        "--check", "contract_lint", "--format", "json", "--no-record",
    )  # fmt: skip
    assert code == 0
    assert list(checks_of(out)) == ["contract_lint"]


def test_the_fault_checks_pass_on_a_1_ms_server(cli, with_key):
    with fast_server() as server:
        code, out, err = cli(
            "validate", "--base-url", server.base_url, *FAULT_CHECKS, "--format", "json",
            "--no-record",
        )  # fmt: skip
    checks = checks_of(out)
    assert code == 0, err
    assert {cid: c["status"] for cid, c in checks.items()} == {
        "client_timeout": "pass",
        "stream_interruption": "pass",
    }
    assert json.loads(out)["target"]["simulated"] is False
    assert KEY not in out + err


def test_the_fault_checks_pass_on_the_simulator(cli):
    code, out, err = cli("validate", "--simulate", *FAULT_CHECKS, "--format", "json", "--no-record")
    assert code == 0, err
    assert {c["status"] for c in checks_of(out).values()} == {"pass"}


@pytest.mark.parametrize(("columns", "width"), [(None, 120), ("100", 100)])
def test_a_piped_table_keeps_each_failure_code_on_one_line(cli, monkeypatch, columns, width):
    """Piped or redirected (a CI log), the table is 120 columns wide unless ``$COLUMNS``
    says otherwise: at rich's default 80, ``observed`` folded ``transport/timeout/read_timeout``
    as ``read_timeou`` / ``t`` on two lines."""
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)
    code, out, _ = cli("validate", "--simulate", *FAULT_CHECKS, "--no-record")
    assert code == 0
    lines = out.splitlines()
    assert max(len(line) for line in lines) == width  # the rule under the head spans it
    assert "transport/timeout/read_timeout" in out  # whole, wherever the row wraps
    assert "transport/network/stream_dropped" in out
