import os
import subprocess
import sys

import pytest

from chatcontract import __version__
from chatcontract.cli import COMMANDS


def test_version(cli):
    code, out, _ = cli("--version")
    assert code == 0
    assert out.strip() == f"chatcontract {__version__}"


def test_version_among_other_words_is_answered_by_the_parser(cli, capsys):
    import pytest

    with pytest.raises(SystemExit) as exc:
        cli("--version", "--help")
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"chatcontract {__version__}"


def test_help_lists_every_command_with_one_line(capsys):
    result = subprocess.run(
        [sys.executable, "-m", "chatcontract", "--help"], capture_output=True, text=True, check=True
    )
    for command in ("init", "contract", "validate", "classify", "simulate"):
        lines = [
            line for line in result.stdout.splitlines() if line.strip().startswith(command + " ")
        ]
        assert lines, f"{command} missing from --help"
        assert len(lines[0].split(None, 1)) == 2, f"{command} has no one-line description"


def test_help_lists_every_command_with_its_help_line():
    result = subprocess.run(
        [sys.executable, "-m", "chatcontract", "--help"], capture_output=True, text=True, check=True
    )
    words = result.stdout.split()
    for command, (_, help_line) in COMMANDS.items():
        assert command in words, f"{command} missing from --help"
        assert " ".join(help_line.split()) in " ".join(words), f"{command} has no help line"


def test_unknown_command_is_one_line_and_exit_2(cli, capsys):
    import pytest

    with pytest.raises(SystemExit) as exc:
        cli("frobnicate")
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "invalid choice" in err


def test_no_command_prints_help_and_exits_2(cli):
    code, out, _ = cli()
    assert code == 2
    assert "COMMAND" in out


@pytest.mark.parametrize(
    "argv",
    [["contract", "schema"], ["simulate", "--list-scenarios"], ["init", "--path", "new.yaml"]],
    ids=["schema", "list-scenarios", "small-output"],
)
def test_output_to_a_reader_that_left_ends_quietly(argv, tmp_path):
    """``chatcontract ... | head -1``: the reader is gone before the command writes; no
    traceback, no 'Exception ignored', exit 141 as a shell reports a filter stopped by SIGPIPE."""
    read, write = os.pipe()
    os.close(read)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "chatcontract", *argv],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            cwd=tmp_path,
            timeout=60,
            check=False,
        )
    finally:
        os.close(write)
    assert result.stderr == ""
    assert result.returncode == 141


def test_a_reader_that_goes_away_ends_the_command_quietly(tmp_path):
    contract = tmp_path / "c.yaml"
    document = "\n".join(f"unknown_{n}: 1" for n in range(20_000))  # ~1.5 MB of lint output
    contract.write_text("version: 1\n" + document + "\n")
    command = [sys.executable, "-m", "chatcontract", "contract", "lint", "--path", str(contract)]
    with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as process:
        assert process.stdout is not None and process.stderr is not None
        process.stdout.read(100)
        process.stdout.close()  # as `| head -c 100` does
        err = process.stderr.read().decode()
        code = process.wait(timeout=60)
    assert "Traceback" not in err and "BrokenPipeError" not in err
    assert code == 141


def test_an_error_message_quoting_a_key_prints_it_redacted(monkeypatch, capsys):
    from chatcontract.cli import contract_cmds, main
    from chatcontract.errors import ConfigError

    def failing(_args):
        raise ConfigError("http://h/v1/sk-proj-AbCdEf0123456789AbCdEf0123: unreachable")

    monkeypatch.setattr(contract_cmds, "run_schema", failing)
    assert main(["contract", "schema"]) == 2
    assert capsys.readouterr().err == "chatcontract: error: http://h/v1/***: unreachable\n"
