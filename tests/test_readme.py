"""The README: install first, then the quick start, then the reference; every Python example runs.

Each ```python block runs exactly as written, in a fresh interpreter, from a folder prepared the
way the README's quick start leaves one: ``chatcontract init`` wrote ``./chatcontract.yaml`` and
``COMETAPI_KEY`` is set. The simulator stands in for the API: the contract's ``base_url`` points
at it (127.0.0.1, a free port) and the key is the one it accepts. A block fails the test on any
exception or non-zero exit; a ``# prints: TEXT`` comment is checked against what it printed.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from chatcontract.cli import main
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
