"""``chatcontract baseline accept`` and ``chatcontract drift`` end to end on the simulator."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from probe_helpers import target_for

from chatcontract.checks.context import CheckContext, SuiteOptions
from chatcontract.cli import main
from chatcontract.drift import Baseline, observe, write_last_validate
from chatcontract.simulator import SimulatorServer

Run = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    monkeypatch.chdir(tmp_path)

    def run(*argv: str) -> tuple[int, str, str]:
        code = main(list(argv))
        out, err = capsys.readouterr()
        return code, out, err

    return run


def test_accept_from_probes_then_no_drift_then_drift(cli: Run, tmp_path: Path) -> None:
    assert cli("probe", "--once")[0] == 0
    code, out, _ = cli("baseline", "accept", "--from", "probe")
    assert code == 0
    assert "baseline written to chatcontract.baseline.json" in out
    assert "finish reasons: stop" in out
    baseline = json.loads((tmp_path / "chatcontract.baseline.json").read_text())
    assert baseline["source"] == "probe"
    assert "500" in baseline["observed"]["error_bodies"]  # the invalid_request probe's answer

    code, out, _ = cli("drift")
    assert (code, out.startswith("no drift")) == (0, True)

    cli("probe", "--once", "--simulate", "--scenario", "drift_extra_field")
    code, out, _ = cli("drift")
    assert code == 1
    assert "new_field" in out and "response: +x_chatcontract_drift:object" in out
    assert "usage_shape" in out

    code, out, _ = cli("drift", "--format", "json")
    data = json.loads(out)
    assert code == 1 and data["drift"] is True
    assert {
        "kind": "new_field",
        "section": "stream",
        "detail": "stream chunk: +x_chatcontract_drift:object",
    } in data["differences"]


def test_accept_from_the_last_validate_run(
    cli: Run, tmp_path: Path, simulator: SimulatorServer
) -> None:
    ctx = CheckContext.open(target_for(simulator), SuiteOptions())
    try:
        ctx.send(ctx.fixture())
        observation = observe(ctx.exchanges)
    finally:
        ctx.close()
    write_last_validate(
        {"verdict": "pass"}, observation, tmp_path / ".chatcontract" / "last-validate.json"
    )
    code, out, _ = cli("baseline", "accept", "--baseline", "b.json")
    assert code == 0
    assert "from .chatcontract/last-validate.json (1 responses)" in out
    loaded = Baseline.load(tmp_path / "b.json")
    assert loaded.source == "validate"
    assert loaded.observation == observation
    assert loaded.contract_name is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["drift"], "chatcontract.baseline.json: no baseline; record one"),
        (["baseline", "accept"], "run 'chatcontract validate' first (or use --from probe)"),
        (["baseline", "accept", "--from", "probe"], "no probe history"),
        (["baseline", "accept", "--from", "probe", "--hours", "0"], "--hours must be between"),
        (["baseline", "accept", "--contract", "nope.yaml"], "nope.yaml: no such contract file"),
    ],
    ids=["no-baseline", "no-validate-run", "no-probe-history", "bad-hours", "missing-contract"],
)
def test_bad_input_is_one_line_and_exit_2(cli: Run, argv: list[str], message: str) -> None:
    code, out, err = cli(*argv)
    assert (code, out) == (2, "")
    assert message in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_drift_without_probe_history_is_exit_2(cli: Run, tmp_path: Path) -> None:
    Baseline.accept(observe([]), source="validate").save(tmp_path / "chatcontract.baseline.json")
    code, _, err = cli("drift")
    assert code == 2
    assert "no probe history" in err


def test_baseline_without_an_action_shows_help_and_exit_2(cli: Run) -> None:
    code, _, err = cli("baseline")
    assert code == 2
    assert "accept" in err
