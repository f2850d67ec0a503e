"""Authentication: both headers, missing and wrong keys per flavor, and auth before the body."""

from __future__ import annotations

import re

import pytest
from sim_helpers import CHAT, REQUEST_ID, chat_body

from chatcontract.simulator import DEFAULT_API_KEY

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": f"Bearer {DEFAULT_API_KEY}"},
        {"Authorization": f"bearer {DEFAULT_API_KEY}"},
        {"x-api-key": DEFAULT_API_KEY},
    ],
    ids=["bearer", "bearer-lowercase", "x-api-key"],
)
async def test_the_key_is_accepted_in_either_header(sim, headers):
    async with sim(headers=headers) as client:
        assert (await client.post(CHAT, json=chat_body())).status_code == 200


async def test_a_custom_key_replaces_the_default(sim):
    async with sim(api_key="sk-custom-key-0001", headers={"x-api-key": DEFAULT_API_KEY}) as client:
        assert (await client.post(CHAT, json=chat_body())).status_code == 401
    async with sim(
        api_key="sk-custom-key-0001", headers={"x-api-key": "sk-custom-key-0001"}
    ) as client:
        assert (await client.post(CHAT, json=chat_body())).status_code == 200


async def test_cometapi_wrong_key_is_invalid_token(sim):
    async with sim(headers={"Authorization": "Bearer sk-wrong-key-abcdef"}) as client:
        response = await client.post(CHAT, json=chat_body())
    assert response.status_code == 401
    error = response.json()["error"]
    assert list(error) == ["code", "message", "type"]
    assert error["code"] == ""
    assert error["type"] == "comet_api_error"
    match = re.fullmatch(r"Invalid token \(request id: (\S+)\)", error["message"])
    assert match
    assert re.fullmatch(REQUEST_ID, match.group(1))
    assert match.group(1) == response.headers["x-oneapi-request-id"]


async def test_cometapi_missing_key_is_token_not_provided(sim):
    async with sim(headers={}) as client:
        response = await client.post(CHAT, json=chat_body())
    assert response.status_code == 401
    assert response.json()["error"]["message"].startswith("Token not provided (request id: ")


async def test_openai_wrong_key_is_invalid_api_key_with_the_key_masked(sim):
    wrong = "sk-abcdefghijklmnopqrstuvwxyz"
    async with sim(flavor="openai", headers={"Authorization": f"Bearer {wrong}"}) as client:
        response = await client.post(CHAT, json=chat_body())
    assert response.status_code == 401
    error = response.json()["error"]
    assert list(error) == ["message", "type", "param", "code"]
    assert error["type"] == "invalid_request_error"
    assert error["param"] is None
    assert error["code"] == "invalid_api_key"
    assert error["message"].startswith("Incorrect API key provided: sk-ab***yz.")
    assert wrong not in response.text


async def test_openai_missing_key_says_no_key_was_provided(sim):
    async with sim(flavor="openai", headers={}) as client:
        response = await client.post(CHAT, json=chat_body())
    assert response.status_code == 401
    assert response.json()["error"]["message"].startswith("You didn't provide an API key.")


@pytest.mark.parametrize("flavor", ["cometapi", "openai"])
async def test_auth_is_checked_before_the_body_is_parsed(sim, flavor):
    async with sim(
        flavor=flavor, headers={"Authorization": "Bearer sk-wrong-key-abcdef"}
    ) as client:
        response = await client.post(
            CHAT, content=b"{this is not json", headers={"content-type": "application/json"}
        )
    assert response.status_code == 401
