"""Exceptions raised when chatcontract itself cannot do its job.

A contract breach found by a check or the classifier is *data* (a ``Failure`` or a
``Violation``), never one of these. These mean: the input given to chatcontract is wrong,
or the environment stops it from working.

    ChatContractError
    ├── ConfigError            a contract file, preset, flag or environment value is wrong
    │   └── ContractFileError  the contract file cannot be read or parsed (carries the path)
    ├── SimulatorError         the simulator cannot start (port in use, unknown scenario, ...)
    ├── RelayError             the local fault relay cannot start or stop
    └── UsageError             a command was called with arguments that cannot work together

Every message says what is wrong and what to do instead, and never contains a secret.
"""

from __future__ import annotations

__all__ = [
    "ChatContractError",
    "ConfigError",
    "ContractFileError",
    "RelayError",
    "SimulatorError",
    "UsageError",
]


class ChatContractError(Exception):
    """Root of every exception chatcontract raises on purpose."""


class ConfigError(ChatContractError):
    """A contract file, preset, flag or environment value is wrong; the message says what to do."""


class ContractFileError(ConfigError):
    """The contract file cannot be read or parsed."""

    def __init__(self, path: str, message: str) -> None:
        super().__init__(f"{path}: {message}")
        self.path = path


class SimulatorError(ChatContractError):
    """The simulator cannot start or was asked for something it does not have."""


class RelayError(ChatContractError):
    """The local fault relay (validate's deadline and interruption checks) cannot run."""


class UsageError(ChatContractError):
    """A command was called with arguments that cannot work together."""
