"""``chatcontract baseline accept`` and ``chatcontract drift`` end to end.

The embedded simulator is a *simulated* target; a simulator server named in a contract file
(with its key in the environment) is a *real* one, as a provider's endpoint would be.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from probe_helpers import make_run, real_key, target_for, write_real_contract

from chatcontract.checks.context import CheckContext, SuiteOptions
from chatcontract.cli import build_parser, main
from chatcontract.cli.drift_cmd import EXIT_REFUSED
from chatcontract.drift import Baseline, observe, write_last_validate
from chatcontract.probe import ProbeStore
from chatcontract.simulator import SimulatorServer

Run = Callable[..., tuple[int, str, str]]
RECORD = Path(".chatcontract") / "last-validate.json"


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    monkeypatch.chdir(tmp_path)

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def real(
    simulator: SimulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> SimulatorServer:
    """./chatcontract.yaml names ``simulator`` and its key is set: a real target."""
    write_real_contract(tmp_path / "chatcontract.yaml", simulator)
    monkeypatch.setenv("COMETAPI_KEY", simulator.api_key)
    return simulator


def _report(*, verdict: str = "pass", simulated: bool = False, base_url: str) -> dict[str, Any]:
    return {
        "verdict": verdict,
        "summary": {
            "passed": 9 if verdict == "pass" else 7,
            "failed": 0 if verdict == "pass" else 2,
        },
        "target": {"base_url": base_url, "simulated": simulated, "model": "gpt-4.1-nano"},
    }


def _observation(server: SimulatorServer) -> Any:
    ctx = CheckContext.open(target_for(server), SuiteOptions())
    try:
        ctx.send(ctx.fixture())
        return observe(ctx.exchanges)
    finally:
        ctx.close()


def _one_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


# -- the same source ---------------------------------------------------------------------------


def test_drift_and_baseline_accept_default_to_the_same_source() -> None:
    parser = build_parser()
    accept = parser.parse_args(["baseline", "accept"])
    drift = parser.parse_args(["drift"])
    assert accept.source == drift.source == "validate"


def test_drift_right_after_accept_with_the_defaults_finds_none(
    cli: Run, real: SimulatorServer
) -> None:
    write_last_validate(_report(base_url=real.base_url), _observation(real), RECORD)
    assert cli("baseline", "accept")[0] == 0
    code, out, _ = cli("drift")
    assert code == 0
    assert out.startswith("no drift: 1 responses from .chatcontract/last-validate.json")


# -- simulated runs and real runs never mix ----------------------------------------------------


def test_accept_refuses_simulated_probes_unless_forced(cli: Run, tmp_path: Path) -> None:
    assert cli("probe", "--once")[0] == 0  # no contract, no key: the embedded simulator
    code, out, err = cli("baseline", "accept", "--from", "probe")
    assert (code, out) == (EXIT_REFUSED, "")
    line = _one_line(err)
    assert "refused" in line and "embedded simulator" in line and "--force" in line
    assert not (tmp_path / "chatcontract.baseline.json").exists()

    code, out, _ = cli("baseline", "accept", "--from", "probe", "--force")
    assert code == 0
    assert "target: simulated model=gpt-4.1-nano; verdict: pass (forced:" in out
    written = json.loads((tmp_path / "chatcontract.baseline.json").read_text())
    assert written["target"]["simulated"] is True
    assert (written["verdict"], written["forced"]) == ("pass", True)


def test_simulated_drift_is_seen_against_a_simulated_baseline(cli: Run, tmp_path: Path) -> None:
    assert cli("probe", "--once")[0] == 0
    assert cli("baseline", "accept", "--from", "probe", "--force")[0] == 0
    baseline = json.loads((tmp_path / "chatcontract.baseline.json").read_text())
    assert "500" in baseline["observed"]["error_bodies"]  # the invalid_request probe's answer

    code, out, _ = cli("drift", "--from", "probe")
    assert (code, out.startswith("no drift")) == (0, True)

    cli("probe", "--once", "--simulate", "--scenario", "drift_extra_field")
    code, out, _ = cli("drift", "--from", "probe")
    assert code == 1
    assert "new_field" in out and "response: +x_chatcontract_drift:object" in out
    assert "usage_shape" in out

    code, out, _ = cli("drift", "--from", "probe", "--format", "json")
    data = json.loads(out)
    assert code == 1 and data["drift"] is True
    assert data["target"] == data["baseline_target"] == "simulated model=gpt-4.1-nano"
    assert {
        "kind": "new_field",
        "section": "stream",
        "detail": "stream chunk: +x_chatcontract_drift:object",
    } in data["differences"]


def test_a_real_target_ignores_simulated_probe_rows(
    cli: Run, tmp_path: Path, real: SimulatorServer
) -> None:
    assert cli("probe", "--once", "--probe", "non_streaming")[0] == 0  # real
    # A simulated run that drifts, into the same store.
    cli("probe", "--once", "--simulate", "--scenario", "drift_extra_field")

    code, out, _ = cli("baseline", "accept", "--from", "probe")
    assert code == 0, out
    assert f"target: {real_key(real)}; verdict: pass" in out
    written = json.loads((tmp_path / "chatcontract.baseline.json").read_text())
    assert written["target"]["id"] == real_key(real)
    assert written["forced"] is False
    assert "x_chatcontract_drift:object" not in json.dumps(written["observed"])

    code, out, _ = cli("drift", "--from", "probe")
    assert code == 0, out
    assert f"probes of {real_key(real)}" in out


def test_drift_from_probes_says_which_rows_it_did_not_count(
    cli: Run, tmp_path: Path, real: SimulatorServer
) -> None:
    cli("probe", "--once", "--simulate", "--probe", "non_streaming")
    Baseline.accept(_observation(real), source="validate").save(
        tmp_path / "chatcontract.baseline.json"
    )
    code, out, err = cli("drift", "--from", "probe")
    assert (code, out) == (2, "")
    line = _one_line(err)
    assert f"probes of {real_key(real)}" in line
    assert "no responses observed; not counted: 2 simulated run(s)" in line


def test_drift_refuses_a_validate_run_of_another_target(
    cli: Run, tmp_path: Path, real: SimulatorServer
) -> None:
    observation = _observation(real)
    write_last_validate(_report(base_url=real.base_url), observation, RECORD)
    assert cli("baseline", "accept")[0] == 0
    write_last_validate(
        _report(base_url="http://127.0.0.1:1/v1", simulated=True), observation, RECORD
    )
    code, out, err = cli("drift")
    assert (code, out) == (2, "")
    line = _one_line(err)
    assert "observed simulated model=gpt-4.1-nano" in line
    assert f"accepted from {real_key(real)}" in line


# -- baseline accept from a validate run -------------------------------------------------------


def test_accept_records_the_target_and_the_verdict_of_a_passing_real_run(
    cli: Run, tmp_path: Path, real: SimulatorServer
) -> None:
    observation = _observation(real)
    write_last_validate(_report(base_url=real.base_url), observation, RECORD)
    code, out, _ = cli("baseline", "accept", "--baseline", "b.json")
    assert code == 0
    assert "from .chatcontract/last-validate.json (1 responses)" in out
    loaded = Baseline.load(tmp_path / "b.json")
    assert loaded.source == "validate"
    assert loaded.observation == observation
    assert loaded.target is not None and loaded.target.key == real_key(real)
    assert (loaded.verdict, loaded.forced) == ("pass", False)
    assert loaded.contract_name == "cometapi-chat-completions"


@pytest.mark.parametrize(
    ("report", "reason"),
    [
        ({"verdict": "fail"}, "the validate run failed (2 check(s) failed)"),
        ({"simulated": True}, "observed the embedded simulator, not a real endpoint"),
        (None, "does not say which target it ran against"),
    ],
    ids=["failed", "simulated", "old-record-without-target"],
)
def test_accept_refuses_a_failed_simulated_or_unattributed_run(
    cli: Run,
    tmp_path: Path,
    simulator: SimulatorServer,
    report: dict[str, Any] | None,
    reason: str,
) -> None:
    if report is None:  # as an older chatcontract wrote it: no target anywhere
        document = {"report": {"verdict": "pass"}, "observed": _observation(simulator).to_dict()}
        RECORD.parent.mkdir(parents=True)
        RECORD.write_text(json.dumps(document))
    else:
        full = _report(base_url=simulator.base_url, **report)
        write_last_validate(full, _observation(simulator), RECORD)
    code, out, err = cli("baseline", "accept")
    assert (code, out) == (EXIT_REFUSED, "")
    assert reason in _one_line(err)
    assert not (tmp_path / "chatcontract.baseline.json").exists()

    code, out, _ = cli("baseline", "accept", "--force")
    assert code == 0
    assert Baseline.load(tmp_path / "chatcontract.baseline.json").forced is True


def test_an_old_record_with_the_made_up_model_never_makes_it_a_seen_model(
    cli: Run, tmp_path: Path, simulator: SimulatorServer
) -> None:
    observed = _observation(simulator).to_dict()
    observed["models"] = sorted([*observed["models"], "chatcontract-no-such-model-0"])
    RECORD.parent.mkdir(parents=True)
    RECORD.write_text(
        json.dumps({"report": _report(base_url=simulator.base_url), "observed": observed})
    )
    assert cli("baseline", "accept", "--force")[0] == 0
    models = json.loads((tmp_path / "chatcontract.baseline.json").read_text())["observed"]["models"]
    assert models and "chatcontract-no-such-model-0" not in models


# -- bad input -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["drift"], "chatcontract.baseline.json: no baseline; record one"),
        (["baseline", "accept"], "run 'chatcontract validate' first (or use --from probe)"),
        (["baseline", "accept", "--from", "probe"], "no probe history"),
        (["baseline", "accept", "--from", "probe", "--hours", "0"], "--hours must be between"),
        (["baseline", "accept", "--contract", "nope.yaml"], "nope.yaml: no such contract file"),
        (["baseline", "accept", "--baseline", "."], "--baseline . is a directory"),
        (["baseline", "accept", "--baseline", "no/such/b.json"], "the directory no/such"),
    ],
    ids=[
        "no-baseline",
        "no-validate-run",
        "no-probe-history",
        "bad-hours",
        "missing-contract",
        "baseline-is-a-directory",
        "baseline-directory-missing",
    ],
)
def test_bad_input_is_one_line_and_exit_2(cli: Run, argv: list[str], message: str) -> None:
    code, out, err = cli(*argv)
    assert (code, out) == (2, "")
    assert message in _one_line(err)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc is Linux's")
def test_a_baseline_in_a_read_only_place_is_refused_before_any_work(cli: Run) -> None:
    # No validate run exists: the write check comes first, so that is not what is reported.
    code, out, err = cli("baseline", "accept", "--baseline", "/proc/chatcontract.baseline.json")
    assert (code, out) == (2, "")
    line = _one_line(err)
    assert "--baseline /proc/chatcontract.baseline.json: cannot write in /proc" in line
    assert "last-validate" not in line


def test_drift_without_probe_history_is_exit_2(cli: Run, tmp_path: Path) -> None:
    Baseline.accept(observe([]), source="validate").save(tmp_path / "chatcontract.baseline.json")
    code, _, err = cli("drift", "--from", "probe")
    assert code == 2
    assert "no probe history" in err


@pytest.mark.parametrize("kind", ["empty-file", "another-database"])
@pytest.mark.parametrize("action", [["drift"], ["baseline", "accept"]], ids=["drift", "accept"])
def test_a_db_that_is_not_a_probe_store_is_refused_and_left_unchanged(
    cli: Run, tmp_path: Path, kind: str, action: list[str]
) -> None:
    Baseline.accept(observe([]), source="validate").save(tmp_path / "chatcontract.baseline.json")
    db = tmp_path / "other.db"
    if kind == "empty-file":
        db.touch()
    else:
        with contextlib.closing(sqlite3.connect(db)) as conn:
            conn.execute("CREATE TABLE notes (text)")
            conn.commit()
    before = db.read_bytes()
    code, _, err = cli(*action, "--from", "probe", "--db", str(db))
    assert code == 2
    assert "no probe history (not a store 'chatcontract probe' wrote)" in err
    assert db.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("other.db")) == [
        "other.db"
    ]


def test_baseline_without_an_action_shows_help_and_exit_2(cli: Run) -> None:
    code, _, err = cli("baseline")
    assert code == 2
    assert "accept" in err


@pytest.mark.skipif(
    not hasattr(os, "geteuid") or os.geteuid() != 0 or shutil.which("setpriv") is None,
    reason="needs root and setpriv (util-linux) to act as another user",
)
def test_a_store_this_user_cannot_read_is_not_called_missing_history() -> None:
    # The probe runs as a service user; an SRE runs drift as another user, the probe stopped
    # (no -shm left): SQLite cannot read the WAL store without creating its -shm, and drift
    # said "no probe history ... run 'chatcontract probe --once' first" of a store with runs.
    as_nobody = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    reach = [*as_nobody, sys.executable, "-c", "import chatcontract"]
    if subprocess.run(reach, capture_output=True, timeout=60, check=False, cwd="/").returncode:
        pytest.skip("this checkout is not readable by the user nobody")
    folder = Path(tempfile.mkdtemp(prefix="chatcontract-service-"))
    try:
        folder.chmod(0o755)  # readable, not writable, by others
        db = folder / "probe.db"
        with ProbeStore.open(db) as store:
            store.record_run(make_run(time.time()))
        db.chmod(0o644)
        baseline = folder / "chatcontract.baseline.json"
        Baseline.accept(observe([]), source="validate").save(baseline)
        baseline.chmod(0o644)
        result = subprocess.run(
            [*as_nobody, sys.executable, "-m", "chatcontract", "drift", "--from", "probe",
             "--db", str(db), "--baseline", str(baseline)],
            capture_output=True, text=True, timeout=60, check=False, cwd="/",
        )  # fmt: skip
        assert result.returncode == 2, result.stderr
        line = _one_line(result.stderr)
        assert "no probe history" not in line
        assert f"{db}: cannot read the probe store" in line
        assert "run as the user the probe runs as" in line
    finally:
        shutil.rmtree(folder)
