"""``chatcontract gateway``: the contract for every language, as an OpenAI-compatible sidecar.

``GatewayState`` holds what one process shares between requests (the client driving the
``CallPlan``, breakers, budget guard, kill switch flag, in-flight count); ``create_app(state)``
is the raw ASGI app serving ``POST /v1/chat/completions`` and ``GET /v1/models``;
``GatewayServer`` serves it on a background thread. See ``docs/gateway.md``.
"""

from __future__ import annotations

from .app import CHAT_PATH, MODELS_PATH, GatewayApp, create_app
from .errors import ERROR_TYPES, GatewayError
from .request import DEADLINE_HEADER
from .server import DEFAULT_HOST, DEFAULT_PORT, GatewayServer, server_config
from .state import DEFAULT_MAX_BODY_BYTES, GatewayState

__all__ = [
    "CHAT_PATH",
    "DEADLINE_HEADER",
    "DEFAULT_HOST",
    "DEFAULT_MAX_BODY_BYTES",
    "DEFAULT_PORT",
    "ERROR_TYPES",
    "MODELS_PATH",
    "GatewayApp",
    "GatewayError",
    "GatewayServer",
    "GatewayState",
    "create_app",
    "server_config",
]
