"""A non-streamed answer is parsed once per attempt: the client takes the parse the transport's
observer left in the request's extensions, and gives exactly the answer it would by parsing the
body again (which it still does when that parse is absent or of another body)."""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

import httpx2
import pytest
from client_helpers import PONG, contract_for, env_for

import chatcontract.client._core as core_module
import chatcontract.transport.observer as observer_module
from chatcontract.client import AsyncChatClient, ChatClient, ChatResult
from chatcontract.transport.observer import ParsedBody
from chatcontract.wire import parse_completion

# the module (``chatcontract.failures.classify`` is also the name of a function)
classify_module = importlib.import_module("chatcontract.failures.classify")

COMPLETION = (
    b'{"id":"chatcmpl-1","object":"chat.completion","created":1774412483,'
    b'"model":"gpt-4.1-nano-2025-04-14","choices":[{"index":0,"message":{"role":"assistant",'
    b'"content":"pong"},"finish_reason":"stop"}],'
    b'"usage":{"prompt_tokens":12,"completion_tokens":1,"total_tokens":13}}'
)
BUSY = b'{"error": {"message": "busy", "type": "server_error"}}'


class Upstream:
    """Answers each request with the next (status, body) of ``script`` (the last one after)."""

    def __init__(self, script: list[tuple[int, bytes]]) -> None:
        self.script = script
        self.sent = 0

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        status, body = self.script[min(self.sent, len(self.script) - 1)]
        self.sent += 1
        return httpx2.Response(status, headers={"content-type": "application/json"}, content=body)


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[bytes]:
    """Every body ``parse_completion`` is called on, wherever the call parses one."""
    seen: list[bytes] = []

    def counting(body: bytes, **kwargs: Any) -> Any:
        seen.append(body)
        return parse_completion(body, **kwargs)

    for module in (observer_module, core_module, classify_module):
        monkeypatch.setattr(module, "parse_completion", counting)
    return seen


SCRIPTS = [
    pytest.param([(200, COMPLETION)], 1, id="one-attempt"),
    pytest.param([(503, BUSY), (200, COMPLETION)], 1, id="retried-after-a-503"),
]


def _answer(result: ChatResult) -> tuple[object, ...]:
    fields = ("content", "reasoning", "refusal", "tool_calls", "finish_reason", "usage", "model")
    return (*(getattr(result, name) for name in fields), result.outcome, result.violations)


def _complete(upstream: Upstream) -> ChatResult:
    contract = contract_for("http://provider.test/v1")
    with ChatClient.from_contract(
        contract, environ=env_for("cc-key-000111"), transport=httpx2.MockTransport(upstream)
    ) as client:
        return client.complete(PONG, max_tokens=16)


async def _acomplete(upstream: Upstream) -> ChatResult:
    contract = contract_for("http://provider.test/v1")
    async with AsyncChatClient.from_contract(
        contract, environ=env_for("cc-key-000111"), transport=httpx2.MockTransport(upstream)
    ) as client:
        return await client.complete(PONG, max_tokens=16)


@pytest.mark.parametrize(("script", "answered"), SCRIPTS)
def test_a_completed_body_is_parsed_once_per_answered_attempt(script, answered, parses):
    upstream = Upstream(script)
    result = _complete(upstream)
    assert (result.content, len(result.attempts)) == ("pong", len(script))
    assert parses == [COMPLETION] * answered


@pytest.mark.anyio
@pytest.mark.parametrize(("script", "answered"), SCRIPTS)
async def test_the_async_client_parses_a_completed_body_once(script, answered, parses):
    result = await _acomplete(Upstream(script))
    assert (result.content, len(result.attempts)) == ("pong", len(script))
    assert parses == [COMPLETION] * answered


@pytest.mark.parametrize(("script", "answered"), SCRIPTS)
def test_the_answer_is_the_one_parsing_the_body_again_gives(script, answered, monkeypatch):
    handed_over = _complete(Upstream(script))
    monkeypatch.setattr(ParsedBody, "result_for", lambda self, body, contract: None)
    parsed_again = _complete(Upstream(script))
    assert _answer(handed_over) == _answer(parsed_again)
    assert handed_over.content == "pong"


OTHER = COMPLETION.replace(b'"content":"pong"', b'"content":"other"')


def _handed(body: bytes, *, same_contract: bool = True) -> ParsedBody:
    contract = CONTRACT if same_contract else dataclasses.replace(CONTRACT)
    return ParsedBody(body, contract, parse_completion(body, contract=contract))


CONTRACT = contract_for("http://provider.test/v1")


@pytest.mark.parametrize(
    ("parsed", "reused"),
    [
        pytest.param(None, False, id="absent"),
        pytest.param(_handed(COMPLETION), True, id="same-body"),
        pytest.param(_handed(OTHER), False, id="another-body"),
        pytest.param(_handed(COMPLETION, same_contract=False), False, id="another-contract"),
        pytest.param(_handed(COMPLETION[:40]), False, id="a-cut-body"),
    ],
)
def test_answer_of_takes_the_handed_over_parse_only_for_the_same_body(parsed, reused, parses):
    exchange = _complete(Upstream([(200, COMPLETION)])).attempts[-1]
    with ChatClient.from_contract(
        CONTRACT, environ=env_for("cc-key-000111"), transport=httpx2.MockTransport(Upstream([]))
    ) as client:
        parses.clear()
        answer = client._core.answer_of(exchange, COMPLETION, parsed)
    assert answer is not None and answer.content == "pong"
    assert parses == ([] if reused else [COMPLETION])
