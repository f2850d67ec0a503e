"""The rollout checklist: what must hold before traffic goes to the dependency.

Each line is evaluated from the contract, the last ``chatcontract validate`` run and the
generated alert rules and dashboard, and is either ``passed`` or ``open`` with its evidence.
A run against the simulator never confirms the endpoint.

Reading the inputs (files) is kept apart from evaluating them: ``evaluate_checklist`` is a
pure function of a ``ChecklistInputs``.

Example::

    contract = load("chatcontract.yaml")
    inputs = ChecklistInputs(
        contract=contract,
        secret_paths=secret_paths(read_document("chatcontract.yaml")),
        report=read_validate_report(".chatcontract/last-validate.json"),
        alerts=inspect_alerts("chatcontract-alerts.yml", contract),
        dashboards=inspect_dashboard("chatcontract-dashboard.json", contract),
    )
    items = evaluate_checklist(inputs)
    print(render_checklist_text(items))
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeGuard

import yaml

from chatcontract._jsonfile import MAX_JSON_FILE_BYTES, read_json_file
from chatcontract._textfile import FileProblemError, read_text
from chatcontract.contract import Contract, lint_document
from chatcontract.errors import ConfigError, UsageError

from .alerts import alert_group_name
from .grafana import dashboard_uid

# libyaml's safe loader when built: it caps nesting (the pure-Python one recurses until Python
# stops it), with the same safe constructors.
_SafeLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

__all__ = [
    "ATTESTATION_KEYS",
    "CHECKLIST_IDS",
    "LAST_VALIDATE_PATH",
    "Artifact",
    "ChecklistInputs",
    "ChecklistItem",
    "ChecklistStatus",
    "checklist_exit_code",
    "evaluate_checklist",
    "inspect_alerts",
    "inspect_dashboard",
    "read_validate_report",
    "render_checklist_text",
    "secret_paths",
]

#: Where ``chatcontract validate`` keeps its last run.
LAST_VALIDATE_PATH = ".chatcontract/last-validate.json"

#: Facts a person must confirm in the contract's ``attestations`` (no request can check them).
ATTESTATION_KEYS: Mapping[str, str] = {
    "rate_limits_reviewed": "who checked the provider's request/token rate limits, and when",
    "billing_reviewed": "who checked pricing, balance alerts and quota top-up, and when",
}

ChecklistStatus = Literal["passed", "open"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ChecklistItem:
    """One checklist line: ``passed`` or ``open``, with the evidence either way."""

    id: str
    title: str
    status: ChecklistStatus
    evidence: str

    def to_dict(self) -> dict[str, str]:
        return {
            "id": self.id,
            "title": self.title,
            "status": self.status,
            "evidence": self.evidence,
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class Artifact:
    """A generated file the checklist looks for: present and for this contract, or not."""

    path: str
    state: Literal["ok", "missing", "invalid"]
    detail: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ChecklistInputs:
    """Everything the checklist is evaluated from, already read from disk."""

    contract: Contract
    report: Mapping[str, Any]
    alerts: Artifact
    dashboards: Artifact
    secret_paths: tuple[str, ...] = ()
    report_path: str = LAST_VALIDATE_PATH
    #: The review state (``ops.review.review_checklist_line`` of an offline review), or None
    #: when it was not evaluated.
    review: tuple[ChecklistStatus, str] | None = None


# -- reading the inputs -----------------------------------------------------------------------


def read_validate_report(path: str | os.PathLike[str] = LAST_VALIDATE_PATH) -> dict[str, Any]:
    """The validate report JSON from ``path``.

    Accepts the record ``validate`` keeps (``{"report": ..., "observed": ...}``) or a bare
    report written with ``validate --format json --output FILE``.

    Raises:
        UsageError: the file does not exist (run ``chatcontract validate`` first).
        ConfigError: the file is not a validate report.
    """
    shown = os.fspath(path)
    try:
        record = read_json_file(path, remedy="run 'chatcontract validate' again")
    except FileNotFoundError as exc:
        raise UsageError(f"{shown}: no validate report; run 'chatcontract validate' first") from exc
    report = record.get("report", record) if isinstance(record, dict) else None
    if not _is_report(report):
        raise ConfigError(
            f"{shown}: not a chatcontract validate report; run 'chatcontract validate' again"
        )
    return report


def _is_report(value: object) -> TypeGuard[dict[str, Any]]:
    if not isinstance(value, dict):
        return False
    target, checks = value.get("target"), value.get("checks")
    return (
        isinstance(target, dict)
        and isinstance(target.get("base_url"), str)
        and isinstance(checks, list)
        and all(
            isinstance(c, dict)
            and isinstance(c.get("id"), str)
            and isinstance(c.get("status"), str)
            for c in checks
        )
    )


def secret_paths(document: object) -> tuple[str, ...]:
    """Where the contract document holds a value that looks like a secret.

    Reuses the contract lint's secret detection; only the path is returned, never the value.
    """
    marker = ": looks like a secret"
    return tuple(
        finding.message.split(marker, 1)[0]
        for finding in lint_document(document)
        if finding.level == "warning" and marker in finding.message
    )


def inspect_alerts(path: str | os.PathLike[str], contract: Contract) -> Artifact:
    """Whether ``path`` holds this contract's alert rules (``chatcontract alerts``)."""
    shown = os.fspath(path)
    group = alert_group_name(contract)
    try:
        text = read_text(path, limit=MAX_JSON_FILE_BYTES)
        document = yaml.load(text, Loader=_SafeLoader)  # noqa: S506 (a safe loader)
    except FileNotFoundError:
        return Artifact(path=shown, state="missing")
    except (FileProblemError, yaml.YAMLError, RecursionError, ValueError):
        return Artifact(path=shown, state="invalid", detail="not a readable YAML rule file")
    groups = document.get("groups") if isinstance(document, dict) else None
    ours = [g for g in groups or () if isinstance(g, dict) and g.get("name") == group]
    if not ours:
        return Artifact(path=shown, state="invalid", detail=f"has no rule group {group}")
    rules = ours[0].get("rules")
    count = len(rules) if isinstance(rules, list) else 0
    return Artifact(path=shown, state="ok", detail=f"group {group}, {count} rules")


def inspect_dashboard(path: str | os.PathLike[str], contract: Contract) -> Artifact:
    """Whether ``path`` holds this contract's dashboard (``chatcontract dashboards``)."""
    shown = os.fspath(path)
    uid = dashboard_uid(contract.name)
    try:
        document = json.loads(read_text(path, limit=MAX_JSON_FILE_BYTES))
    except FileNotFoundError:
        return Artifact(path=shown, state="missing")
    except (FileProblemError, RecursionError, ValueError):  # JSONDecodeError is a ValueError
        return Artifact(path=shown, state="invalid", detail="not a readable JSON dashboard")
    if not isinstance(document, dict) or document.get("uid") != uid:
        return Artifact(path=shown, state="invalid", detail=f"is not the dashboard uid {uid}")
    panels = document.get("panels")
    count = sum(
        isinstance(panel, dict) and panel.get("type") != "row"
        for panel in (panels if isinstance(panels, list) else ())
    )
    return Artifact(path=shown, state="ok", detail=f"uid {uid}, {count} panels")


# -- evaluating -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Line:
    status: ChecklistStatus
    evidence: str


def _passed(evidence: str) -> _Line:
    return _Line("passed", evidence)


def _open(evidence: str) -> _Line:
    return _Line("open", evidence)


def _checks(inputs: ChecklistInputs) -> dict[str, Mapping[str, Any]]:
    return {check["id"]: check for check in inputs.report.get("checks", [])}


def _check_state(inputs: ChecklistInputs, check_id: str) -> tuple[bool, str]:
    """(passed, evidence) of one validate check."""
    check = _checks(inputs).get(check_id)
    if check is None:
        return False, (
            f"{check_id} is not in the last validate run; run 'chatcontract validate' "
            "without --check"
        )
    status = str(check.get("status"))
    observed = str(check.get("observed") or "").strip()
    words = {"pass": "passed", "fail": "failed", "warn": "warned", "skip": "skipped"}
    text = f"{check_id} {words.get(status, status)}"
    if inputs.report.get("target", {}).get("simulated"):
        text += " against the simulator"
    return status == "pass", f"{text}: {observed}" if observed else text


def _from_check(inputs: ChecklistInputs, check_id: str) -> _Line:
    ok, evidence = _check_state(inputs, check_id)
    return _Line("passed" if ok else "open", evidence)


def _endpoint_confirmed(inputs: ChecklistInputs) -> _Line:
    target = inputs.report.get("target", {})
    expected = inputs.contract.endpoint.base_url.rstrip("/")
    ran_against = str(target.get("base_url", "")).rstrip("/")
    if target.get("simulated"):
        return _open(
            f"the last validate ran against the simulator ({ran_against}), which does not "
            f"confirm {expected}; run 'chatcontract validate' with the key set"
        )
    if ran_against != expected:
        return _open(
            f"the last validate ran against {ran_against}, not the contract's endpoint {expected}"
        )
    ok, evidence = _check_state(inputs, "canary")
    return _Line("passed" if ok else "open", f"{evidence} (against {expected})")


def _auth_from_environment(inputs: ChecklistInputs) -> _Line:
    names = ", ".join("$" + name for name in inputs.contract.auth.env)
    if inputs.secret_paths:
        return _open(
            f"a value that looks like a secret is in the contract file at "
            f"{', '.join(inputs.secret_paths)}; remove it and keep the key in {names}"
        )
    return _passed(f"the key is read from {names} (auth.env); no secret in the contract file")


def _model_from_configuration(inputs: ChecklistInputs) -> _Line:
    contract = inputs.contract
    evidence = (
        f"model {contract.model} in the contract; override without a code change with "
        "$CHATCONTRACT_MODEL or --model"
    )
    ran = inputs.report.get("target", {}).get("model")
    if isinstance(ran, str) and ran and ran != contract.model:
        evidence += f" (the last validate ran {ran})"
    return _passed(evidence)


def _request_fixture(inputs: ChecklistInputs) -> _Line:
    fixture = inputs.contract.request.fixture
    if not fixture:
        return _open("request.fixture is empty; write the minimal valid request the canary sends")
    return _passed(f"request.fixture sends {', '.join(str(key) for key in fixture)}")


def _parser_contract(inputs: ChecklistInputs) -> _Line:
    repeat_ok, repeat = _check_state(inputs, "canary_repeat")
    if inputs.contract.streaming.used:
        stream_ok, stream = _check_state(inputs, "streaming")
    else:
        stream_ok, stream = True, "streaming not used (streaming.used: false)"
    return _Line("passed" if repeat_ok and stream_ok else "open", f"{repeat}; {stream}")


def _attestations(inputs: ChecklistInputs) -> _Line:
    attested = inputs.contract.attestations
    missing = [key for key in ATTESTATION_KEYS if not str(attested.get(key) or "").strip()]
    if missing:
        return _open(
            "; ".join(
                f"attestations.{key} missing: write {ATTESTATION_KEYS[key]}" for key in missing
            )
        )
    return _passed("; ".join(f"{key}: {attested[key]}" for key in ATTESTATION_KEYS))


def _describe_artifact(kind: str, artifact: Artifact, command: str) -> str:
    if artifact.state == "missing":
        return f"{kind} {artifact.path} not found; run '{command}'"
    if artifact.state == "invalid":
        return f"{kind} {artifact.path} {artifact.detail}; regenerate with '{command}'"
    return f"{kind} {artifact.path} ({artifact.detail})"


def _assets_generated(inputs: ChecklistInputs) -> _Line:
    alerts = _describe_artifact("alert rules", inputs.alerts, "chatcontract alerts")
    dashboard = _describe_artifact("dashboard", inputs.dashboards, "chatcontract dashboards")
    ok = inputs.alerts.state == "ok" and inputs.dashboards.state == "ok"
    return _Line("passed" if ok else "open", f"{alerts}; {dashboard}")


def _rollback_switch(inputs: ChecklistInputs) -> _Line:
    contract = inputs.contract
    switch = contract.policy.kill_switch_env
    if not switch:
        return _open(
            "policy.kill_switch_env is not set; name the environment variable that sends calls "
            "to the fallback route"
        )
    routes = ", ".join(route.name for route in contract.fallbacks) or "none configured"
    return _passed(f"set ${switch} to switch calls away from the primary (fallbacks: {routes})")


def _review_current(inputs: ChecklistInputs) -> _Line:
    if inputs.review is None:
        return _open("review state not evaluated; run 'chatcontract review'")
    status, evidence = inputs.review
    return _Line(status, evidence)


_ITEMS: tuple[tuple[str, str, Callable[[ChecklistInputs], _Line]], ...] = (
    ("endpoint_confirmed", "Endpoint confirmed", _endpoint_confirmed),
    (
        "auth_from_environment",
        "Auth through the environment / secret manager",
        _auth_from_environment,
    ),
    ("model_from_configuration", "Model from configuration", _model_from_configuration),
    ("request_fixture", "Request fixture in the contract", _request_fixture),
    ("parser_contract_tested", "Parser contract test passed", _parser_contract),
    (
        "missing_auth_tested",
        "Missing-auth test recorded",
        lambda inputs: _from_check(inputs, "missing_auth"),
    ),
    (
        "malformed_request_tested",
        "Malformed-request test recorded",
        lambda inputs: _from_check(inputs, "malformed_request"),
    ),
    ("timeout_tested", "Timeout tested", lambda inputs: _from_check(inputs, "client_timeout")),
    ("rate_limits_billing_reviewed", "Rate-limit and billing assumptions reviewed", _attestations),
    ("logs_redacted", "Logs redacted", lambda inputs: _from_check(inputs, "redaction")),
    ("dashboards_alerts_generated", "Dashboards and alerts generated", _assets_generated),
    ("rollback_switch_named", "Rollback switch named", _rollback_switch),
    ("contract_review_current", "Contract review current", _review_current),
)

#: The checklist line ids, in order.
CHECKLIST_IDS: tuple[str, ...] = tuple(item_id for item_id, _, _ in _ITEMS)


def evaluate_checklist(inputs: ChecklistInputs) -> tuple[ChecklistItem, ...]:
    """Every checklist line, in order, evaluated from ``inputs`` (no I/O).

    Raises:
        ConfigError: the report was produced for another contract.
    """
    ran = inputs.report.get("contract")
    ran_for = ran.get("name") if isinstance(ran, Mapping) else None
    if isinstance(ran_for, str) and ran_for != inputs.contract.name:
        raise ConfigError(
            f"{inputs.report_path}: the last validate ran contract {ran_for!r}, not "
            f"{inputs.contract.name!r}; run 'chatcontract validate --contract FILE' first"
        )
    items = []
    for item_id, title, evaluate in _ITEMS:
        line = evaluate(inputs)
        items.append(
            ChecklistItem(id=item_id, title=title, status=line.status, evidence=line.evidence)
        )
    return tuple(items)


def checklist_exit_code(items: Sequence[ChecklistItem]) -> int:
    """0 when every line passed, 1 while any is open."""
    return 0 if all(item.status == "passed" for item in items) else 1


def render_checklist_text(items: Sequence[ChecklistItem], *, heading: str = "") -> str:
    """``[x]`` / ``[ ]`` lines with their evidence, then a count."""
    lines = [heading] if heading else []
    for item in items:
        mark = "[x]" if item.status == "passed" else "[ ]"
        lines.append(f"{mark} {item.title}: {item.evidence}")
    done = sum(item.status == "passed" for item in items)
    lines.append(f"{done}/{len(items)} done, {len(items) - done} open")
    return "\n".join(lines) + "\n"
