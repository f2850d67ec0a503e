"""Helpers shared by CLI commands: contract loading, output, formats."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import stat
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from chatcontract.contract import DEFAULT_PATH, Contract, load
from chatcontract.errors import UsageError
from chatcontract.redact import redact_text, redact_value

__all__ = [
    "add_contract_option",
    "add_target_options",
    "check_writable",
    "contract_path",
    "emit_json",
    "load_contract",
    "refuse_overwriting_inputs",
    "write_out",
    "write_text",
]


def add_contract_option(parser: argparse.ArgumentParser, *, flag: str = "--path") -> None:
    """The contract file option (default ``./chatcontract.yaml``)."""
    parser.add_argument(
        flag,
        dest="path",
        metavar="FILE",
        default=None,
        help=f"contract file (default: ./{DEFAULT_PATH})",
    )


def add_target_options(parser: argparse.ArgumentParser) -> None:
    """``--contract``, ``--base-url`` and ``--model``: the target a validate or probe run calls."""
    parser.add_argument(
        "--contract",
        default=None,
        metavar="FILE",
        help="contract file (default: ./chatcontract.yaml if present)",
    )
    parser.add_argument("--base-url", default=None, help="override the contract's base URL")
    parser.add_argument("--model", default=None, help="override the model ($CHATCONTRACT_MODEL)")


def contract_path(args: argparse.Namespace) -> str:
    return str(getattr(args, "path", None) or DEFAULT_PATH)


def load_contract(args: argparse.Namespace) -> Contract:
    return load(contract_path(args))


def emit_json(value: Any) -> None:
    """``value`` as indented JSON on stdout, credential-shaped text replaced (``redact_value``):
    a key pasted into a contract's URL or model is not repeated into a CI log."""
    json.dump(redact_value(value), sys.stdout, indent=2, sort_keys=False, default=str)
    sys.stdout.write("\n")


def write_out(text: str) -> None:
    """``text`` on stdout, credential-shaped text replaced (``redact_text``)."""
    sys.stdout.write(redact_text(text))


def display_path(path: str) -> str:
    """A path as the user typed it, or relative to the working directory."""
    try:
        return os.path.relpath(path)
    except ValueError:  # pragma: no cover - another drive on Windows
        return path


def _why(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def _existing_ancestor(directory: Path) -> Path:
    """The nearest directory that exists (``write_text`` creates the rest)."""
    current = directory
    while not current.exists() and current != current.parent:
        current = current.parent
    return current


def check_writable(
    path: str | os.PathLike[str], *, what: str, create_parents: bool = False
) -> None:
    """Fail now, before any work, if ``path`` cannot be written.

    Refused with one ``UsageError`` line saying what to write instead: a directory, a missing
    directory (unless ``create_parents``), a read-only file or directory, a full disk. The
    check creates and removes a temporary file beside the target and opens an existing
    target for append, so it changes nothing. ``what`` names the option (``--output FILE``).

    ``write_text`` still reports a failure at write time (the disk can fill meanwhile).
    """
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"{what}: {target} is a directory; give a file name")
    directory = target.parent
    if create_parents:
        directory = _existing_ancestor(directory)
        if not directory.is_dir():
            raise UsageError(f"{what}: {directory} is not a directory; give another path")
    elif not directory.is_dir():
        raise UsageError(
            f"{what}: the directory {directory} does not exist; create it or give another path"
        )
    try:
        if target.exists():
            with target.open("a", encoding="utf-8"):
                pass  # opening for append writes nothing
            if not stat.S_ISREG(target.stat().st_mode):
                return  # a device or pipe (/dev/stdout): written in place, not replaced
        with tempfile.NamedTemporaryFile(dir=directory, prefix=".chatcontract-", delete=True):
            pass
        if os.statvfs(directory).f_bavail == 0:
            raise OSError(28, os.strerror(28))  # ENOSPC: nothing would fit
    except OSError as exc:
        raise UsageError(f"{what}: cannot write {target} ({_why(exc)}); give another path") from exc


def _same_file(one: str | os.PathLike[str], other: str | os.PathLike[str]) -> bool:
    try:
        return os.path.samefile(one, other)
    except OSError:  # either does not exist (yet): they cannot be one file
        return False


def refuse_overwriting_inputs(
    path: str | os.PathLike[str],
    *,
    what: str,
    reads: Mapping[str, str | os.PathLike[str] | None],
) -> None:
    """Fail now if the file to write is one of the files the command reads.

    ``reads`` maps an option (``--contract``) to the path it names (``None``: not given).
    The same file under another name (a symlink, ``./x`` for ``x``) counts: writing it would
    replace the user's input, the contract say, with generated output.
    """
    for option, source in reads.items():
        if source is not None and _same_file(path, source):
            raise UsageError(
                f"{what}: {path} is the file {option} reads; writing it would replace it. "
                "Give another path"
            )


def write_text(path: str | os.PathLike[str], text: str, *, what: str) -> Path:
    """Write ``text`` to ``path`` atomically (a temporary file, then a rename).

    A reader never sees half a file. A device or pipe (``/dev/stdout``) is written in place.
    Any ``OSError`` (disk full, permission) becomes one ``UsageError`` line; the temporary
    file is removed. Parent directories are created.
    """
    target = Path(path)
    try:
        if target.exists() and not stat.S_ISREG(target.stat().st_mode):
            with target.open("w", encoding="utf-8") as stream:
                stream.write(text)
            return target
        target.parent.mkdir(parents=True, exist_ok=True)
        # Beside the target (same file system, so the rename is atomic); "x" keeps the umask.
        tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            with tmp.open("x", encoding="utf-8") as stream:
                stream.write(text)
            if target.exists():
                tmp.chmod(stat.S_IMODE(target.stat().st_mode))
            tmp.replace(target)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise
    except OSError as exc:
        raise UsageError(f"{what}: cannot write {target} ({_why(exc)})") from exc
    return target
