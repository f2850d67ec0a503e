import json

import pytest
import yaml

from chatcontract.contract import load, load_preset


def test_init_writes_a_loadable_commented_cometapi_contract(cli, tmp_path):
    path = tmp_path / "chatcontract.yaml"
    code, out, _ = cli("init", "--path", str(path))
    assert code == 0
    assert "wrote" in out and "COMETAPI_KEY" in out
    assert load(path) == load_preset("cometapi")
    assert path.read_text().count("\n# ") > 10


def test_init_defaults_to_the_working_directory(cli, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, _ = cli("init", "--preset", "openai")
    assert code == 0
    assert load(tmp_path / "chatcontract.yaml").provider == "openai"


def test_init_refuses_to_overwrite_without_force(cli, tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("keep me")
    code, _, err = cli("init", "--path", str(path))
    assert code == 2
    assert (
        err.strip() == f"chatcontract: error: {path} already exists; pass --force to overwrite it"
    )
    assert path.read_text() == "keep me"
    code, _, _ = cli("init", "--path", str(path), "--force")
    assert code == 0
    assert load(path).provider == "cometapi"


def test_init_unknown_preset_is_one_clear_line(cli, tmp_path):
    code, _, err = cli("init", "--preset", "azure", "--path", str(tmp_path / "c.yaml"))
    assert code == 2
    assert err.count("\n") == 1
    assert "unknown preset 'azure'" in err and "cometapi, openai" in err
    assert not (tmp_path / "c.yaml").exists()


@pytest.fixture
def contract_file(cli, tmp_path):
    path = tmp_path / "c.yaml"
    cli("init", "--path", str(path))
    return path


def test_lint_of_a_fresh_init_warns_about_the_owner_only(cli, contract_file):
    code, out, _ = cli("contract", "lint", "--path", str(contract_file))
    assert code == 0
    assert "warning: owner: empty" in out
    assert out.strip().endswith("ok, 0 error(s), 1 warning(s)")


def test_lint_exits_1_on_errors_and_names_each(cli, contract_file):
    doc = yaml.safe_load(contract_file.read_text())
    doc["endpoint"]["verb"] = "POST"
    doc["policy"]["retry"]["max_attempts"] = "three"
    contract_file.write_text(yaml.safe_dump(doc))
    code, out, _ = cli("contract", "lint", "--path", str(contract_file), "--format", "json")
    assert code == 1
    report = json.loads(out)
    assert (
        "endpoint.verb: unknown key; known keys here: base_url, path, method, models_path"
        in report["errors"]
    )
    assert (
        "policy.retry.max_attempts: expected an integer from 1 to 10, got 'three'"
        in report["errors"]
    )


def test_lint_of_invalid_yaml_is_an_error_not_a_traceback(cli, tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("a: [1,\n")
    code, out, err = cli("contract", "lint", "--path", str(path))
    assert code == 1
    assert "not valid YAML at line" in out
    assert "Traceback" not in out + err


def test_show_reports_secret_presence_but_never_the_secret(cli, contract_file, monkeypatch):
    code, out, _ = cli("contract", "show", "--path", str(contract_file))
    assert code == 0
    assert "missing (set one of: $COMETAPI_KEY, $COMETAPI_API_KEY, $COMET_API_KEY)" in out
    monkeypatch.setenv("COMET_API_KEY", "sk-verysecretvalue123456")
    code, out, _ = cli("contract", "show", "--path", str(contract_file), "--format", "json")
    assert code == 0
    shown = json.loads(out)
    assert shown["secret"] == {"status": "present", "variable": "COMET_API_KEY"}
    assert "sk-verysecret" not in out


KEY = "sk-proj-AbCdEf0123456789AbCdEf0123456789XyZ"


@pytest.mark.parametrize("output", ["text", "json"])
def test_show_does_not_repeat_a_key_pasted_into_the_contract(cli, contract_file, output):
    text = contract_file.read_text()
    contract_file.write_text(text.replace("model: gpt-4.1-nano", f"model: {KEY}", 1))
    code, out, _ = cli("contract", "show", "--path", str(contract_file), "--format", output)
    assert code == 0
    assert KEY[:12] not in out and "***" in out


def test_show_resolves_model_from_flag_then_environment(cli, contract_file, monkeypatch):
    monkeypatch.setenv("CHATCONTRACT_MODEL", "gpt-4o")
    _, out, _ = cli("contract", "show", "--path", str(contract_file), "--format", "json")
    assert json.loads(out)["model"] == "gpt-4o"
    assert json.loads(out)["model_source"] == "$CHATCONTRACT_MODEL"
    _, out, _ = cli("contract", "show", "--path", str(contract_file), "--model", "gpt-5")
    assert "gpt-5 (from --model)" in out


def test_show_missing_file_is_one_line_exit_2(cli, tmp_path):
    code, _, err = cli("contract", "show", "--path", str(tmp_path / "none.yaml"))
    assert code == 2
    assert err.count("\n") == 1 and "chatcontract init" in err


def test_diff_flags_breaking_changes_and_exits_1(cli, contract_file, tmp_path):
    doc = yaml.safe_load(contract_file.read_text())
    doc["endpoint"]["base_url"] = "https://api.example.com/v1"
    doc["owner"] = "team"
    new = tmp_path / "new.yaml"
    new.write_text(yaml.safe_dump(doc))
    code, out, _ = cli("contract", "diff", str(contract_file), str(new))
    assert code == 1
    assert (
        "! ~ endpoint.base_url: 'https://api.cometapi.com/v1' -> 'https://api.example.com/v1'"
        in out
    )
    assert "  ~ owner: '' -> 'team'" in out
    assert out.strip().endswith("2 change(s), 1 breaking ('!')")


def test_diff_without_breaking_changes_exits_0(cli, contract_file, tmp_path):
    doc = yaml.safe_load(contract_file.read_text())
    doc["owner"] = "team"
    new = tmp_path / "new.yaml"
    new.write_text(yaml.safe_dump(doc))
    code, out, _ = cli("contract", "diff", str(contract_file), str(new), "--format", "json")
    assert code == 0
    assert json.loads(out)["changes"] == [
        {"path": "owner", "change": "changed", "old": "", "new": "team", "breaking": False}
    ]


def test_diff_against_a_broken_file_says_to_lint_it(cli, contract_file, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\n")
    code, _, err = cli("contract", "diff", str(contract_file), str(bad))
    assert code == 2
    assert "contract lint --path" in err


def test_schema_prints_json_schema(cli):
    code, out, _ = cli("contract", "schema")
    assert code == 0
    assert json.loads(out)["$schema"].startswith("https://json-schema.org/")
