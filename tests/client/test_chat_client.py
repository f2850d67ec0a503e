import json

import pytest
from client_helpers import LONG, PONG, RecordingSink, contract_for, env_for

from chatcontract.client import ChatClient, ChatResult, StreamDelta
from chatcontract.contract import dump
from chatcontract.errors import ConfigError
from chatcontract.telemetry.events import RetryDecided


@pytest.fixture
def ok(sims):
    return sims()


def client_for(server, **kwargs):
    contract = kwargs.pop("contract", None) or contract_for(server.base_url)
    return ChatClient.from_contract(contract, environ=env_for(server.api_key), **kwargs)


def test_complete_returns_the_answer_with_its_single_attempt(ok):
    with client_for(ok) as client:
        result = client.complete(PONG, max_tokens=16)
    assert isinstance(result, ChatResult)
    assert (result.content, result.finish_reason, result.route) == ("pong", "stop", "primary")
    assert result.outcome == "success" and result.ok and not result.retried
    assert result.usage.total_tokens == result.usage.prompt_tokens + result.usage.completion_tokens
    assert result.requested_model == "gpt-4.1-nano"
    [attempt] = result.attempts
    assert attempt.ok and attempt.attempt == 1 and attempt.route == "primary"
    assert attempt.request.max_tokens == 16


def test_the_actual_cost_is_recorded_from_the_usage(ok):
    with client_for(ok) as client:
        result = client.complete(PONG, max_tokens=16)
    usage = result.usage
    expected = (usage.prompt_tokens * 0.08 + usage.completion_tokens * 0.32) / 1_000_000
    assert result.cost_usd == pytest.approx(expected)


def test_stream_yields_deltas_then_the_assembled_result(ok):
    with client_for(ok) as client, client.stream(LONG, max_tokens=64) as stream:
        deltas = list(stream)
    assert len(deltas) > 3
    assert all(isinstance(d, StreamDelta) and d for d in deltas)
    result = stream.result
    assert result.content == "".join(d.content for d in deltas)
    assert result.finish_reason == "stop"
    assert result.usage is not None  # include_usage was asked for: the contract expects it
    assert result.attempts[0].request.include_usage is True
    assert result.attempts[0].response.stream_verdict == "complete"


def test_stream_result_is_unavailable_before_the_end(ok):
    with client_for(ok) as client, client.stream(LONG, max_tokens=64) as stream:
        next(iter(stream))
        with pytest.raises(RuntimeError, match="iterate it to the end"):
            _ = stream.result


def test_until_done_drains_the_stream(ok):
    with client_for(ok) as client:
        result = client.stream(PONG, max_tokens=16).until_done()
    assert result.content == "pong"


def test_telemetry_sinks_see_every_exchange_and_no_decision_on_success(ok):
    sink = RecordingSink()
    with client_for(ok, telemetry_sinks=[sink]) as client:
        result = client.complete(PONG, max_tokens=16)
    assert sink.exchanges == list(result.attempts)
    assert sink.of(RetryDecided) == []


def test_completion_text_stays_out_of_exchanges_unless_captured(ok):
    with client_for(ok) as client:
        plain = client.complete(PONG, max_tokens=16)
    with client_for(ok, capture_content=True) as client:
        captured = client.complete(PONG, max_tokens=16)
    assert "pong" not in json.dumps(plain.attempts[0].to_dict())
    assert captured.attempts[0].response.content == "pong"


def test_from_contract_reads_a_contract_file(ok, tmp_path):
    path = tmp_path / "chatcontract.yaml"
    path.write_text(dump(contract_for(ok.base_url)))
    with ChatClient.from_contract(path, environ=env_for(ok.api_key)) as client:
        assert client.complete(PONG, max_tokens=16).content == "pong"


def test_model_override_is_used_for_the_primary_route(ok):
    with client_for(ok, model="gpt-4o-mini") as client:
        result = client.complete(PONG, max_tokens=16)
    assert result.requested_model == "gpt-4o-mini"
    assert result.attempts[0].request.model == "gpt-4o-mini"


@pytest.mark.parametrize(
    ("param", "match"),
    [("model", r"from_contract\(\.\.\., model=\.\.\.\)"), ("stream", r"call stream\(\)")],
    ids=["model", "stream"],
)
def test_reserved_parameters_are_refused_with_what_to_do_instead(ok, param, match):
    with client_for(ok) as client, pytest.raises(TypeError, match=match):
        client.complete(PONG, **{param: "x"})


def test_a_missing_key_is_a_configuration_error_naming_the_variables(ok):
    with pytest.raises(ConfigError, match=r"\$COMETAPI_KEY"):
        ChatClient.from_contract(contract_for(ok.base_url), environ={})


def test_a_fallback_on_another_host_without_its_own_key_variable_is_refused(ok):
    from dataclasses import replace

    from chatcontract.contract import FallbackRoute

    contract = replace(
        contract_for(ok.base_url),
        fallbacks=(FallbackRoute(name="other", base_url="http://127.0.0.2:1/v1"),),
    )
    with pytest.raises(ConfigError, match="auth_env"):
        ChatClient.from_contract(contract, environ=env_for(ok.api_key))


def test_routes_follow_the_contract_order_with_their_models(ok, sims):
    backup = sims("ok", api_key="cc-backup-key-0042")
    contract = contract_for(ok.base_url, fallback_url=backup.base_url, model_fallback=True)
    with ChatClient.from_contract(contract, environ=env_for(ok.api_key, backup.api_key)) as c:
        routes = [(r.name, r.model, r.base_url) for r in c.routes]
    assert routes == [
        ("primary", "gpt-4.1-nano", ok.base_url),
        ("smaller-model", "gpt-4o-mini", ok.base_url),
        ("backup", "gpt-4.1-nano", backup.base_url),
    ]
