"""Every chatcontract logger sits under the package logger, which has a ``NullHandler`` as soon
as any module that logs is imported (``import chatcontract`` alone does not load ``logging``)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import chatcontract
from chatcontract._log import get_logger

SRC = Path(chatcontract.__file__).parent


def test_a_module_that_logs_brings_the_null_handler_with_it():
    code = (
        "import logging, chatcontract.instrumentation\n"
        "print([type(h).__name__ for h in logging.getLogger('chatcontract').handlers])"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60, check=True)  # fmt: skip
    assert done.stdout.strip() == "['NullHandler']"


def test_every_logger_of_the_package_comes_from_get_logger():
    direct = [
        f"{path.relative_to(SRC)}:{number}"
        for path in sorted(SRC.rglob("*.py"))
        if path.name != "_log.py"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if re.search(r"\blogging\.getLogger\(", line)
    ]
    assert direct == []


@pytest.mark.parametrize("name", ["chatcontract", "chatcontract.probe"], ids=["root", "child"])
def test_get_logger_names_a_logger_under_the_package(name):
    assert get_logger(name).name == name


def test_get_logger_refuses_a_logger_outside_the_package():
    with pytest.raises(ValueError, match=r"chatcontract\.<part>"):
        get_logger("probe")
