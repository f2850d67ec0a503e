"""``chatcontract init``: write a commented contract file from a preset."""

from __future__ import annotations

import argparse
from pathlib import Path

from chatcontract.contract import PRESETS, dump
from chatcontract.contract.loader import contract_from_document
from chatcontract.contract.presets import preset_document
from chatcontract.errors import ConfigError

from ._common import add_contract_option, check_writable, contract_path, write_text


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = sub.add_parser(
        "init",
        help="write a commented contract file from a preset (cometapi, openai)",
        description="Write a commented contract file from a built-in preset. "
        "Refuses to overwrite an existing file unless --force is given.",
    )
    parser.add_argument(
        "--preset",
        default="cometapi",
        metavar="NAME",
        help=f"preset to start from: {', '.join(sorted(PRESETS))} (default: cometapi)",
    )
    add_contract_option(parser)
    parser.add_argument("--force", action="store_true", help="overwrite an existing file")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    if args.preset not in PRESETS:
        raise ConfigError(
            f"unknown preset {args.preset!r}; use --preset with one of {', '.join(sorted(PRESETS))}"
        )
    path = Path(contract_path(args))
    if path.exists() and not path.is_dir() and not args.force:
        raise ConfigError(f"{path} already exists; pass --force to overwrite it")
    check_writable(path, what=f"--path {path}")
    document = preset_document(args.preset)
    contract = contract_from_document(document)
    write_text(path, dump(contract), what=f"--path {path}")  # atomic: never half a contract
    print(f"wrote {path} (preset {args.preset}: {contract.endpoint.url}, model {contract.model})")
    print(f"next: set ${contract.auth.env[0]}, fill in 'owner', then 'chatcontract contract lint'")
    return 0
