import pytest
from client_helpers import LONG, PONG, SCENARIO, Sleeps, contract_for, env_for, trail

from chatcontract.client import ChatClient, StreamInterrupted
from chatcontract.contract import Streaming, Timeouts


def stream_client(server, *, backup=None, timeouts=None, include_usage=True):
    changes = {"streaming": Streaming(include_usage=include_usage)}
    if timeouts is not None:
        changes["timeouts"] = timeouts
    contract = contract_for(
        server.base_url, fallback_url=backup.base_url if backup else None, **changes
    )
    env = env_for(server.api_key, backup.api_key if backup else None)
    return ChatClient.from_contract(contract, environ=env, sleep=Sleeps())


def read_all(client, messages, **params):
    with client.stream(messages, max_tokens=64, **params) as stream:
        deltas = [delta.content for delta in stream]
    return deltas, stream.result


def full_answer(sims, messages):
    with stream_client(sims()) as client:
        return read_all(client, messages)[1].content


def test_a_stream_cut_before_the_first_delta_falls_back_and_succeeds(sims):
    # A one-token answer without a usage chunk: the cut leaves only the empty role chunk.
    # The simulator drops the connection: a network failure, retried once, then the fallback.
    with stream_client(sims("cut_stream"), backup=sims(), include_usage=False) as client:
        deltas, result = read_all(client, PONG)
    assert deltas == ["pong"] and result.content == "pong"
    assert trail(result.attempts) == [
        ("primary", 1, "stream_dropped"),
        ("primary", 2, "stream_dropped"),
        ("backup", 3, None),
    ]
    assert result.route == "backup"


def test_a_stream_cut_after_the_first_delta_raises_stream_interrupted_with_the_partial(sims):
    complete = full_answer(sims, LONG)
    delivered = []
    with (
        stream_client(sims("cut_stream"), backup=sims()) as client,
        pytest.raises(StreamInterrupted) as caught,
        client.stream(LONG, max_tokens=64) as s,
    ):
        delivered.extend(delta.content for delta in s)
    error = caught.value
    assert error.partial_content == "".join(delivered)
    assert error.partial_content and complete.startswith(error.partial_content)
    assert len(error.partial_content) < len(complete)  # never a silent short answer
    assert (error.failure.category, error.failure.code) == ("network", "stream_dropped")
    assert trail(error.attempts) == [("primary", 1, "stream_dropped")]  # none after deltas
    assert error.outcome == "stream_interrupted"
    assert f"{len(error.partial_content)} characters" in str(error)


def test_done_without_finish_reason_is_an_interruption_not_a_success(sims):
    with (
        stream_client(sims("done_without_finish_reason"), backup=sims()) as client,
        pytest.raises(StreamInterrupted) as caught,
    ):
        read_all(client, LONG)
    assert caught.value.failure.code == "stream_truncated"
    assert caught.value.partial.finish_reason is None
    assert caught.value.partial_content


def test_a_stall_between_chunks_is_detected_by_the_read_idle_limit(sims):
    timeouts = Timeouts(connect_ms=1_000, first_byte_ms=300, first_token_ms=300, total_ms=10_000)
    with (
        stream_client(sims("stall_mid_stream", delay_ms=3_000), timeouts=timeouts) as client,
        pytest.raises(StreamInterrupted) as caught,
    ):
        read_all(client, LONG)
    failure = caught.value.failure
    assert (failure.kind, failure.category, failure.code) == (
        "transport",
        "timeout",
        "stream_stalled",
    )
    assert caught.value.partial_content


def test_keep_alives_without_a_token_hit_the_first_token_limit_then_fall_back(sims):
    timeouts = Timeouts(connect_ms=1_000, first_byte_ms=5_000, first_token_ms=400, total_ms=10_000)
    slow = sims("slow_first_token", delay_ms=5_000, ping_interval_ms=50)
    with stream_client(slow, backup=sims(), timeouts=timeouts) as client:
        deltas, result = read_all(client, PONG)
    assert deltas == ["pong"]
    # A silent route is not retried: straight to the backup.
    assert trail(result.attempts) == [
        ("primary", 1, "first_token_timeout"),
        ("backup", 2, None),
    ]
    assert result.attempts[0].response.stream_verdict == "stalled"
    assert result.attempts[0].timings.total_ms < 1_500


def test_an_in_band_error_after_the_first_delta_is_an_interruption(sims):
    with (
        stream_client(sims("inband_error_chunk"), backup=sims()) as client,
        pytest.raises(StreamInterrupted) as caught,
    ):
        read_all(client, LONG)
    assert caught.value.failure.kind == "api_error"
    assert caught.value.partial_content


def test_a_malformed_chunk_after_deltas_is_an_interruption(sims):
    with (
        stream_client(sims("malformed_chunk"), backup=sims()) as client,
        pytest.raises(StreamInterrupted) as caught,
    ):
        read_all(client, LONG)
    assert caught.value.failure.code == "malformed_chunk"


def test_an_error_status_before_any_byte_falls_back_like_a_plain_call(sims):
    with stream_client(sims("quota_exhausted"), backup=sims()) as client:
        deltas, result = read_all(client, PONG)
    assert "".join(deltas) == "pong"
    assert [a.route for a in result.attempts] == ["primary", "backup"]


def test_a_complete_stream_missing_its_usage_chunk_succeeds_with_the_violation_recorded(sims):
    with stream_client(sims("missing_usage")) as client:
        deltas, result = read_all(client, PONG)
    assert ("".join(deltas), result.finish_reason) == ("pong", "stop")
    assert [v.code for v in result.violations] == ["missing_usage"]
    assert trail(result.attempts) == [("primary", 1, "missing_usage")]


def test_the_per_request_scenario_header_reaches_the_provider(sims):
    with stream_client(sims()) as client, pytest.raises(StreamInterrupted):
        read_all(client, LONG, headers={SCENARIO: "cut_stream"})
