import datetime as dt

import pytest
import yaml

from chatcontract.contract import (
    check_document,
    contract_to_document,
    dump,
    load,
    load_preset,
    read_document,
)
from chatcontract.contract.presets import preset_document
from chatcontract.errors import ContractFileError


@pytest.mark.parametrize("preset", ["cometapi", "openai"])
def test_dump_then_load_gives_back_the_same_contract(tmp_path, preset):
    contract = load_preset(preset)
    path = tmp_path / "c.yaml"
    path.write_text(dump(contract))
    assert load(path) == contract


def test_dump_documents_every_top_level_field_with_a_comment():
    text = dump(load_preset("cometapi"))
    lines = text.splitlines()
    for index, line in enumerate(lines):
        if line and not line.startswith(("#", " ", "-")) and ":" in line:
            assert lines[index - 1].startswith("#"), f"no comment above {line!r}"


def test_dump_comments_nested_policy_and_endpoint_fields():
    text = dump(load_preset("cometapi"))
    assert "  # One deadline for the whole call" in text
    assert "  # Everything before the path" in text
    assert "secret is NEVER written here" in text


def test_dump_writes_review_date_as_a_yaml_date():
    doc = yaml.safe_load(dump(load_preset("cometapi")))
    assert isinstance(doc["reviewed_on"], dt.date)


def test_unknown_keys_are_named_with_the_known_ones(tmp_path):
    doc = preset_document("cometapi")
    doc["endpoint"]["base_ulr"] = "https://x"
    doc["polcy"] = {}
    problems = check_document(doc)
    assert (
        "endpoint.base_ulr: unknown key; did you mean base_url? "
        "known keys here: base_url, path, method, models_path" in problems
    )
    assert any(p.startswith("polcy: unknown key; did you mean policy?") for p in problems)


def test_an_unknown_key_without_a_near_one_lists_the_known_ones():
    doc = preset_document("cometapi")
    doc["endpoint"]["verb"] = "POST"
    assert check_document(doc) == [
        "endpoint.verb: unknown key; known keys here: base_url, path, method, models_path"
    ]


@pytest.mark.parametrize(
    ("key", "shown"),
    [
        ("sk-proj-AbCdEf0123456789AbCdEf0123", "<a key that looks like a secret, not shown>"),
        ("k" * 100_000, "'" + "k" * 60 + "'..."),
        ("two\nlines", "'two\\nlines'"),
    ],
    ids=["secret-shaped", "100k-characters", "line-break"],
)
def test_an_unknown_key_is_shown_safe_short_and_on_one_line(key, shown):
    doc = preset_document("cometapi")
    doc["endpoint"][key] = 1
    [problem] = check_document(doc)
    assert problem.startswith(f"endpoint.{shown}: unknown key; ")
    assert len(problem) < 300 and "\n" not in problem


def test_wrong_types_name_the_field_and_the_expected_type():
    doc = preset_document("cometapi")
    doc["policy"]["timeouts"]["total_ms"] = "sixty seconds"
    doc["streaming"]["used"] = "yes"
    doc["errors"]["rules"][0]["status"] = "500"
    problems = check_document(doc)
    assert problems == [
        "streaming.used: expected true or false, got 'yes'",
        "errors.rules[invalid_request].status: expected an integer from 100 to 599, or a list "
        "of them or null, got '500'",
        "policy.timeouts.total_ms: expected an integer from 1 to 3600000, got 'sixty seconds'",
    ]


def test_missing_required_top_level_keys_are_listed():
    doc = preset_document("cometapi")
    del doc["endpoint"], doc["model"]
    problems = check_document(doc)
    assert any(p.startswith("endpoint: missing") for p in problems)
    assert any(p.startswith("model: missing") for p in problems)


def test_value_errors_after_structure_are_reported():
    doc = preset_document("cometapi")
    doc["errors"]["rules"][0]["category"] = "bogus"
    assert any("unknown category 'bogus'" in p for p in check_document(doc))


def test_load_missing_file_says_how_to_create_one(tmp_path):
    with pytest.raises(ContractFileError, match="chatcontract init"):
        load(tmp_path / "nope.yaml")


def test_load_invalid_yaml_names_the_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("name: x\nendpoint: [unclosed\n")
    with pytest.raises(ContractFileError, match="not valid YAML at line"):
        read_document(path)


def test_load_reports_the_first_problem_and_how_many_more(tmp_path):
    doc = preset_document("cometapi")
    doc["a"] = 1
    doc["b"] = 2
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(doc))
    with pytest.raises(ContractFileError, match=r"a: unknown key.*and 1 more"):
        load(path)


def test_single_status_is_accepted_as_a_list(tmp_path):
    doc = preset_document("cometapi")
    doc["errors"]["rules"] = [{"name": "rl", "category": "rate_limit", "status": 429}]
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(doc))
    assert load(path).errors.rules[0].status == (429,)


def test_document_round_trip_keeps_empty_error_code():
    doc = preset_document("cometapi")
    doc["errors"]["rules"] = [{"name": "empty_code", "category": "validation", "code": ""}]
    path_doc = contract_to_document(load_preset("cometapi"))
    assert "rules" in path_doc["errors"]
    from chatcontract.contract import contract_from_document

    rules = contract_to_document(contract_from_document(doc))["errors"]["rules"]
    assert rules == [{"name": "empty_code", "category": "validation", "code": ""}]


def test_an_alias_bomb_is_refused_before_anything_walks_it(tmp_path):
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for previous, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"{name}: &{name} [{', '.join(['*' + previous] * 9)}]")
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")  # 9**9 strings once expanded

    with pytest.raises(ContractFileError, match="expands to more than 1,000,000 values"):
        read_document(path)


def test_an_anchor_used_once_is_still_read(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("version: 1\nrevalidate_when: &events [a, b]\nx: *events\n")

    assert read_document(path)["x"] == ["a", "b"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("version: 1\n".encode("utf-16"), "is UTF-16 text; save it as UTF-8"),
        (b"version: 1\nname: \xff\n", r"is not UTF-8 text \(byte 0xff on line 2\)"),
        (b"# " + b"x" * (1024 * 1024) + b"\nversion: 1\n", "is larger than 1 MiB"),
    ],
    ids=["utf-16", "not-utf-8", "over-1-MiB"],
)
def test_a_file_that_cannot_be_a_contract_is_one_contract_file_error(tmp_path, content, message):
    path = tmp_path / "c.yaml"
    path.write_bytes(content)

    with pytest.raises(ContractFileError, match=message):
        load(path)


def test_a_contract_path_on_an_endless_device_is_refused():
    with pytest.raises(ContractFileError, match="/dev/zero: is larger than 1 MiB"):
        load("/dev/zero")


def test_a_key_written_twice_is_refused_naming_its_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("version: 1\nmodel: gpt-4o\nname: x\nmodel: gpt-4o-mini\n")

    with pytest.raises(ContractFileError) as raised:
        read_document(path)
    assert str(raised.value) == (
        f"{path}: is not valid YAML at line 4, column 1: the key 'model' is written twice in "
        "one mapping; keep one"
    )


def test_a_merge_key_still_overrides_its_defaults(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("base: &d {a: 1, b: 2}\nrow:\n  <<: *d\n  a: 3\n")

    assert read_document(path)["row"] == {"a": 3, "b": 2}
