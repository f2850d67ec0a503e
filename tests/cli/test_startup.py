"""``chatcontract --version`` and ``--help`` load nothing beyond argument parsing and the
version literal: no command module, no HTTP client, no logging, no ``typing``.

Each case runs in a fresh interpreter and reports what ended up in ``sys.modules``; not a
timing test (``benchmarks/bench_import.py`` measures the milliseconds).
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from chatcontract import __version__

REPORT = "import sys, json; print(json.dumps(sorted(sys.modules)))"


def loaded_after(code: str) -> tuple[set[str], str]:
    """The modules a fresh interpreter holds after ``code``, and what ``code`` printed."""
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\n{REPORT}"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    *printed, modules = done.stdout.splitlines()
    return set(json.loads(modules)), "\n".join(printed)


def cli(*argv: str) -> str:
    """The CLI run in-process as the console script runs it, its exit swallowed."""
    return (
        "import contextlib\n"
        "from chatcontract.cli import main\n"
        "with contextlib.suppress(SystemExit):\n"
        f"    main({list(argv)!r})"
    )


#: Modules a start-up that only answers --help or --version has no use for.
NOT_AT_START = ("logging", "typing", "shutil", "httpx2", "yaml", "chatcontract.errors")


@pytest.mark.parametrize(
    ("code", "absent"),
    [
        ("import chatcontract", (*NOT_AT_START, "argparse")),
        (cli("--version"), (*NOT_AT_START, "argparse")),
        (cli("--help"), NOT_AT_START),
    ],
    ids=["import", "version", "help"],
)
def test_start_up_loads_only_what_the_answer_needs(code: str, absent: tuple[str, ...]) -> None:
    loaded, _ = loaded_after(code)

    assert loaded & set(absent) == set()
    assert not {name for name in loaded if name.startswith("chatcontract.cli.") and
                name != "chatcontract.cli._parser"}  # fmt: skip


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (("--version",), f"chatcontract {__version__}"),
        (("--help",), "usage: chatcontract [-h] [--version] COMMAND ..."),
    ],
    ids=["version", "help"],
)
def test_the_light_start_up_still_answers(argv: tuple[str, ...], expected: str) -> None:
    _, printed = loaded_after(cli(*argv))

    assert printed.splitlines()[0] == expected


def test_the_check_sees_a_module_a_command_loads() -> None:
    """The probe above can fail: running a command loads its module and the errors."""
    loaded, _ = loaded_after(cli("classify", "--help"))

    assert {"chatcontract.cli.classify_cmd", "argparse"} <= loaded
