"""What importing chatcontract and asking the CLI for help load: never a server or a terminal UI.

Each case runs in a fresh interpreter (this process has long since imported everything) and
reports which of the heavy third-party packages ended up in ``sys.modules``. Not a timing test:
``benchmarks/bench_import.py`` measures the milliseconds; this checks what makes them.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from chatcontract.cli import COMMANDS, build_parser

SERVERS_AND_UI = ("uvicorn", "starlette", "rich", "prometheus_client", "opentelemetry")

REPORT = "import sys, json; print(json.dumps(sorted({name.split('.')[0] for name in sys.modules})))"


def loaded_after(code: str) -> set[str]:
    """The top-level packages imported by a fresh interpreter after running ``code``."""
    result = subprocess.run(
        [sys.executable, "-c", f"{code}\n{REPORT}"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return set(json.loads(result.stdout.splitlines()[-1]))


def cli_in_process(*argv: str) -> str:
    """Run the CLI inside the interpreter (so its imports are seen), swallowing its exit."""
    return (
        "import contextlib, io\n"
        "from chatcontract.cli import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
        f"    main({list(argv)!r})"
    )


@pytest.mark.parametrize(
    ("code", "also_absent"),
    [
        ("import chatcontract", ("httpx2", "yaml")),
        (cli_in_process("--help"), ("httpx2", "yaml")),
        (cli_in_process("--version"), ("httpx2", "yaml")),
        (cli_in_process("classify", "--help"), ()),
        (
            "from chatcontract import AsyncChatClient, ChatClient, Exchange, classify,"
            " instrument, load_contract",
            (),
        ),
    ],
    ids=["import", "cli-help", "cli-version", "classify-help", "client-names"],
)
def test_no_server_or_terminal_ui_is_imported(code: str, also_absent: tuple[str, ...]) -> None:
    loaded = loaded_after(code)

    assert loaded & {*SERVERS_AND_UI, *also_absent} == set()


def test_the_check_sees_a_package_that_is_imported() -> None:
    """The probe above can fail: a command that needs the terminal UI shows it loaded."""
    loaded = loaded_after("import chatcontract.checks.render\nimport chatcontract.probe.app")

    assert {"rich", "starlette", "prometheus_client"} <= loaded


def test_a_public_name_resolves_on_first_read_to_its_module_object() -> None:
    import chatcontract
    from chatcontract.client import ChatClient
    from chatcontract.contract import load

    assert chatcontract.ChatClient is ChatClient
    assert chatcontract.load_contract is load
    assert set(chatcontract.__all__) <= set(dir(chatcontract))
    with pytest.raises(AttributeError, match="no attribute 'not_a_name'"):
        _ = chatcontract.not_a_name


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    (action,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return dict(action.choices)


def test_help_lists_every_command_exactly_as_its_module_registers_it() -> None:
    """``--help`` answers from the COMMANDS table; it must read as if every module were loaded."""
    fully_registered = build_parser()

    help_text = subprocess.run(
        [sys.executable, "-m", "chatcontract", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout

    assert help_text == fully_registered.format_help()
    assert list(_subcommands(fully_registered)) == list(COMMANDS)
    for name in COMMANDS:
        assert f"\n    {name}" in help_text


@pytest.mark.parametrize("name", list(COMMANDS), ids=list(COMMANDS))
def test_each_command_is_registered_by_the_module_the_table_names(name: str) -> None:
    """A table row pointing at the wrong module would leave only a placeholder: no description."""
    parser = _subcommands(build_parser([name]))[name]

    assert parser.description
