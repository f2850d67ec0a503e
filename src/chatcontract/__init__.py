"""chatcontract: freeze, validate, classify and watch what your code assumes about a chat API."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from chatcontract.errors import (
    ChatContractError,
    ConfigError,
    ContractFileError,
    SimulatorError,
    UsageError,
)

try:
    __version__ = version("chatcontract")
except PackageNotFoundError:  # pragma: no cover - running from a source tree without install
    __version__ = "0+unknown"

__all__ = [
    "ChatContractError",
    "ConfigError",
    "ContractFileError",
    "SimulatorError",
    "UsageError",
    "__version__",
]
