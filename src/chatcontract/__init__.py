"""chatcontract: freeze, validate, classify and watch what your code assumes about a chat API.

The public surface, re-exported here on purpose (the subpackages hold the rest):

- the contract: ``Contract``, ``load_contract``, ``load_preset``
- classification: ``classify``, ``Failure``
- calling safely: ``ChatClient``, ``AsyncChatClient`` and their results and errors
- the openai SDK hook: ``instrument``, ``ainstrument``, ``check_sdk_client``, ``flush`` (observe
  the calls whose observation was deferred, now)
- the spine: ``Exchange``, ``InstrumentedTransport``, ``AsyncInstrumentedTransport``
- telemetry sinks: ``PrometheusSink``, ``OpenTelemetrySink``, ``JsonEventLog``
"""

from __future__ import annotations

import logging

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
from chatcontract.failures import Failure, classify
from chatcontract.instrumentation import (
    StackedRetriesWarning,
    ainstrument,
    check_sdk_client,
    instrument,
)
from chatcontract.telemetry import JsonEventLog, OpenTelemetrySink, PrometheusSink
from chatcontract.transport import (
    AsyncInstrumentedTransport,
    Exchange,
    InstrumentedTransport,
    flush,
)

# A library does not print: without this, the stdlib's last-resort handler would write every
# warning of a chatcontract logger (the JSON event log included) to stderr in an application
# that configured no logging. An application that configures logging still gets every record.
logging.getLogger("chatcontract").addHandler(logging.NullHandler())

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
