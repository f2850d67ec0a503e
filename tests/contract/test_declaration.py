"""The contract is declared once: loader messages, JSON Schema and init comments agree with it."""

import copy
import datetime as dt
from collections.abc import Iterator

import jsonschema
import pytest
import yaml

from chatcontract.contract import (
    Contract,
    Timeouts,
    check_document,
    dump,
    json_schema,
    load,
    load_preset,
)
from chatcontract.contract._declare import declared_fields, number_bounds, walk
from chatcontract.contract.model import CATEGORIES
from chatcontract.contract.presets import PRESETS, preset_document
from chatcontract.contract.schema import SCHEMA_ID
from chatcontract.errors import ConfigError, ContractFileError


def _with(path: str, value: object) -> dict:
    document = copy.deepcopy(preset_document("cometapi"))
    *parents, leaf = path.split(".")
    node = document
    for key in parents:
        node = node[int(key)] if isinstance(node, list) else node.setdefault(key, {})
    if value is KeyError:
        del node[leaf]
    else:
        node[leaf] = value
    return document


# One row per kind of message the loader gives: (document path, bad value, the one problem).
MESSAGE_KINDS = {
    "unknown-key-near-one": (
        "policy.retry.max_attempt",
        3,
        "policy.retry.max_attempt: unknown key; did you mean max_attempts? known keys here: "
        "max_attempts, backoff_initial_ms, backoff_max_ms, backoff_multiplier, jitter, "
        "retry_after_cap_ms",
    ),
    "unknown-key": (
        "streaming.colour",
        "red",
        "streaming.colour: unknown key; known keys here: used, include_usage, require_done",
    ),
    "wrong-type": (
        "policy.retry.max_attempts",
        "three",
        "policy.retry.max_attempts: expected an integer from 1 to 10, got 'three'",
    ),
    "out-of-bounds": (
        "policy.retry.max_attempts",
        11,
        "policy.retry.max_attempts: expected an integer from 1 to 10, got 11",
    ),
    "a-float-is-not-an-integer": (
        "policy.timeouts.total_ms",
        60000.0,
        "policy.timeouts.total_ms: expected an integer from 1 to 3600000, got 60000.0",
    ),
    "a-huge-integer": (
        "policy.timeouts.total_ms",
        10**400,
        "policy.timeouts.total_ms: expected an integer from 1 to 3600000, got a number of 401 digits",
    ),
    "too-many-items": (
        "auth.env",
        [f"KEY_{index}" for index in range(21)],
        "auth.env: lists 21 items; list at most 20",
    ),
    "a-bool-is-not-a-number": (
        "policy.probe.interval_s",
        True,
        "policy.probe.interval_s: expected an integer from 1 to 86400, got true",
    ),
    "not-a-list": (
        "auth.env",
        "COMETAPI_KEY",
        "auth.env: expected a list, got 'COMETAPI_KEY'",
    ),
    "empty-list": ("auth.env", [], "auth.env: must list at least one item"),
    "list-item": (
        "auth.env",
        ["OK_KEY", "not a var"],
        "auth.env[1]: 'not a var' is not an environment variable name, e.g. COMETAPI_KEY",
    ),
    "choice": (
        "environment",
        "prod",
        "environment: expected one of staging, production, got 'prod'",
    ),
    "date": (
        "reviewed_on",
        "2026-13-01",
        "reviewed_on: expected a date (YYYY-MM-DD) or null, got '2026-13-01'",
    ),
    "bad-url": (
        "endpoint.base_url",
        "ftp://x",
        "endpoint.base_url: 'ftp://x' is not an http(s) URL; write e.g. https://api.cometapi.com/v1",
    ),
    "credentials-in-url": (
        "endpoint.base_url",
        "https://user:hunter2-pw@api.example.com/v1",
        "endpoint.base_url: 'https://***@api.example.com/v1' carries credentials; remove "
        "'user:password@' and put the key in the environment variable named under auth.env",
    ),
    "cr-lf": (
        "auth.header",
        "Authorization\r\nX-Evil: 1",
        "auth.header: 'Authorization\\r\\nX-Evil: 1' is not a header name; write Authorization",
    ),
    "slow-regex": (
        "errors.rules.6.message",
        "(a+)+$",
        "errors.rules[model_name_required].message: '(a+)+$' nests a repeat inside a repeat",
    ),
    "missing-required": (
        "model",
        KeyError,
        "model: missing; write it (The model to call",
    ),
    "missing-nested": (
        "endpoint.base_url",
        KeyError,
        "endpoint.base_url: missing; write it (Everything before the path",
    ),
    "rule-between-fields": (
        "policy.timeouts.connect_ms",
        70_000,
        "policy.timeouts.connect_ms: is above total_ms (60000); lower it",
    ),
    "secret-never-echoed": (
        "policy.kill_switch_env",
        "sk-abcdefghijklmnopqrstuvwxyz",
        "policy.kill_switch_env: text that looks like a secret (not shown) is not an environment "
        "variable name",
    ),
}


@pytest.mark.parametrize(
    ("path", "value", "expected"), list(MESSAGE_KINDS.values()), ids=list(MESSAGE_KINDS)
)
def test_each_kind_of_bad_value_is_one_line_naming_the_field_and_what_to_write(
    path, value, expected
):
    problems = check_document(_with(path, value))
    assert len(problems) == 1, problems
    assert problems[0].startswith(expected), problems[0]
    assert "\n" not in problems[0] and "\r" not in problems[0]
    assert "hunter2" not in problems[0] and "sk-abcdefghij" not in problems[0]


def test_load_names_the_first_problem_of_the_file(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(_with("policy.retry.max_attempts", "three")))
    with pytest.raises(ContractFileError) as raised:
        load(path)
    assert str(raised.value) == (
        f"{path}: policy.retry.max_attempts: expected an integer from 1 to 10, got 'three'"
    )


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("version: " + "9" * 5000, "a number of more than 4300 digits"),
        ("reviewed_on: 2026-02-30", "day is out of range for month"),
    ],
    ids=["integer-too-long-for-python", "date-that-does-not-exist"],
)
def test_a_value_yaml_cannot_convert_is_one_line_saying_what_to_write(tmp_path, line, reason):
    path = tmp_path / "c.yaml"
    path.write_text(f"name: x\n{line}\n")
    with pytest.raises(ContractFileError) as raised:
        load(path)
    assert str(raised.value) == (
        f"{path}: holds a value YAML cannot convert ({reason}); "
        "write dates as YYYY-MM-DD and numbers a field can hold"
    )


def test_a_typo_in_a_key_is_refused_not_silently_dropped(tmp_path):
    # msgspec ignores unknown keys of a dataclass; the loader must not.
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(_with("policy.retry.max_attempt", 5)))
    with pytest.raises(ContractFileError, match="did you mean max_attempts"):
        load(path)


def test_an_object_built_in_code_gets_the_same_message_as_the_file():
    with pytest.raises(ConfigError) as raised:
        Timeouts(connect_ms=0)
    from_file = check_document(_with("policy.timeouts.connect_ms", 0))
    assert [str(raised.value)] == from_file


def _schema_node(schema: dict, dotted: str) -> dict:
    node = schema
    for key in dotted.split("."):
        if key.endswith("[]"):
            node = node["properties"][key[:-2]]["items"]
        elif key == "*":
            node = node["additionalProperties"]
        else:
            node = node["properties"][key]
    return node


def _numbers(node: dict) -> dict:
    """The number (or integer) variant of a property."""
    for option in node.get("anyOf", [node]):
        if option.get("type") in ("integer", "number"):
            return option
    raise AssertionError(f"no number in {node}")


BOUNDS = number_bounds(Contract)


@pytest.mark.parametrize("path", sorted(BOUNDS), ids=sorted(BOUNDS))
def test_schema_bounds_equal_loader_bounds_for_every_number(path):
    low, high = BOUNDS[path]
    leaf = _numbers(_schema_node(json_schema(), path))
    assert leaf["maximum"] == high
    assert leaf.get("minimum", leaf.get("exclusiveMinimum")) == low
    # The loader refuses just outside each bound and accepts the bound itself.
    document_path = path.replace("*", "gpt-4.1-nano")
    assert check_document(_with(document_path, high * 10 + 1))
    below = low - 1 if "exclusiveMinimum" not in leaf else low
    assert check_document(_with(document_path, below))


def test_every_number_of_the_contract_is_bounded():
    bounded = set(BOUNDS)
    numbers = {path for path, spec in walk(Contract) if spec.node.kind in ("int", "float")} - {
        "version"
    }
    assert numbers == bounded
    assert len(bounded) == 25


def _properties(node: object, where: str = "") -> Iterator[tuple[str, dict]]:
    if isinstance(node, dict):
        for name, prop in node.get("properties", {}).items():
            yield f"{where}.{name}".lstrip("."), prop
        for key, value in node.items():
            if key == "properties":
                for name, prop in value.items():
                    yield from _properties(prop, f"{where}.{name}".lstrip("."))
            elif isinstance(value, dict | list):
                yield from _properties(value, where)
    elif isinstance(node, list):
        for item in node:
            yield from _properties(item, where)


def test_every_field_in_the_schema_has_a_description_for_editors():
    properties = list(_properties(json_schema()))
    assert len(properties) > 60
    undescribed = [path for path, prop in properties if not prop.get("description")]
    assert undescribed == []


def test_every_declared_field_is_in_the_schema():
    schema = json_schema()
    for path, _spec in walk(Contract):
        assert _schema_node(schema, path), path


def test_the_schema_is_valid_draft_2020_12_with_an_id():
    schema = json_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == SCHEMA_ID
    assert "#" not in schema["$id"]


def _as_editor_sees(document: object) -> object:
    """YAML dates are strings to an editor's schema check."""
    if isinstance(document, dict):
        return {key: _as_editor_sees(value) for key, value in document.items()}
    if isinstance(document, list):
        return [_as_editor_sees(item) for item in document]
    if isinstance(document, dt.date):
        return document.isoformat()
    return document


@pytest.mark.parametrize("preset", sorted(PRESETS), ids=sorted(PRESETS))
def test_each_presets_init_file_satisfies_the_schema(preset):
    document = _as_editor_sees(yaml.safe_load(dump(load_preset(preset))))
    jsonschema.Draft202012Validator(json_schema()).validate(document)


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("policy.retry.max_attempts", 11),
        ("policy.retry.max_attempt", 3),
        ("errors.rules.0.category", "bogus"),
        ("auth.env", ["not a var"]),
        ("environment", "prod"),
    ],
    ids=["bound", "unknown-key", "category", "env-pattern", "choice"],
)
def test_the_schema_refuses_what_the_loader_refuses(path, value):
    document = _as_editor_sees(_with(path, value))
    assert check_document(document)
    assert not jsonschema.Draft202012Validator(json_schema()).is_valid(document)


def test_a_single_status_is_accepted_by_the_loader_and_the_schema():
    document = _with("errors.rules.0.status", 503)
    assert check_document(document) == []
    assert jsonschema.Draft202012Validator(json_schema()).is_valid(_as_editor_sees(document))


def test_the_schema_vocabulary_is_the_loaders():
    rule = json_schema()["properties"]["errors"]["properties"]["rules"]["items"]
    assert rule["properties"]["category"]["enum"] == list(CATEGORIES)


def test_the_init_file_comments_every_field_with_its_declared_description():
    text = dump(load_preset("cometapi"))
    for path, spec in walk(Contract):
        if "[]" in path or "*" in path:
            continue  # rows and per-model prices are written as plain YAML under their comment
        first_line = spec.node.description.splitlines()[0]
        assert f"# {first_line}" in text, path


def test_the_init_file_writes_fields_in_declaration_order():
    text = dump(load_preset("openai"))
    top = [line.split(":")[0] for line in text.splitlines() if line[:1].isalpha()]
    assert top == [spec.name for spec in declared_fields(Contract)]


def test_the_init_file_states_each_numbers_bounds_as_the_loader_words_them():
    text = dump(load_preset("cometapi"))
    assert (
        "    # Attempts per route, the first included.\n    # Write an integer from 1 to 10.\n"
        in text
    )
    assert (
        "    # Write a number above 0, at most 1000000 or null.\n    max_cost_per_call_usd:" in text
    )
