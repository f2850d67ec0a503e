"""``chatcontract probe``: one cycle, bad input, and the long-running loop stopped by a signal."""

from __future__ import annotations

import dataclasses
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import httpx2
import pytest
from probe_helpers import make_run

from chatcontract.cli import main
from chatcontract.cli.probe_cmd import _describe, _log_cycle, parse_interval, parse_listen
from chatcontract.contract import dump, load_preset
from chatcontract.errors import UsageError
from chatcontract.probe import ProbeStore
from chatcontract.probe.cost import CostStatus
from chatcontract.probe.runner import CycleResult, ProbeOutcome

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    monkeypatch.chdir(tmp_path)

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_once_against_the_embedded_simulator_passes(cli: Run, tmp_path: Path) -> None:
    code, out, err = cli("probe", "--once")
    assert code == 0
    assert "embedded simulator: no contract file and no API key configured" in err
    for kind in (
        "non_streaming (short)",
        "non_streaming (large)",
        "streaming",
        "usage_capture",
        "timeout_boundary",
        "invalid_request",
    ):
        assert f"pass  {kind}" in out
    assert "6/6 probes passed" in out
    assert (tmp_path / ".chatcontract" / "chatcontract.db").is_file()


def test_once_exits_1_and_shows_the_resilience_path(cli: Run) -> None:
    code, out, _ = cli(
        "probe",
        "--once",
        "--simulate",
        "--scenario",
        "server_error",
        "--probe",
        "non_streaming",
        "--db",
        "custom.db",
    )
    assert code == 1
    assert "FAIL  non_streaming (short)" in out
    assert "api_error/upstream/do_request_failed HTTP 500" in out
    assert "[retried: failed]  [fallback smaller-model: ok]" in out
    assert Path("custom.db").is_file()


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--interval", "5x"], "--interval '5x': write a duration"),
        (["--interval", "0s"], "between 1s and 24h"),
        (["--listen", "nowhere"], "--listen 'nowhere': write HOST:PORT"),
        (["--listen", "127.0.0.1:70000"], "write HOST:PORT"),
        (["--retention-days", "0"], "--retention-days must be between 1 and 3650"),
        (["--simulate", "--scenario", "no_such_fault"], "unknown scenario 'no_such_fault'"),
        (["--scenario", "slow"], "--scenario works with the simulator only"),
        (["--contract", "missing.yaml"], "missing.yaml: no such file"),
        (["--baseline", "missing.json"], "--baseline missing.json: no such file"),
        (["--db", "."], "is a directory"),
    ],
    ids=[
        "bad-interval",
        "zero-interval",
        "bad-listen",
        "bad-port",
        "bad-retention",
        "unknown-scenario",
        "scenario-without-simulate",
        "missing-contract",
        "missing-baseline",
        "db-is-a-directory",
    ],
)
def test_bad_input_is_one_line_and_exit_2(cli: Run, argv: list[str], message: str) -> None:
    code, out, err = cli("probe", "--once", *argv)
    assert code == 2
    assert message in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert out == ""


def test_a_probe_the_contract_does_not_allow_is_exit_2(cli: Run, tmp_path: Path) -> None:
    production = dataclasses.replace(load_preset("cometapi"), environment="production")
    (tmp_path / "prod.yaml").write_text(dump(production))
    code, _, err = cli(
        "probe", "--once", "--simulate", "--contract", "prod.yaml", "--probe", "invalid_request"
    )
    assert code == 2
    assert "invalid_request needs environment: staging" in err


def test_an_unknown_probe_kind_is_a_usage_error(cli: Run) -> None:
    with pytest.raises(SystemExit) as raised:
        cli("probe", "--once", "--probe", "everything")
    assert raised.value.code == 2


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("60s", 60.0), ("5m", 300.0), ("1h", 3600.0), ("1500ms", 1.5), ("90", 90.0), ("2.5s", 2.5)],
    ids=["seconds", "minutes", "hours", "milliseconds", "bare", "fraction"],
)
def test_intervals_parse(text: str, seconds: float) -> None:
    assert parse_interval(text) == seconds


def test_listen_parses_ipv4_and_ipv6() -> None:
    assert parse_listen("127.0.0.1:9464") == ("127.0.0.1", 9464)
    assert parse_listen("[::1]:0") == ("::1", 0)
    with pytest.raises(UsageError):
        parse_listen(":9464")


def _read_line_containing(stream: object, needle: str, deadline: float) -> str:
    fd = stream.fileno()  # type: ignore[attr-defined]
    buffer = b""
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if not ready:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        buffer += chunk
        for line in buffer.decode(errors="replace").splitlines():
            if needle in line:
                return line
    raise AssertionError(f"no line with {needle!r} in time; got {buffer.decode(errors='replace')}")


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["sigterm", "ctrl-c"])
def test_the_loop_serves_probes_and_stops_cleanly_on_a_signal(
    tmp_path: Path, signum: signal.Signals
) -> None:
    db = tmp_path / "loop.db"
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chatcontract",
            "probe",
            "--simulate",
            "--interval",
            "1s",
            "--listen",
            "127.0.0.1:0",
            "--db",
            str(db),
        ],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 20
        line = _read_line_containing(child.stderr, "serving http://", deadline)
        url = line.split("serving ", 1)[1].split("/ ", 1)[0]
        with httpx2.Client(base_url=url, timeout=5.0) as client:
            assert client.get("/healthz").json() == {"status": "ok"}
            probes = 0
            while probes < 11 and time.monotonic() < deadline:  # two cycles: 6 then 5 probes
                probes = client.get("/api/summary").json()["totals"]["probes"]
                time.sleep(0.05)
            assert probes >= 11
            metrics = client.get("/metrics").text
        assert 'probe_success{probe="streaming",provider="cometapi"} 1.0' in metrics
        child.send_signal(signum)
        assert child.wait(timeout=15) == 0
        assert child.stderr is not None
        rest = child.stderr.read().decode()
        assert "stopped after" in rest
        assert "Traceback" not in rest
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(timeout=10)
        if child.stderr is not None:
            child.stderr.close()
    with ProbeStore.open(db) as store:
        assert store.count_runs() >= 11


class _UnboundServer:
    """Stands in for ``AppServer``: nothing is bound (tests bind loopback only)."""

    def __init__(self, app: object, *, host: str, port: int) -> None:
        self.url = f"http://{host}:{port}"

    def __enter__(self) -> _UnboundServer:
        return self

    def __exit__(self, *exc_info: object) -> None:
        pass


@pytest.mark.parametrize(
    ("listen", "warned"),
    [("0.0.0.0:9464", True), ("192.0.2.7:9464", True), ("127.0.0.1:0", False), ("[::1]:0", False)],
    ids=["any", "an-address", "loopback", "loopback-v6"],
)
def test_serving_beyond_loopback_is_warned_about(
    cli: Run, monkeypatch: pytest.MonkeyPatch, listen: str, warned: bool
) -> None:
    from chatcontract.cli import probe_cmd

    monkeypatch.setattr(probe_cmd, "AppServer", _UnboundServer)
    monkeypatch.setattr(probe_cmd, "run_loop", lambda **_: 0)
    code, _, err = cli("probe", "--simulate", "--listen", listen)
    assert code == 0
    assert (
        "is not a loopback address and the probe's HTTP server has no authentication" in err
    ) is warned
    assert "serving http://" in err


@pytest.mark.parametrize(
    ("base_url", "warned"),
    [
        ("http://192.0.2.7/v1", True),
        ("http://llm-proxy.internal:8080/v1", True),
        ("https://192.0.2.7/v1", False),
        ("http://127.0.0.1:8787/v1", False),
        ("http://localhost:8787/v1", False),
    ],
    ids=["http-address", "http-name", "https", "http-loopback", "http-localhost"],
)
def test_a_key_sent_unencrypted_beyond_loopback_is_warned_about(
    cli: Run, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, base_url: str, warned: bool
) -> None:
    # Nothing is sent: the loop and the server are stand-ins.
    from chatcontract.cli import probe_cmd

    preset = load_preset("cometapi")
    contract = dataclasses.replace(
        preset, endpoint=dataclasses.replace(preset.endpoint, base_url=base_url)
    )
    (tmp_path / "chatcontract.yaml").write_text(dump(contract), encoding="utf-8")
    monkeypatch.setenv("COMETAPI_KEY", "sk-test-not-a-real-key-0000")
    monkeypatch.setattr(probe_cmd, "AppServer", _UnboundServer)
    monkeypatch.setattr(probe_cmd, "run_loop", lambda **_: 0)
    code, _, err = cli("probe", "--listen", "127.0.0.1:0")
    assert code == 0, err
    assert ("the API key and every probe travel unencrypted" in err) is warned
    assert "sk-test-not-a-real-key" not in err


def test_a_probe_line_shows_the_verdict_attempts_latency_and_names_the_large_prompt(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A 429 answered in 3 ms, then a retry that passed in 850 ms: "pass ... 3 ms" was the
    # failed attempt's latency. The daemon's cycle line said "failed: non_streaming,
    # non_streaming" for the short and the large prompt.
    first = make_run(0.0, ok=False, kind="http", category="rate_limit", total_ms=3.0)
    retry = make_run(1.0, attempt=2, total_ms=850.0)
    fallback = make_run(2.0, route="smaller-model", attempt=3, total_ms=5.0)
    passed = ProbeOutcome(
        probe="non_streaming",
        prompt_size="short",
        ok=True,
        failure=None,
        runs=(first, retry),
        retried=True,
        retry_ok=True,
    )
    failed = ProbeOutcome(
        probe="non_streaming",
        prompt_size="large",
        ok=False,
        failure=None,
        runs=(first, fallback),
        fallback_route="smaller-model",
        fallback_ok=True,
    )
    assert _describe(passed).startswith("pass  non_streaming (short)  850 ms")
    assert _describe(failed).startswith("FAIL  non_streaming (large)  3 ms")
    cycle = CycleResult(
        at=0.0,
        index=0,
        outcomes=(passed, dataclasses.replace(passed, ok=False), failed),
        skipped=(),
        paused=False,
        drift=(),
        cost=CostStatus(day="1970-01-01", spent_usd=0.0, cap_usd=1.0),
    )
    with ProbeStore.open(":memory:") as store:
        _log_cycle(cycle, store)
    assert "1/3 passed (failed: non_streaming, non_streaming (large))" in capsys.readouterr().err
