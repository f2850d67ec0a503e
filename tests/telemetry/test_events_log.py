import json
import logging

import pytest

from chatcontract.errors import ConfigError
from chatcontract.failures import Failure
from chatcontract.telemetry import (
    EVENT_LOGGER,
    CallLabels,
    DeadlineExhausted,
    FallbackActivated,
    JsonEventLog,
    RetrySucceeded,
    TelemetrySink,
    events_log,
)
from chatcontract.telemetry.events import BreakerChanged

LABELS = CallLabels(provider="cometapi", endpoint="/chat/completions")
PROMPT = "Reply with exactly: pong"


@pytest.fixture
def lines(caplog):
    """The JSON lines written to the chatcontract.events logger, parsed, with their level."""
    caplog.set_level(logging.DEBUG, logger=EVENT_LOGGER)

    def read():
        return [
            (record.levelno, json.loads(record.getMessage()))
            for record in caplog.records
            if record.name == EVENT_LOGGER
        ]

    return read


def test_the_log_satisfies_the_telemetry_sink_protocol():
    assert isinstance(JsonEventLog(), TelemetrySink)


def test_every_failure_is_logged_as_a_warning(lines, call):
    log = JsonEventLog(shadow_rate=0.0)
    exchange = call("quota_exhausted")
    log.handle_exchange(exchange, LABELS)
    [(level, line)] = lines()
    assert level == logging.WARNING
    assert line["event"] == "exchange"
    assert line["provider"] == "cometapi"
    assert line["outcome"] == "failure"
    assert line["failure"]["category"] == "quota"
    assert line["request_id"] == exchange.request_id
    assert line["request"]["shape_fingerprint"] == exchange.request.shape_fingerprint
    assert line["timings"]["total_ms"] == pytest.approx(exchange.timings.total_ms)


def test_successes_are_logged_only_when_sampled(lines, call):
    exchange = call("ok")
    JsonEventLog(shadow_rate=0.01, rng=lambda: 0.5).handle_exchange(exchange, LABELS)
    assert lines() == []
    JsonEventLog(shadow_rate=0.01, rng=lambda: 0.001).handle_exchange(exchange, LABELS)
    [(level, line)] = lines()
    assert level == logging.INFO
    assert line["outcome"] == "success"
    assert line["shadow_rate"] == 0.01


def test_a_zero_shadow_rate_never_logs_a_success(lines, call):
    JsonEventLog(shadow_rate=0.0, rng=lambda: 0.0).handle_exchange(call("ok"), LABELS)
    assert lines() == []


def test_the_sampling_rate_is_roughly_kept(lines, built):
    import random

    log = JsonEventLog(shadow_rate=0.1, rng=random.Random(7).random)
    for _ in range(2_000):
        log.handle_exchange(built(), LABELS)
    assert 140 <= len(lines()) <= 260


def test_no_prompt_no_completion_no_secret_reaches_a_line(caplog, call, simulator):
    caplog.set_level(logging.DEBUG, logger=EVENT_LOGGER)
    log = JsonEventLog(shadow_rate=1.0, secrets=[simulator.api_key])
    log.handle_exchange(call("ok"), LABELS)
    log.handle_exchange(call("rate_limit"), LABELS)
    text = "\n".join(record.getMessage() for record in caplog.records)
    assert len(caplog.records) == 2
    assert simulator.api_key not in text
    assert PROMPT not in text
    assert "pong" not in text


def test_captured_content_is_never_logged(lines, built):
    exchange = built(content="the secret plan is pong")
    JsonEventLog(shadow_rate=1.0).handle_exchange(exchange, LABELS)
    [(_, line)] = lines()
    assert "content" not in line["response"]
    assert "secret plan" not in json.dumps(line)


def test_a_secret_that_slipped_into_a_message_is_redacted_again(lines, built):
    # Built without make_failure, so the message was never redacted at the source.
    leaky = Failure(kind="api_error", category="auth", code="invalid_api_key", status=401,
                    retry="none", owner="secrets", action="rotate",
                    message="bad key my-private-token-123 and sk-abcdefghijklmnop")  # fmt: skip
    JsonEventLog(secrets=["my-private-token-123"]).handle_exchange(
        built(status=401, failure=leaky), LABELS
    )
    [(_, line)] = lines()
    assert line["failure"]["message"] == "bad key *** and ***"


@pytest.mark.parametrize(
    ("event", "name", "level"),
    [
        (RetrySucceeded(route="primary", model="m", attempts=2), "retry_succeeded", logging.INFO),
        (FallbackActivated(from_route="primary", to_route="backup", category="quota", model="m"),
         "fallback_activated", logging.WARNING),
        (DeadlineExhausted(route="primary", model="m", attempts=3), "deadline_exhausted",
         logging.WARNING),
        (BreakerChanged(route="primary", model="m", before="closed", after="open", failures=3,
                        reason="3 failures in a row"), "breaker_changed", logging.WARNING),
    ],
    ids=["retry_succeeded", "fallback", "deadline", "breaker"],
)  # fmt: skip
def test_client_events_are_logged(lines, event, name, level):
    JsonEventLog().handle_event(event, LABELS)
    [(logged_level, line)] = lines()
    assert logged_level == level
    assert line["event"] == name
    assert line["model"] == "m"
    assert line["endpoint"] == "/chat/completions"


def test_a_given_logger_is_used(caplog, built):
    logger = logging.getLogger("myapp.llm")
    caplog.set_level(logging.INFO, logger="myapp.llm")
    JsonEventLog(logger, shadow_rate=1.0).handle_exchange(built(), LABELS)
    assert [record.name for record in caplog.records] == ["myapp.llm"]


def test_nothing_is_serialised_when_the_level_is_disabled(caplog, built, monkeypatch):
    caplog.set_level(logging.ERROR, logger=EVENT_LOGGER)
    monkeypatch.setattr(events_log, "orjson", None)  # any serialisation would raise
    log = JsonEventLog(shadow_rate=1.0)
    log.handle_exchange(built(), LABELS)
    log.handle_event(RetrySucceeded(route="primary", model="m", attempts=2), LABELS)
    assert caplog.records == []


@pytest.mark.parametrize("rate", [-0.1, 1.5, True, "0.1"], ids=["neg", "above_one", "bool", "str"])
def test_a_shadow_rate_outside_zero_to_one_is_refused(rate):
    with pytest.raises(ConfigError, match="shadow_rate"):
        JsonEventLog(shadow_rate=rate)
