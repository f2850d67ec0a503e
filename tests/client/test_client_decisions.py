import json

import httpx2
import pytest
from client_helpers import (
    PONG,
    RecordingSink,
    Sleeps,
    contract_for,
    env_for,
    trail,
)

from chatcontract.client import (
    ChatClient,
    NonRetryableError,
    RetriesExhaustedError,
)
from chatcontract.contract import RetryPolicy
from chatcontract.telemetry.events import FallbackActivated, RetryDecided, RetrySucceeded

COMPLETION = (
    b'{"id":"chatcmpl-1","object":"chat.completion","created":1774412483,'
    b'"model":"gpt-4.1-nano-2025-04-14","choices":[{"index":0,"message":{"role":"assistant",'
    b'"content":"pong"},"finish_reason":"stop"}],'
    b'"usage":{"prompt_tokens":12,"completion_tokens":1,"total_tokens":13}}'
)
INVALID_REQUEST = (
    b'{"error":{"message":"field messages is required (request id: 2026abc)",'
    b'"type":"comet_api_error","param":"","code":"invalid_request"}}'
)
JSON = {"content-type": "application/json"}


class Counter:
    """A MockTransport handler answering from a script, counting requests."""

    def __init__(self, *responses):
        self.responses = list(responses)
        self.requests = []

    def __call__(self, request):
        self.requests.append(request)
        answer = self.responses[min(len(self.requests), len(self.responses)) - 1]
        if isinstance(answer, Exception):
            raise answer
        return answer


def mock_client(handler, *, sleep=None, sinks=(), **contract_changes):
    contract = contract_for("http://provider.test/v1", **contract_changes)
    return ChatClient.from_contract(
        contract,
        environ=env_for("cc-secret-key-0001"),
        transport=httpx2.MockTransport(handler),
        sleep=sleep or Sleeps(),
        telemetry_sinks=sinks,
    )


def sim_client(
    server, *, backup=None, sleep=None, sinks=(), preset="cometapi", key=None, **contract_changes
):
    contract = contract_for(
        server.base_url,
        preset=preset,
        fallback_url=backup.base_url if backup else None,
        **contract_changes,
    )
    env = env_for(key or server.api_key, backup.api_key if backup else None)
    return ChatClient.from_contract(
        contract, environ=env, sleep=sleep or Sleeps(), telemetry_sinks=sinks
    )


# -- raise at once ------------------------------------------------------------------------


def test_server_side_validation_error_raises_at_once_with_one_attempt():
    handler = Counter(httpx2.Response(500, headers=JSON, content=INVALID_REQUEST))
    with (
        mock_client(handler, model_fallback=True) as client,
        pytest.raises(NonRetryableError) as caught,
    ):
        client.complete(PONG, max_tokens=16)
    assert len(handler.requests) == 1
    assert trail(caught.value.attempts) == [("primary", 1, "invalid_request")]
    assert caught.value.failure.category == "validation"
    assert caught.value.outcome == "non_retryable"


def test_auth_error_raises_at_once_with_one_attempt(sims):
    server = sims()
    with (
        sim_client(server, backup=sims(), key="cc-wrong-key-314159") as client,
        pytest.raises(NonRetryableError) as caught,
    ):
        client.complete(PONG, max_tokens=16)
    assert caught.value.failure.category == "auth"
    assert [a.route for a in caught.value.attempts] == ["primary"]


def test_unknown_model_raises_at_once_with_one_attempt(sims):
    server = sims()
    contract = contract_for(server.base_url, model_fallback=True)
    with (
        ChatClient.from_contract(
            contract, model="no-such-model", environ=env_for(server.api_key)
        ) as client,
        pytest.raises(NonRetryableError) as caught,
    ):
        client.complete(PONG, max_tokens=16)
    assert (caught.value.failure.category, caught.value.failure.code) == (
        "model",
        "model_not_found",
    )
    assert len(caught.value.attempts) == 1


def test_a_request_breaking_the_contract_is_refused_before_sending():
    handler = Counter(httpx2.Response(200, headers=JSON, content=COMPLETION))
    with mock_client(handler) as client, pytest.raises(NonRetryableError) as caught:
        client.complete([{"role": "user"}], max_tokens=16)
    assert handler.requests == []
    assert caught.value.attempts == ()
    assert caught.value.failure.category == "validation"
    assert "$.messages[0].content" in str(caught.value)


# -- rate limits --------------------------------------------------------------------------


def test_openai_rate_limit_is_retried_after_the_retry_after_ms_header(sims):
    sleeps = Sleeps()
    retry = RetryPolicy(max_attempts=3, backoff_initial_ms=5, jitter=0.0, retry_after_cap_ms=10_000)
    with (
        sim_client(
            sims("rate_limit", flavor="openai"), preset="openai", sleep=sleeps, retry=retry
        ) as client,
        pytest.raises(RetriesExhaustedError) as caught,
    ):
        client.complete(PONG, max_tokens=16)
    assert sleeps.calls == [1.0, 1.0]  # retry-after-ms: 1000, not the 5 ms backoff
    assert trail(caught.value.attempts) == [
        ("primary", n, "rate_limit_exceeded") for n in (1, 2, 3)
    ]
    assert caught.value.failure.category == "rate_limit"


def test_a_retry_after_above_the_cap_is_not_cut_short_into_an_early_retry(sims):
    # The openai flavor asks for 1 s; retrying after a 0.2 s cap would hammer inside the window.
    sleeps = Sleeps()
    retry = RetryPolicy(max_attempts=2, retry_after_cap_ms=200)
    with (
        sim_client(
            sims("rate_limit", flavor="openai"), preset="openai", sleep=sleeps, retry=retry
        ) as client,
        pytest.raises(RetriesExhaustedError),
    ):
        client.complete(PONG, max_tokens=16)
    assert sleeps.calls == []


def test_an_empty_429_backs_off_by_the_policy(sims):
    sleeps = Sleeps()
    with (
        sim_client(sims("rate_limit"), sleep=sleeps) as client,
        pytest.raises(RetriesExhaustedError),
    ):
        client.complete(PONG, max_tokens=16)
    assert sleeps.calls == [pytest.approx(0.005)]


def test_a_rate_limit_then_success_reports_the_retry():
    sink = RecordingSink()
    handler = Counter(
        httpx2.Response(429, headers={"retry-after-ms": "30"}),
        httpx2.Response(200, headers=JSON, content=COMPLETION),
    )
    sleeps = Sleeps()
    with mock_client(handler, sleep=sleeps, sinks=[sink]) as client:
        result = client.complete(PONG, max_tokens=16)
    assert result.content == "pong" and result.retried
    assert sleeps.calls == [0.03]
    assert trail(result.attempts) == [("primary", 1, "rate_limited"), ("primary", 2, None)]
    assert [(e.route, e.attempts) for e in sink.of(RetrySucceeded)] == [("primary", 2)]


# -- fallbacks ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("flavor", "code"), [("cometapi", "insufficient_user_quota"), ("openai", "insufficient_quota")]
)
def test_quota_falls_back_without_retrying(sims, flavor, code):
    sink = RecordingSink()
    sleeps = Sleeps()
    with sim_client(
        sims("quota_exhausted", flavor=flavor),
        preset=flavor,
        backup=sims(flavor=flavor),
        sleep=sleeps,
        sinks=[sink],
    ) as client:
        result = client.complete(PONG, max_tokens=16)
    assert result.content == "pong" and result.route == "backup"
    assert trail(result.attempts) == [("primary", 1, code), ("backup", 2, None)]
    assert sleeps.calls == []
    assert [(e.from_route, e.to_route, e.category) for e in sink.of(FallbackActivated)] == [
        ("primary", "backup", "quota")
    ]


@pytest.mark.parametrize("scenario", ["server_error", "upstream_unavailable", "gateway_timeout"])
def test_upstream_5xx_gets_one_retry_then_the_fallback(sims, scenario):
    sink = RecordingSink()
    sleeps = Sleeps()
    with sim_client(
        sims(scenario),
        backup=sims(),
        sleep=sleeps,
        sinks=[sink],
        retry=RetryPolicy(max_attempts=5, backoff_initial_ms=5, jitter=0),
    ) as client:
        result = client.complete(PONG, max_tokens=16)
    assert [(a.route, a.attempt, a.ok) for a in result.attempts] == [
        ("primary", 1, False),
        ("primary", 2, False),
        ("backup", 3, True),
    ]
    assert {a.failure.category for a in result.attempts[:2]} == {"upstream"}
    assert [d.action for d in result.decisions] == ["retry", "fallback"]
    assert sleeps.calls == [pytest.approx(0.005)]
    assert [e.decision for e in sink.of(RetryDecided)] == ["retry", "fallback"]
    assert [(e.route, e.attempts) for e in sink.of(RetrySucceeded)] == [("backup", 3)]


@pytest.mark.parametrize(
    ("scenario", "category"),
    [
        ("empty_choices", "contract"),
        ("bad_json", "contract"),
        ("wrong_types", "contract"),
        ("done_without_finish_reason", "contract"),
        ("empty_content", "content"),
    ],
)
def test_a_broken_answer_after_a_200_falls_back_without_retrying_the_route(
    sims, scenario, category
):
    with sim_client(sims(scenario), backup=sims()) as client:
        result = client.complete(PONG, max_tokens=16)
    [first, second] = result.attempts
    assert (first.route, first.response.status, first.failure.category) == (
        "primary",
        200,
        category,
    )
    assert (second.route, second.ok, result.content) == ("backup", True, "pong")


def test_without_a_fallback_a_broken_answer_raises_instead_of_returning_it(sims):
    with (
        sim_client(sims("empty_content")) as client,
        pytest.raises(RetriesExhaustedError) as caught,
    ):
        client.complete(PONG, max_tokens=16)
    assert caught.value.failure.code == "empty_content"
    assert len(caught.value.attempts) == 1


def test_a_connection_reset_is_retried_once_at_once_and_nothing_below_retries():
    handler = Counter(httpx2.ConnectError("connection refused"))
    sleeps = Sleeps()
    with (
        mock_client(handler, sleep=sleeps, model_fallback=True) as client,
        pytest.raises(RetriesExhaustedError) as caught,
    ):
        client.complete(PONG, max_tokens=16)
    # primary: attempt + one immediate retry; fallback: the same; never more requests
    # than attempts (no transport-level retries stacked under the policy).
    assert [a.route for a in caught.value.attempts] == [
        "primary",
        "primary",
        "smaller-model",
        "smaller-model",
    ]
    assert len(handler.requests) == len(caught.value.attempts)
    assert sleeps.calls == []
    assert caught.value.failure.category == "network"


def test_every_attempt_carries_its_number_and_route_to_the_transport():
    handler = Counter(
        httpx2.Response(
            503, headers=JSON, content=b'{"error":{"message":"x","type":"t","code":"busy"}}'
        )
    )
    with mock_client(handler, model_fallback=True) as client, pytest.raises(RetriesExhaustedError):
        client.complete(PONG, max_tokens=16)
    meta = [dict(r.extensions["chatcontract"]) for r in handler.requests]
    deadlines = [m.pop("deadline_s") for m in meta]
    assert all(0 < d <= 10 for d in deadlines)  # each attempt's share of the call deadline
    assert meta == [
        {"attempt": 1, "route": "primary"},
        {"attempt": 2, "route": "primary"},
        {"attempt": 3, "route": "smaller-model"},
        {"attempt": 4, "route": "smaller-model"},
    ]
    models = [json.loads(r.content)["model"] for r in handler.requests]
    assert models == ["gpt-4.1-nano", "gpt-4.1-nano", "gpt-4o-mini", "gpt-4o-mini"]
