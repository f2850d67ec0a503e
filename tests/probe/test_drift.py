"""Drift detection (``chatcontract.drift``): observations, comparisons, the baseline file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatcontract.drift import (
    Baseline,
    Observation,
    ShapeSample,
    compare,
    observe,
    observe_samples,
    read_last_validate,
    write_last_validate,
)
from chatcontract.errors import ConfigError
from chatcontract.failures import make_failure
from chatcontract.transport import Exchange, RequestFacts, ResponseFacts, Timings

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


def test_a_missing_last_validate_says_to_run_validate(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="chatcontract validate"):
        read_last_validate(tmp_path / "none.json")
