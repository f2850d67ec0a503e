"""A short call deadline shrinks the fallback reserve: the primary route is not starved."""

import httpx2
import pytest
from client_helpers import PONG, Sleeps, contract_for, env_for

from chatcontract.client import ChatClient

COMPLETION = (
    b'{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4.1-nano",'
    b'"choices":[{"index":0,"message":{"role":"assistant","content":"pong"},'
    b'"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}'
)
QUOTA = b'{"error":{"message":"user quota is not enough","type":"comet_api_error","code":"insufficient_user_quota"}}'
JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(
    ("deadline_s", "primary_ms"),
    [(1.0, 500), (5.0, 2_500), (20.0, 15_000)],
    ids=["below-the-reserve", "equal-to-the-reserve", "above-twice-the-reserve"],
)
def test_the_primary_gets_at_least_half_of_a_short_deadline(deadline_s, primary_ms):
    answers = iter([httpx2.Response(403, headers=JSON, content=QUOTA)])

    def handler(request):
        return next(answers, httpx2.Response(200, headers=JSON, content=COMPLETION))

    contract = contract_for("http://provider.test/v1", model_fallback=True, reserve_ms=5_000)
    with ChatClient.from_contract(
        contract,
        environ=env_for("cc-secret-key-0001"),
        transport=httpx2.MockTransport(handler),
        sleep=Sleeps(),
    ) as client:
        result = client.complete(PONG, max_tokens=16, deadline_s=deadline_s)
    primary, fallback = result.attempts
    assert result.route == "smaller-model"
    assert primary.request.timeout_budget_ms == pytest.approx(primary_ms, abs=50)
    assert fallback.request.timeout_budget_ms > primary_ms / 2
