"""Shared helpers for the simulator tests (a plain module: fixtures live in conftest.py)."""

from __future__ import annotations

from typing import Any

from chatcontract.simulator import DEFAULT_API_KEY

CHAT = "/v1/chat/completions"
AUTH = {"Authorization": f"Bearer {DEFAULT_API_KEY}"}
PONG = [{"role": "user", "content": "Reply with exactly: pong"}]
REQUEST_ID = r"^\d{14}\d{1,9}[0-9A-Za-z]{8}$"


def chat_body(*, model: str = "gpt-4o-mini", messages: Any = None, **extra: Any) -> dict[str, Any]:
    """A valid chat completions body, with overrides."""
    return {"model": model, "messages": PONG if messages is None else messages, **extra}


def stream_body(*, include_usage: bool = True, **extra: Any) -> dict[str, Any]:
    """A valid streaming body."""
    return chat_body(stream=True, stream_options={"include_usage": include_usage}, **extra)


def sse_events(text: str) -> list[str]:
    """The ``data:`` payloads of an SSE body, in order (comments and blank lines dropped)."""
    return [line[len("data: ") :] for line in text.split("\n") if line.startswith("data: ")]


def scenario(name: str, **more: str) -> dict[str, str]:
    """Headers choosing a scenario for one request."""
    return {"X-Chatcontract-Scenario": name, **more}
