"""The resilient client: ``ChatClient`` / ``AsyncChatClient``.

Retries, fallbacks, one deadline and a budget guard, decided per failure class by the pure
``chatcontract.policy`` layer; an ``Exchange`` recorded for every attempt; typed errors
(``chatcontract.client.errors``) when a call fails.
"""

from __future__ import annotations

from ._async import AsyncChatClient, AsyncChatStream
from ._routes import Route
from ._sync import ChatClient, ChatStream
from .errors import (
    BudgetExceededError,
    CallFailedError,
    CallOutcome,
    DeadlineExhaustedError,
    KillSwitchError,
    NonRetryableError,
    RetriesExhaustedError,
    StreamInterrupted,
)
from .result import ChatResult, StreamDelta, ToolCallDelta

__all__ = [
    "AsyncChatClient",
    "AsyncChatStream",
    "BudgetExceededError",
    "CallFailedError",
    "CallOutcome",
    "ChatClient",
    "ChatResult",
    "ChatStream",
    "DeadlineExhaustedError",
    "KillSwitchError",
    "NonRetryableError",
    "RetriesExhaustedError",
    "Route",
    "StreamDelta",
    "StreamInterrupted",
    "ToolCallDelta",
]
