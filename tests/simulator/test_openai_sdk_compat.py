"""The official openai SDK against the simulator behaves as against the real service."""

from __future__ import annotations

import openai
import pytest

from chatcontract.simulator import SimulatorServer

PONG = [{"role": "user", "content": "Reply with exactly: pong"}]


def sdk(
    server: SimulatorServer, *, api_key: str | None = None, scenario: str | None = None
) -> openai.OpenAI:
    headers = {"X-Chatcontract-Scenario": scenario} if scenario else None
    return openai.OpenAI(
        base_url=server.base_url,
        api_key=api_key or server.api_key,
        max_retries=0,
        timeout=5.0,
        default_headers=headers,
    )


def test_a_completion_parses(comet_server):
    with sdk(comet_server) as client:
        completion = client.chat.completions.create(model="gpt-4.1-nano", messages=PONG)
    assert completion.choices[0].message.content == "pong"
    assert completion.choices[0].finish_reason == "stop"
    assert completion.model == "gpt-4.1-nano-2025-04-14"
    assert completion.usage is not None
    assert (
        completion.usage.total_tokens
        == completion.usage.prompt_tokens + completion.usage.completion_tokens
    )
    assert completion.usage.completion_tokens_details is not None
    assert completion.service_tier == "default"


def test_a_stream_parses_with_usage(comet_server):
    with sdk(comet_server) as client:
        stream = client.chat.completions.create(
            model="gpt-4o-mini", messages=PONG, stream=True, stream_options={"include_usage": True}
        )
        chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "pong"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 1


def test_models_list_parses(comet_server):
    with sdk(comet_server) as client:
        ids = [model.id for model in client.models.list()]
    assert "gpt-4o-mini" in ids


def test_a_wrong_key_raises_authentication_error(comet_server):
    with (
        sdk(comet_server, api_key="sk-wrong-key-abcdef") as client,
        pytest.raises(openai.AuthenticationError) as err,
    ):
        client.chat.completions.create(model="gpt-4o-mini", messages=PONG)
    assert err.value.status_code == 401
    assert "Invalid token" in str(err.value)


def test_cometapi_unknown_model_raises_the_503_class(comet_server):
    with sdk(comet_server) as client, pytest.raises(openai.InternalServerError) as err:
        client.chat.completions.create(model="definitely-not-a-real-model", messages=PONG)
    assert err.value.status_code == 503
    assert err.value.code == "model_not_found"


def test_cometapi_missing_messages_raises_a_500_with_invalid_request(comet_server):
    with sdk(comet_server) as client, pytest.raises(openai.InternalServerError) as err:
        client.chat.completions.create(model="gpt-4o-mini", messages=[])
    assert err.value.status_code == 500
    assert err.value.code == "invalid_request"


def test_openai_flavor_unknown_model_raises_not_found(openai_server):
    with sdk(openai_server) as client, pytest.raises(openai.NotFoundError) as err:
        client.chat.completions.create(model="gpt-nope", messages=PONG)
    assert err.value.code == "model_not_found"


def test_openai_flavor_rate_limit_raises_rate_limit_error(openai_server):
    with (
        sdk(openai_server, scenario="rate_limit") as client,
        pytest.raises(openai.RateLimitError) as err,
    ):
        client.chat.completions.create(model="gpt-4o-mini", messages=PONG)
    assert err.value.response.headers["retry-after"] == "1"


def test_cometapi_empty_429_raises_rate_limit_error(comet_server):
    with sdk(comet_server, scenario="rate_limit") as client, pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="gpt-4o-mini", messages=PONG)


def test_reset_raises_a_connection_error(comet_server):
    with sdk(comet_server, scenario="reset") as client, pytest.raises(openai.APIConnectionError):
        client.chat.completions.create(model="gpt-4o-mini", messages=PONG)


async def _async_completion(server: SimulatorServer) -> str | None:
    async with openai.AsyncOpenAI(
        base_url=server.base_url, api_key=server.api_key, max_retries=0
    ) as client:
        completion = await client.chat.completions.create(model="gpt-4o-mini", messages=PONG)
    return completion.choices[0].message.content


@pytest.mark.anyio
async def test_the_async_sdk_parses_too(comet_server):
    assert await _async_completion(comet_server) == "pong"


def _drain(stream, into: list[str]) -> None:
    """Append each delta as it arrives: what came before an error stays in ``into``."""
    into.extend(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)


def test_an_inband_stream_error_raises_api_error_mid_stream(comet_server):
    received: list[str] = []
    with sdk(comet_server, scenario="inband_error_chunk") as client:
        stream = client.chat.completions.create(model="gpt-4o-mini", messages=PONG, stream=True)
        with pytest.raises(openai.APIError, match="overloaded"):
            _drain(stream, received)
    assert received == ["", "pong"]  # the role chunk and the first content chunk came first
