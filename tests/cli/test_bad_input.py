"""Bad input through the real entry point: one line on stderr, exit 2, nothing sent, no secret.

Each command is run through ``chatcontract.cli.main`` (and a few through ``python -m
chatcontract``). A listening socket on 127.0.0.1 stands where the provider would be: a bad
value must be refused before anything connects to it.
"""

import errno
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from chatcontract.cli import main
from chatcontract.contract.presets import preset_document

SECRET = "s3cret-pw-never-printed"


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A socket nobody should connect to: ``connected(sock)`` says whether anybody did."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.setblocking(False)
    yield sock
    sock.close()


def _connected(sock: socket.socket) -> bool:
    try:
        conn, _ = sock.accept()
    except BlockingIOError:
        return False
    conn.close()
    return True


def _url(sock: socket.socket) -> str:
    return f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COMETAPI_KEY", "sk-test-key-for-bad-input")
    return tmp_path


def _contract(directory: Path, **changes: object) -> str:
    document = preset_document("cometapi")
    for dotted, value in changes.items():
        *parents, leaf = dotted.split("__")
        node = document
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    path = directory / "contract.yaml"
    path.write_text(yaml.safe_dump(document), encoding="utf-8")
    return str(path)


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _one_error_line(code: int, out: str, err: str) -> str:
    assert code == 2, (code, out, err)
    assert "Traceback" not in out + err
    assert err.count("\n") == 1 and err.startswith("chatcontract: error: "), err
    assert SECRET not in out + err
    return err


# Every command that reads a contract file, as (id, argv with {contract} and {dir}).
COMMANDS = {
    "validate": ["validate", "--contract", "{contract}"],
    "validate-simulate": ["validate", "--contract", "{contract}", "--simulate"],
    "probe": ["probe", "--once", "--contract", "{contract}", "--db", "{dir}/p.db"],
    "contract-show": ["contract", "show", "--path", "{contract}"],
    "classify": [
        "classify",
        "--contract",
        "{contract}",
        "--status",
        "500",
        "--body-file",
        "/dev/null",
    ],
    "checklist": ["checklist", "--contract", "{contract}"],
    "alerts": ["alerts", "--contract", "{contract}", "--output", "-"],
    "dashboards": ["dashboards", "--contract", "{contract}", "--output", "-"],
}

BAD_BASE_URLS = {
    "colon-garbage": (":87a7", "is not an http(s) URL"),
    "open-ipv6": ("http://[::1", "Invalid IPv6 URL"),
    "port-too-big": ("http://host:99999", "Port out of range"),
    "ftp": ("ftp://x", "is not an http(s) URL"),
    "credentials": (f"http://user:{SECRET}@127.0.0.1:{{port}}/v1", "carries credentials"),
    "crlf": ("http://127.0.0.1:{port}/v1\r\nX-Evil: 1", "line break"),
}


@pytest.mark.parametrize("command", list(COMMANDS.values()), ids=list(COMMANDS))
@pytest.mark.parametrize("case", list(BAD_BASE_URLS.values()), ids=list(BAD_BASE_URLS))
def test_a_malformed_base_url_in_the_contract_is_one_line_and_exit_2_everywhere(
    capsys, workdir, listener, command, case
):
    url, words = case
    contract = _contract(
        workdir, endpoint__base_url=url.replace("{port}", str(listener.getsockname()[1]))
    )
    argv = [part.format(contract=contract, dir=workdir) for part in command]
    err = _one_error_line(*_run(capsys, *argv))
    assert "endpoint.base_url: " in err and words in err
    assert not _connected(listener)


def test_contract_lint_lists_a_malformed_base_url_as_an_error(capsys, workdir):
    contract = _contract(workdir, endpoint__base_url=f"https://k:{SECRET}@h/v1")
    code, out, err = _run(capsys, "contract", "lint", "--path", contract)
    assert code == 1 and err == ""
    assert "error: endpoint.base_url: 'https://***@h/v1' carries credentials" in out
    assert SECRET not in out


BAD_VALUES = {
    "max-attempts": (
        {"policy__retry__max_attempts": 10**9},
        "policy.retry.max_attempts: expected an integer from 1 to 10, got 1000000000",
    ),
    "total-timeout": (
        {"policy__timeouts__total_ms": 10**30},
        "policy.timeouts.total_ms: expected an integer from 1 to 3600000, got 1" + "0" * 30,
    ),
    "model-newline": ({"model": "gpt-4o\nX-Evil: 1"}, "model: 'gpt-4o\\nX-Evil: 1' has a line"),
    "scheme-crlf": ({"auth__scheme": "Bearer\r\nX-Evil:"}, "auth.scheme: "),
    "header-crlf": ({"auth__header": "Authorization\r\n"}, "auth.header: "),
    "slow-rule": (
        {"errors__rules": [{"name": "slow", "category": "quota", "message": "(a+)+$"}]},
        "errors.rules[slow].message: '(a+)+$' nests a repeat inside a repeat",
    ),
    "slow-request-id": (
        {"errors__request_id_pattern": r"id: (.*).*$"},
        "errors.request_id_pattern: ",
    ),
}


@pytest.mark.parametrize("command", ["validate", "probe"], ids=["validate", "probe"])
@pytest.mark.parametrize("case", list(BAD_VALUES.values()), ids=list(BAD_VALUES))
def test_a_bad_value_in_the_contract_stops_before_anything_is_sent(
    capsys, workdir, listener, command, case
):
    changes, expected = case
    contract = _contract(workdir, endpoint__base_url=_url(listener), **changes)
    argv = [command, "--contract", contract]
    if command == "probe":
        argv += ["--once", "--db", str(workdir / "p.db")]
    err = _one_error_line(*_run(capsys, *argv))
    assert f"contract.yaml: {expected}" in err
    assert not _connected(listener)


BAD_OVERRIDES = {
    "base-url-credentials": (
        ["--base-url", f"https://user:{SECRET}@127.0.0.1/v1"],
        "--base-url: 'https://***@127.0.0.1/v1' carries credentials",
    ),
    "base-url-garbage": (["--base-url", ":87a7"], "--base-url: ':87a7' is not an http(s) URL"),
    "base-url-open-ipv6": (["--base-url", "http://[::1"], "Invalid IPv6 URL"),
    "base-url-crlf": (["--base-url", "http://h/v1\r\nX: 1"], "--base-url: "),
    "model-newline": (["--model", "gpt\nX-Evil: 1"], "--model: 'gpt\\nX-Evil: 1' has a line"),
    "model-too-long": (["--model", "m" * 5000], "--model: is 5000 characters long"),
}


@pytest.mark.parametrize("command", ["validate", "probe"], ids=["validate", "probe"])
@pytest.mark.parametrize("case", list(BAD_OVERRIDES.values()), ids=list(BAD_OVERRIDES))
def test_a_bad_command_line_override_is_one_line_and_nothing_is_sent(
    capsys, workdir, listener, command, case
):
    extra, expected = case
    argv = [command, "--contract", _contract(workdir, endpoint__base_url=_url(listener))]
    if command == "probe":
        argv += ["--once", "--db", str(workdir / "p.db")]
    err = _one_error_line(*_run(capsys, *argv, *extra))
    assert expected in err
    assert not _connected(listener)


def test_contract_show_refuses_a_model_override_with_a_line_break(capsys, workdir):
    contract = _contract(workdir)
    err = _one_error_line(*_run(capsys, "contract", "show", "--path", contract, "--model", "a\rb"))
    assert "--model: 'a\\rb' has a line break" in err


@pytest.mark.parametrize("command", ["validate", "contract-show"], ids=["validate", "show"])
def test_a_model_variable_with_a_line_break_is_one_line(
    capsys, workdir, listener, monkeypatch, command
):
    monkeypatch.setenv("CHATCONTRACT_MODEL", "gpt-4o\nX-Evil: 1")
    contract = _contract(workdir, endpoint__base_url=_url(listener))
    argv = ["validate", "--contract", contract]
    if command == "contract-show":
        argv = ["contract", "show", "--path", contract]
    err = _one_error_line(*_run(capsys, *argv))
    assert "$CHATCONTRACT_MODEL: 'gpt-4o\\nX-Evil: 1' has a line break" in err
    assert not _connected(listener)


def test_a_key_with_a_line_break_is_refused_without_showing_it(
    capsys, workdir, listener, monkeypatch
):
    monkeypatch.setenv("COMETAPI_KEY", f"{SECRET}\r\nX-Evil: 1")
    contract = _contract(workdir, endpoint__base_url=_url(listener))
    err = _one_error_line(*_run(capsys, "validate", "--contract", contract))
    assert "$COMETAPI_KEY: the key contains a space, line break or control character" in err
    assert not _connected(listener)


# -- writes --------------------------------------------------------------------------------


def _unwritable(tmp: Path) -> dict[str, tuple[str, str]]:
    """Targets no one can write, root included: (path, words in the message)."""
    (tmp / "sub").mkdir(exist_ok=True)
    return {
        "a-directory": (str(tmp / "sub"), "is a directory; give a file name"),
        "missing-directory": (str(tmp / "no" / "such" / "r.txt"), "does not exist"),
        "read-only-file-system": ("/proc/version", "cannot write /proc/version"),
        "read-only-directory": ("/proc/chatcontract-report.txt", "cannot write"),
    }


WRITE_TARGETS = ["a-directory", "missing-directory", "read-only-file-system", "read-only-directory"]


@pytest.mark.parametrize("target", WRITE_TARGETS)
def test_validate_output_that_cannot_be_written_fails_before_any_request(
    capsys, workdir, listener, target
):
    path, words = _unwritable(workdir)[target]
    contract = _contract(workdir, endpoint__base_url=_url(listener))
    err = _one_error_line(*_run(capsys, "validate", "--contract", contract, "--output", path))
    assert f"--output {path}: " in err and words in err
    assert not _connected(listener)
    assert not (workdir / ".chatcontract").exists()


def test_a_run_record_that_cannot_be_written_fails_before_any_request(capsys, workdir, listener):
    (workdir / ".chatcontract").write_text("a file where the record's directory should be")
    contract = _contract(workdir, endpoint__base_url=_url(listener))
    err = _one_error_line(*_run(capsys, "validate", "--contract", contract))
    assert "the run record .chatcontract/last-validate.json (skip it with --no-record)" in err
    assert not _connected(listener)


@pytest.mark.parametrize("target", WRITE_TARGETS)
@pytest.mark.parametrize("command", ["alerts", "dashboards"])
def test_alerts_and_dashboards_output_that_cannot_be_written_is_one_line(
    capsys, workdir, command, target
):
    path, words = _unwritable(workdir)[target]
    contract = _contract(workdir)
    err = _one_error_line(*_run(capsys, command, "--contract", contract, "--output", path))
    assert words in err


@pytest.mark.parametrize("target", WRITE_TARGETS)
def test_init_to_a_path_that_cannot_be_written_is_one_line(capsys, workdir, target):
    path, words = _unwritable(workdir)[target]
    err = _one_error_line(*_run(capsys, "init", "--path", path, "--force"))
    assert words in err
    assert not list(workdir.glob("**/.*.tmp"))


needs_dev_full = pytest.mark.skipif(
    not os.path.exists("/dev/full"), reason="/dev/full (a device that is always full) is Linux's"
)


@needs_dev_full
def test_validate_report_on_a_full_disk_is_printed_instead_and_exits_2(capsys, workdir):
    code, out, err = _run(
        capsys,
        "validate",
        "--simulate",
        "--check",
        "canary",
        "--canary-runs",
        "1",
        "--format",
        "json",
        "--output",
        "/dev/full",
    )
    assert code == 2 and "Traceback" not in out + err
    last = err.strip().splitlines()[-1]
    assert last == (
        "chatcontract: error: --output: cannot write /dev/full (No space left on device); "
        "the report was printed to stdout instead"
    )
    assert json.loads(out)["checks"][0]["id"] == "canary"


def test_a_run_record_that_fails_after_the_suite_keeps_the_report(capsys, workdir, monkeypatch):
    def full_disk(*_args: object, **_kwargs: object) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr("chatcontract.cli.validate_cmd.record_validate_run", full_disk)
    code, out, err = _run(
        capsys,
        "validate",
        "--simulate",
        "--check",
        "canary",
        "--canary-runs",
        "1",
        "--format",
        "json",
    )
    assert code == 2 and "Traceback" not in out + err
    assert err.strip().splitlines()[-1] == (
        "chatcontract: error: the run record .chatcontract/last-validate.json (skip it with "
        "--no-record): cannot write .chatcontract/last-validate.json (No space left on "
        "device); the report is complete"
    )
    assert json.loads(out)["checks"][0]["id"] == "canary"


@needs_dev_full
@pytest.mark.parametrize(
    "argv",
    [
        ["init", "--force", "--path", "/dev/full"],
        ["alerts", "--output", "/dev/full"],
        ["dashboards", "--output", "/dev/full"],
    ],
    ids=["init", "alerts", "dashboards"],
)
def test_a_full_disk_at_the_final_write_is_one_line(capsys, workdir, argv):
    if argv[0] != "init":
        argv = [*argv, "--contract", _contract(workdir)]
    err = _one_error_line(*_run(capsys, *argv))
    assert "cannot write /dev/full (No space left on device)" in err


def test_init_and_alerts_still_write_their_files_atomically(capsys, workdir):
    assert _run(capsys, "init", "--path", "c.yaml")[0] == 0
    assert _run(capsys, "alerts", "--contract", "c.yaml", "--output", "a.yml")[0] == 0
    assert yaml.safe_load((workdir / "a.yml").read_text())["groups"]
    assert sorted(p.name for p in workdir.iterdir()) == ["a.yml", "c.yaml"]


# -- the installed entry point --------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        ["validate", "--base-url", f"https://u:{SECRET}@127.0.0.1:9/v1"],
        ["probe", "--once", "--base-url", "http://[::1"],
        ["validate", "--output", "/"],
        ["contract", "show", "--model", "a\nb"],
    ],
    ids=["validate-credentials", "probe-open-ipv6", "validate-output-root", "show-model"],
)
def test_the_real_entry_point_prints_one_line_and_exits_2(tmp_path, argv):
    contract = tmp_path / "chatcontract.yaml"
    contract.write_text(yaml.safe_dump(preset_document("cometapi")), encoding="utf-8")
    env = {**os.environ, "COMETAPI_KEY": "sk-test-key-for-bad-input"}
    env.pop("CHATCONTRACT_MODEL", None)
    done = subprocess.run(
        [sys.executable, "-m", "chatcontract", *argv],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    _one_error_line(done.returncode, done.stdout, done.stderr)


def _bomb(directory: Path) -> str:
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [{', '.join(['*' + previous] * 9)}]")
    path = directory / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(path)


def _utf16(directory: Path) -> str:
    path = directory / "utf16.yaml"
    path.write_text(yaml.safe_dump(preset_document("cometapi")), encoding="utf-16")
    return str(path)


def _fifo(directory: Path) -> str:
    path = directory / "fifo.yaml"
    os.mkfifo(path)
    return str(path)


BAD_CONTRACT_FILES = {
    "endless-device": (lambda _: "/dev/zero", "is larger than 1 MiB"),
    "fifo-without-writer": (_fifo, "must hold a mapping of contract fields, got null"),
    "utf-16": (_utf16, "is UTF-16 text; save it as UTF-8"),
    "alias-bomb": (_bomb, "expands to more than 1,000,000 values"),
    "a-directory": (str, "is a directory; give a file"),
}


@pytest.mark.parametrize("command", list(COMMANDS.values()), ids=list(COMMANDS))
@pytest.mark.parametrize("case", list(BAD_CONTRACT_FILES.values()), ids=list(BAD_CONTRACT_FILES))
def test_a_contract_file_that_cannot_be_read_is_one_line_and_exit_2_everywhere(
    capsys, workdir, listener, command, case
):
    make, words = case
    contract = make(workdir)
    argv = [word.format(contract=contract, dir=workdir) for word in command]
    err = _one_error_line(*_run(capsys, *argv))
    assert words in err
    assert not _connected(listener)


def _link(directory: Path, name: str) -> str:
    (directory / name).symlink_to(directory / "contract.yaml")
    return str(directory / name)


@pytest.mark.parametrize("command", ["alerts", "dashboards", "validate"])
@pytest.mark.parametrize(
    "spell", [str, lambda p: _link(Path(p).parent, "link.yaml")], ids=["same-path", "a-symlink"]
)
def test_output_that_is_the_contract_is_refused_and_the_contract_kept(
    capsys, workdir, command, spell
):
    contract = _contract(workdir)
    before = Path(contract).read_bytes()
    output = spell(contract)
    argv = [command, "--contract", contract, "--output", output]
    err = _one_error_line(*_run(capsys, *argv, *(["--simulate"] if command == "validate" else [])))
    assert "is the file --contract reads; writing it would replace it" in err
    assert Path(contract).read_bytes() == before


@pytest.mark.parametrize("option", ["--validate-file", "--contract"])
def test_baseline_accept_onto_a_file_it_reads_is_refused_and_the_file_kept(capsys, workdir, option):
    record = workdir / "last-validate.json"
    record.write_text('{"report": {}, "observed": {}}', encoding="utf-8")
    contract = _contract(workdir)
    onto = {"--validate-file": str(record), "--contract": contract}[option]
    before = Path(onto).read_bytes()
    argv = ["baseline", "accept", "--contract", contract, "--validate-file", str(record)]
    err = _one_error_line(*_run(capsys, *argv, "--baseline", onto, "--force"))
    assert f"is the file {option} reads" in err
    assert Path(onto).read_bytes() == before
