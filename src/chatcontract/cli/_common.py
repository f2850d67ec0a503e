"""Helpers shared by CLI commands: contract loading, output, formats."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

from chatcontract.contract import DEFAULT_PATH, Contract, load

__all__ = ["add_contract_option", "contract_path", "emit_json", "load_contract"]


def add_contract_option(parser: argparse.ArgumentParser, *, flag: str = "--path") -> None:
    """The contract file option (default ``./chatcontract.yaml``)."""
    parser.add_argument(
        flag,
        dest="path",
        metavar="FILE",
        default=None,
        help=f"contract file (default: ./{DEFAULT_PATH})",
    )


def contract_path(args: argparse.Namespace) -> str:
    return str(getattr(args, "path", None) or DEFAULT_PATH)


def load_contract(args: argparse.Namespace) -> Contract:
    return load(contract_path(args))


def emit_json(value: Any) -> None:
    json.dump(value, sys.stdout, indent=2, sort_keys=False, default=str)
    sys.stdout.write("\n")


def display_path(path: str) -> str:
    """A path as the user typed it, or relative to the working directory."""
    try:
        return os.path.relpath(path)
    except ValueError:  # pragma: no cover - another drive on Windows
        return path
