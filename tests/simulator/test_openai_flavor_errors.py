"""The openai flavor's statuses, bodies and headers."""

from __future__ import annotations

import re

import pytest
from sim_helpers import CHAT, chat_body, scenario

pytestmark = pytest.mark.anyio


def openai_error(response) -> dict:
    error = response.json()["error"]
    assert list(error) == ["message", "type", "param", "code"]
    assert re.fullmatch(r"req_[0-9a-f]{32}", response.headers["x-request-id"])
    assert "(request id:" not in error["message"]
    return error


async def test_missing_messages_is_400_missing_required_parameter(sim):
    async with sim(flavor="openai") as client:
        response = await client.post(CHAT, json={"model": "gpt-4o-mini"})
    assert response.status_code == 400
    assert openai_error(response) == {
        "message": "Missing required parameter: 'messages'.",
        "type": "invalid_request_error",
        "param": "messages",
        "code": "missing_required_parameter",
    }


async def test_wrong_type_is_400_invalid_type_naming_the_parameter(sim):
    async with sim(flavor="openai") as client:
        response = await client.post(CHAT, json=chat_body(max_tokens="abc"))
    assert response.status_code == 400
    error = openai_error(response)
    assert error["param"] == "max_tokens"
    assert error["code"] == "invalid_type"
    assert (
        error["message"]
        == "Invalid type for 'max_tokens': expected an integer, but got a string instead."
    )


async def test_max_tokens_zero_is_400_below_minimum(sim):
    async with sim(flavor="openai") as client:
        response = await client.post(CHAT, json=chat_body(max_tokens=0))
    assert response.status_code == 400
    assert openai_error(response)["code"] == "integer_below_min_value"


async def test_malformed_json_is_400_invalid_request_error(sim):
    async with sim(flavor="openai") as client:
        response = await client.post(
            CHAT, content=b"{oops", headers={"content-type": "application/json"}
        )
    assert response.status_code == 400
    error = openai_error(response)
    assert error["type"] == "invalid_request_error"
    assert error["message"].startswith("We could not parse the JSON body of your request.")


async def test_unknown_model_is_404_model_not_found(sim):
    async with sim(flavor="openai") as client:
        response = await client.post(CHAT, json=chat_body(model="gpt-nope"))
    assert response.status_code == 404
    assert openai_error(response) == {
        "message": "The model `gpt-nope` does not exist or you do not have access to it.",
        "type": "invalid_request_error",
        "param": None,
        "code": "model_not_found",
    }


async def test_rate_limit_is_429_with_retry_and_rate_limit_headers(sim):
    async with sim(flavor="openai") as client:
        response = await client.post(CHAT, json=chat_body(), headers=scenario("rate_limit"))
    assert response.status_code == 429
    error = openai_error(response)
    assert error["type"] == "requests"
    assert error["code"] == "rate_limit_exceeded"
    assert error["message"].startswith("Rate limit reached for gpt-4o-mini")
    assert response.headers["retry-after"] == "1"
    assert response.headers["retry-after-ms"] == "1000"
    for kind in ("requests", "tokens"):
        for name in ("limit", "remaining", "reset"):
            assert f"x-ratelimit-{name}-{kind}" in response.headers
    assert response.headers["x-ratelimit-remaining-requests"] == "0"


async def test_quota_is_429_insufficient_quota(sim):
    async with sim(flavor="openai") as client:
        response = await client.post(CHAT, json=chat_body(), headers=scenario("quota_exhausted"))
    assert response.status_code == 429
    error = openai_error(response)
    assert (error["type"], error["code"]) == ("insufficient_quota", "insufficient_quota")


@pytest.mark.parametrize("path", ["/", "/v1/x"], ids=["outside-v1", "inside-v1"])
async def test_unknown_paths_are_json_404_invalid_url(sim, path):
    async with sim(flavor="openai", headers={}) as client:
        response = await client.get(path)
    assert response.status_code == 404
    assert openai_error(response)["message"] == f"Invalid URL (GET {path})"
