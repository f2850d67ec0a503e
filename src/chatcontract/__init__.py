"""chatcontract: freeze, validate, classify and watch what your code assumes about a chat API.

The public surface, re-exported here on purpose (the subpackages hold the rest):

- the contract: ``Contract``, ``load_contract``, ``load_preset``
- classification: ``classify``, ``Failure``
- calling safely: ``ChatClient``, ``AsyncChatClient`` and their results and errors
- the openai SDK hook: ``instrument``, ``ainstrument``, ``check_sdk_client`` (``flush`` is a
  deprecated no-op: every call is observed inline)
- the spine: ``Exchange``, ``InstrumentedTransport``, ``AsyncInstrumentedTransport``
- telemetry sinks: ``PrometheusSink``, ``OpenTelemetrySink``, ``JsonEventLog``
"""

from __future__ import annotations

import importlib

# ``typing`` is not imported (a few ms of ``chatcontract --help``); type checkers read this
# name as True.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from chatcontract._version import __version__
    from chatcontract.client import (
        AsyncChatClient,
        AsyncChatStream,
        BudgetExceededError,
        CallFailedError,
        ChatClient,
        ChatResult,
        ChatStream,
        DeadlineExhaustedError,
        KillSwitchError,
        NonRetryableError,
        RetriesExhaustedError,
        StreamDelta,
        StreamInterrupted,
    )
    from chatcontract.contract import Contract, load_preset
    from chatcontract.contract import load as load_contract
    from chatcontract.errors import (
        ChatContractError,
        ConfigError,
        ContractFileError,
        SimulatorError,
        UsageError,
    )
    from chatcontract.exchange import Exchange
    from chatcontract.failures import Failure, classify
    from chatcontract.instrumentation import (
        StackedRetriesWarning,
        ainstrument,
        check_sdk_client,
        flush,
        instrument,
    )
    from chatcontract.telemetry import JsonEventLog, OpenTelemetrySink, PrometheusSink
    from chatcontract.transport import AsyncInstrumentedTransport, InstrumentedTransport

# Where each public name lives. ``import chatcontract`` imports none of these: a name's module is
# imported the first time the name is read (PEP 562), so the CLI answers ``--help`` without
# loading httpx2, and ``from chatcontract import classify`` never loads the servers or the
# terminal UI. The ``TYPE_CHECKING`` block above gives type checkers and editors the same names.
_LAZY: dict[str, tuple[str, str]] = {
    "__version__": ("chatcontract._version", "__version__"),
    **{
        name: ("chatcontract.client", name)
        for name in (
            "AsyncChatClient",
            "AsyncChatStream",
            "BudgetExceededError",
            "CallFailedError",
            "ChatClient",
            "ChatResult",
            "ChatStream",
            "DeadlineExhaustedError",
            "KillSwitchError",
            "NonRetryableError",
            "RetriesExhaustedError",
            "StreamDelta",
            "StreamInterrupted",
        )
    },
    "Contract": ("chatcontract.contract", "Contract"),
    "load_contract": ("chatcontract.contract", "load"),
    "load_preset": ("chatcontract.contract", "load_preset"),
    **{
        name: ("chatcontract.errors", name)
        for name in (
            "ChatContractError",
            "ConfigError",
            "ContractFileError",
            "SimulatorError",
            "UsageError",
        )
    },
    "Failure": ("chatcontract.failures", "Failure"),
    "classify": ("chatcontract.failures", "classify"),
    **{
        name: ("chatcontract.instrumentation", name)
        for name in (
            "StackedRetriesWarning",
            "ainstrument",
            "check_sdk_client",
            "flush",
            "instrument",
        )
    },
    **{
        name: ("chatcontract.telemetry", name)
        for name in ("JsonEventLog", "OpenTelemetrySink", "PrometheusSink")
    },
    **{
        name: ("chatcontract.transport", name)
        for name in ("AsyncInstrumentedTransport", "InstrumentedTransport")
    },
    "Exchange": ("chatcontract.exchange", "Exchange"),
}


def __getattr__(name: str) -> Any:
    try:
        module_name, attribute = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'chatcontract' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module_name), attribute)
    globals()[name] = value  # resolved once: later reads are plain attribute lookups
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "AsyncChatClient",
    "AsyncChatStream",
    "AsyncInstrumentedTransport",
    "BudgetExceededError",
    "CallFailedError",
    "ChatClient",
    "ChatContractError",
    "ChatResult",
    "ChatStream",
    "ConfigError",
    "Contract",
    "ContractFileError",
    "DeadlineExhaustedError",
    "Exchange",
    "Failure",
    "InstrumentedTransport",
    "JsonEventLog",
    "KillSwitchError",
    "NonRetryableError",
    "OpenTelemetrySink",
    "PrometheusSink",
    "RetriesExhaustedError",
    "SimulatorError",
    "StackedRetriesWarning",
    "StreamDelta",
    "StreamInterrupted",
    "UsageError",
    "__version__",
    "ainstrument",
    "check_sdk_client",
    "classify",
    "flush",
    "instrument",
    "load_contract",
    "load_preset",
]
