"""Drift detection (``chatcontract.drift``): observations, comparisons, the baseline file."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import httpx2
import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatcontract.checks.context import CheckContext, SuiteOptions
from chatcontract.checks.negative import check_unsupported_model
from chatcontract.contract import load_preset
from chatcontract.drift import (
    MADE_UP_MODELS,
    Baseline,
    Observation,
    ShapeSample,
    compare,
    observe,
    observe_samples,
    read_last_validate,
    read_validate_record,
    record_validate_run,
    write_last_validate,
)
from chatcontract.errors import ConfigError
from chatcontract.exchange import Exchange, RequestFacts, ResponseFacts, Timings
from chatcontract.failures import make_failure
from chatcontract.identity import TargetIdentity
from chatcontract.target import Target

BODY = (
    "$:object",
    "choices:array",
    "choices[]:object",
    "choices[].finish_reason:string",
    "choices[].message:object",
    "choices[].message.content:string",
    "id:string",
    "model:string",
    "usage:object",
    "usage.completion_tokens:number",
    "usage.prompt_tokens:number",
    "usage.total_tokens:number",
)
ERROR = ("$:object", "error:object", "error.code:string", "error.message:string")


def completion(
    paths: tuple[str, ...] = BODY, *, finish: str = "stop", model: str = "m-1", stream: bool = False
) -> ShapeSample:
    return ShapeSample(status=200, stream=stream, paths=paths, finish_reason=finish, model=model)


def kinds(differences: list) -> list[tuple[str, str]]:  # type: ignore[type-arg]
    return [(d.kind, d.detail) for d in differences]


def test_usage_is_its_own_section() -> None:
    observation = observe_samples([completion()])
    response = observation.section("response")
    usage = observation.section("usage")
    assert "usage:object" not in response.seen
    assert usage.seen == {
        "usage:object",
        "usage.completion_tokens:number",
        "usage.prompt_tokens:number",
        "usage.total_tokens:number",
    }


def test_errors_are_observed_per_status_and_values_stay_out() -> None:
    samples = [
        ShapeSample(status=500, stream=False, paths=ERROR),
        ShapeSample(status=429, stream=False, paths=("$:empty",)),
        ShapeSample(status=200, stream=False, paths=ERROR, in_band_error=True),
    ]
    data = observe_samples(samples).to_dict()
    assert list(data["error_bodies"]) == ["200", "429", "500"]
    assert data["error_bodies"]["429"]["paths"] == ["$:empty"]
    assert data["response"] is None
    assert data["finish_reasons"] == [] and data["models"] == []


def _exchange(response: ResponseFacts | None, *, failure: object = None) -> Exchange:
    return Exchange(
        request=RequestFacts(method="POST", url="http://x/v1/chat/completions"),
        response=response,
        timings=Timings(),
        started_at=0.0,
        failure=failure,  # type: ignore[arg-type]
    )


def test_observe_reads_exchanges() -> None:
    timeout = make_failure(kind="transport", category="timeout", code="read_timeout", message="t")
    exchanges = [
        _exchange(ResponseFacts(status=200, shape_paths=BODY, finish_reason="stop", model="m-1")),
        _exchange(
            ResponseFacts(
                status=200,
                shape_paths=BODY,
                stream_verdict="complete",
                finish_reason="length",
                model="m-1",
            )
        ),
        _exchange(ResponseFacts(status=429, body_bytes=0)),
        _exchange(ResponseFacts(status=502, body_bytes=120, content_type="text/html")),
        _exchange(None, failure=timeout),
    ]
    observation = observe(exchanges)
    assert observation.samples == 4
    assert observation.finish_reasons == {"stop", "length"}
    assert observation.models == {"m-1"}
    assert observation.section("stream").samples == 1
    assert observation.section("error:429").seen == {"$:empty"}
    assert observation.section("error:502").seen == {"$:non_json"}


def test_the_same_shapes_are_no_drift() -> None:
    baseline = observe_samples([completion(), completion(stream=True)])
    assert compare(baseline, observe_samples([completion()])) == []


def test_a_new_object_is_one_new_field_not_one_per_child() -> None:
    baseline = observe_samples([completion()])
    drifted = (*BODY, "extra:object", "extra.a:string", "extra.b:number")
    assert kinds(compare(baseline, observe_samples([completion(drifted)]))) == [
        ("new_field", "response: +extra:object"),
    ]


def test_a_missing_field_is_reported_only_when_always_present() -> None:
    with_tools = (*BODY, "choices[].message.tool_calls:array")
    baseline = observe_samples([completion(), completion(with_tools)])
    assert "choices[].message.tool_calls:array" not in baseline.section("response").always
    assert compare(baseline, observe_samples([completion()])) == []
    without_finish = tuple(p for p in BODY if "finish_reason" not in p)
    assert kinds(compare(baseline, observe_samples([completion(without_finish)]))) == [
        ("missing_field", "response: -choices[].finish_reason:string"),
    ]


def test_a_type_change_is_a_new_and_a_missing_entry() -> None:
    changed = tuple(p.replace("content:string", "content:null") for p in BODY)
    assert kinds(
        compare(observe_samples([completion()]), observe_samples([completion(changed)]))
    ) == [
        ("new_field", "response: +choices[].message.content:null"),
        ("missing_field", "response: -choices[].message.content:string"),
    ]


def test_usage_error_finish_reason_and_model_drift_have_their_kinds() -> None:
    baseline = observe_samples([completion(), ShapeSample(status=500, stream=False, paths=ERROR)])
    observed = observe_samples(
        [
            completion((*BODY, "usage.cached_tokens:number"), finish="content_filter", model="m-2"),
            ShapeSample(status=500, stream=False, paths=(*ERROR, "error.param:string")),
            ShapeSample(status=503, stream=False, paths=ERROR),  # a status the baseline never saw
        ]
    )
    assert kinds(compare(baseline, observed)) == [
        ("usage_shape", "usage: +usage.cached_tokens:number"),
        ("error_shape", "error body HTTP 500: +error.param:string"),
        ("new_finish_reason", "finish_reason: content_filter"),
        ("new_model", "model: m-2"),
    ]


def test_sections_the_baseline_never_saw_are_not_compared() -> None:
    baseline = observe_samples([completion()])
    assert compare(baseline, observe_samples([completion(stream=True)])) == []


def test_difference_keys_are_stable() -> None:
    baseline = observe_samples([completion()])
    observed = observe_samples([completion(finish="length")])
    first, second = compare(baseline, observed), compare(baseline, observed)
    assert (
        [d.key for d in first]
        == [d.key for d in second]
        == ["new_finish_reason|finish_reason|finish_reason: length"]
    )


paths_strategy = st.lists(
    st.from_regex(r"[a-z]{1,6}(\.[a-z]{1,6}){0,2}:(string|number|object|null)", fullmatch=True),
    max_size=12,
).map(lambda items: ("$:object", *items))


@given(
    st.lists(
        st.tuples(paths_strategy, st.sampled_from([200, 200, 400, 500]), st.booleans()), max_size=6
    )
)
def test_an_observation_round_trips_and_matches_itself(
    samples: list[tuple[tuple[str, ...], int, bool]],
) -> None:
    observation = observe_samples(
        ShapeSample(status=status, stream=stream, paths=paths, finish_reason="stop", model="m")
        for paths, status, stream in samples
    )
    again = Observation.from_dict(json.loads(json.dumps(observation.to_dict())))
    assert again == observation
    assert again.digest() == observation.digest()
    assert compare(observation, again) == []


def test_the_baseline_file_is_sorted_and_round_trips(tmp_path: Path) -> None:
    path = tmp_path / "chatcontract.baseline.json"
    observation = observe_samples(
        [completion(), ShapeSample(status=401, stream=False, paths=ERROR)]
    )
    baseline = Baseline.accept(
        observation, source="validate", contract_name="c", provider="cometapi"
    )
    baseline.save(path)
    text = path.read_text()
    assert text == json.dumps(json.loads(text), indent=2, sort_keys=True) + "\n"
    loaded = Baseline.load(path)
    assert loaded == baseline
    assert loaded.digest == baseline.digest
    assert json.loads(text)["observed"]["response"]["paths"][0] == "$:object"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("not json", "not valid JSON"),
        ("[]", "not a chatcontract baseline"),
        ('{"chatcontract_baseline": 2}', "not a chatcontract baseline"),
        (
            '{"chatcontract_baseline": 1, "source": "x", "accepted_at": "t", '
            '"observed": {"response": {"samples": 0, "paths": []}}}',
            "samples",
        ),
        (
            '{"chatcontract_baseline": 1, "source": "x", "accepted_at": "t", '
            '"observed": {"error_bodies": {"abc": {}}}}',
            "not an HTTP status",
        ),
        (
            '{"chatcontract_baseline": 1, "source": "x", "accepted_at": "t", '
            '"observed": {"models": [1]}}',
            "list of strings",
        ),
    ],
    ids=["not-json", "not-object", "wrong-format", "bad-samples", "bad-status", "bad-models"],
)
def test_a_bad_baseline_file_is_a_config_error(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "b.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=message):
        Baseline.load(path)


def test_a_missing_baseline_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="chatcontract baseline accept"):
        Baseline.load(tmp_path / "absent.json")


def test_last_validate_round_trips(tmp_path: Path) -> None:
    path = tmp_path / ".chatcontract" / "last-validate.json"
    observation = observe_samples([completion()])
    write_last_validate({"verdict": "pass"}, observation, path)
    report, observed = read_last_validate(path)
    assert report == {"verdict": "pass"}
    assert observed == observation


def test_a_run_record_that_cannot_be_written_leaves_no_temporary_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "last-validate.json"

    def full_disk(self: Path, target: Path) -> Path:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Path, "replace", full_disk)
    with pytest.raises(OSError, match="No space"):
        write_last_validate({"verdict": "pass"}, observe_samples([completion()]), path)
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_missing_last_validate_says_to_run_validate(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="chatcontract validate"):
        read_last_validate(tmp_path / "none.json")


# -- the run record validate writes --------------------------------------------------------------


def _echo_any_model(request: httpx2.Request) -> httpx2.Response:
    """A server that accepts every model, even a made-up one, and echoes it."""
    model = json.loads(request.content)["model"]
    return httpx2.Response(
        200,
        json={
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": model,
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": "pong"},
                    "finish_reason": "stop",
                }
            ],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
        },
    )


def _accepting_target() -> Target:
    preset = load_preset("cometapi")
    contract = dataclasses.replace(
        preset, endpoint=dataclasses.replace(preset.endpoint, base_url="https://llm.test/v1")
    )
    return Target(
        contract=contract,
        contract_path=None,
        secret="sk-test-key-123456",
        secret_source="test",
        model="gpt-4.1-nano",
        simulated=False,
    )


def test_the_validate_record_names_its_target_and_never_the_made_up_model(tmp_path: Path) -> None:
    target = _accepting_target()
    ctx = CheckContext.open(target, SuiteOptions(), inner=httpx2.MockTransport(_echo_any_model))
    try:
        ctx.send(ctx.fixture())
        check_unsupported_model(ctx)
        exchanges = list(ctx.exchanges)
    finally:
        ctx.close()
    # The negative check asks for a model listed as made up (else this guard is stale).
    assert {exchange.request.model for exchange in exchanges} == {
        "gpt-4.1-nano",
        *MADE_UP_MODELS,
    }
    report = {
        "verdict": "fail",
        "target": {"base_url": target.base_url, "simulated": False, "model": target.model},
    }
    path = record_validate_run(report, exchanges, tmp_path / "last-validate.json")
    written = json.loads(path.read_text())
    assert written["target"]["id"] == "https://llm.test/v1 model=gpt-4.1-nano"
    assert written["verdict"] == "fail"
    assert written["observed"]["models"] == ["gpt-4.1-nano"]
    record = read_validate_record(path)
    assert record.target == TargetIdentity.real("https://llm.test/v1", "gpt-4.1-nano")
    assert (record.verdict, record.observation.samples) == ("fail", 2)


def test_observe_keeps_models_of_the_requested_models_only() -> None:
    def exchange(asked: str, answered: str) -> Exchange:
        return Exchange(
            request=RequestFacts(method="POST", url="u", model=asked),
            response=ResponseFacts(status=200, model=answered, shape_paths=BODY),
            timings=Timings(total_ms=1.0),
            started_at=0.0,
        )

    observed = observe([exchange("a", "a-2025"), exchange("b", "b-2025")], requested_models={"a"})
    assert observed.models == frozenset({"a-2025"})
    assert observe([exchange("chatcontract-no-such-model-0", "x")]).models == frozenset()


def test_an_older_record_without_a_target_reads_as_unknown(tmp_path: Path) -> None:
    path = tmp_path / "old.json"
    path.write_text(json.dumps({"report": {"verdict": "pass"}, "observed": {"samples": 0}}))
    record = read_validate_record(path)
    assert (record.target, record.verdict) == (None, "pass")
