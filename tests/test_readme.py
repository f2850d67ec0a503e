"""The README: install first, then the quick start, then the reference; every Python example runs.

Each ```python block runs exactly as written, in a fresh interpreter, from a folder prepared the
way the README's quick start leaves one: ``chatcontract init`` wrote ``./chatcontract.yaml`` and
``COMETAPI_KEY`` is set. The simulator stands in for the API: the contract's ``base_url`` points
at it (127.0.0.1, a free port) and the key is the one it accepts. A block fails the test on any
exception or non-zero exit; a ``# prints: TEXT`` comment is checked against what it printed.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from chatcontract.cli import build_parser, main
from chatcontract.simulator import SimulatorServer

README = Path(__file__).resolve().parents[1] / "README.md"
TEXT = README.read_text()

BLOCK = re.compile(r"^```python\n(.*?)^```$", re.MULTILINE | re.DOTALL)
PRINTS = re.compile(r"#\s*prints:\s*(.+?)\s*$", re.MULTILINE)


def _slug(heading: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", heading.lower()).strip("-")


def _examples() -> list[tuple[str, str]]:
    """(id, code) per python block, the id taken from the section it sits in."""
    found: list[tuple[str, str]] = []
    for match in BLOCK.finditer(TEXT):
        headings = re.findall(r"^## (.+)$", TEXT[: match.start()], re.MULTILINE)
        section = _slug(headings[-1]) if headings else "top"
        number = sum(1 for name, _ in found if name.startswith(section)) + 1
        found.append((f"{section}-{number}", match.group(1)))
    return found


EXAMPLES = _examples()


def test_sections_run_install_then_quick_start_then_reference() -> None:
    headings = re.findall(r"^## (.+)$", TEXT, re.MULTILINE)

    assert headings[:3] == ["Install", "Quick start", "CLI reference"]
    install = TEXT[TEXT.index("## Install") : TEXT.index("## Quick start")]
    assert "pip install ." in install
    assert "make demo" in install
    assert "source .venv/bin/activate" in install


def test_every_python_block_is_found() -> None:
    """The extraction itself: a changed fence style would otherwise run nothing, silently."""
    assert len(EXAMPLES) == TEXT.count("```python")
    assert len(EXAMPLES) >= 3


@pytest.fixture
def prepared(
    tmp_path: Path, simulator: SimulatorServer, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, dict[str, str]]:
    """A folder with ``chatcontract init``'s file aimed at the simulator, and the environment."""
    monkeypatch.chdir(tmp_path)
    assert main(["init"]) == 0
    contract = tmp_path / "chatcontract.yaml"
    text = contract.read_text()
    assert "base_url: https://api.cometapi.com/v1\n" in text
    contract.write_text(
        text.replace(
            "base_url: https://api.cometapi.com/v1\n", f"base_url: {simulator.base_url}\n", 1
        )
    )
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("COMETAPI", "COMET_", "OPENAI", "CHATCONTRACT"))
    }
    env["COMETAPI_KEY"] = simulator.api_key
    return tmp_path, env


@pytest.mark.parametrize("code", [code for _, code in EXAMPLES], ids=[i for i, _ in EXAMPLES])
def test_python_example_runs_as_written(code: str, prepared: tuple[Path, dict[str, str]]) -> None:
    folder, env = prepared

    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        check=False,  # the return code is asserted below, with the stderr
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, f"the example failed:\n{result.stderr[-3000:]}"
    for expected in PRINTS.findall(code):
        assert expected in result.stdout.splitlines(), (expected, result.stdout)


def _commands() -> list[tuple[str, argparse.ArgumentParser]]:
    """(``"contract lint"``, parser) for every runnable command, nested ones included."""
    found: list[tuple[str, argparse.ArgumentParser]] = []
    todo = [("", build_parser())]
    while todo:
        prefix, parser = todo.pop()
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs:
            found.append((prefix, parser))
        for sub in subs:
            todo += [(f"{prefix} {name}".strip(), child) for name, child in sub.choices.items()]
    return found


def _reference_row(command: str) -> str:
    """The first cell of the CLI reference row of ``chatcontract COMMAND``."""
    reference = TEXT[TEXT.index("## CLI reference") : TEXT.index("## The contract file")]
    rows = re.findall(rf"^\| `chatcontract {re.escape(command)}(?: [^`]*)?` \|", reference, re.M)
    assert len(rows) == 1, f"no single CLI reference row for 'chatcontract {command}'"
    return rows[0]


COMMANDS = dict(_commands())


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_the_cli_reference_names_every_option(command: str) -> None:
    """Each row of the CLI reference lists every option its command accepts (--help aside)."""
    row = _reference_row(command)
    options = [
        option
        for action in COMMANDS[command]._actions
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
    ]
    missing = [option for option in options if not re.search(rf"{option}(?![\w-])", row)]
    assert missing == [], f"'chatcontract {command}' row lacks {missing}"
