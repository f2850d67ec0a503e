"""The real validate suite against small servers that misbehave as real ones do.

One defect gives one red check (the check whose clause it breaks), named in the clause's
words; every other check stays green, with notes for what it saw on the way. The servers are
in ``misbehaving.py``; each reproduces a deviation measured on llama-cpp-python or LiteLLM.
``client_timeout`` (and the fault-relay checks) are judged elsewhere and left out here.
"""

from __future__ import annotations

import json
from dataclasses import replace

import httpx2
import misbehaving
import pytest
from misbehaving import KEY, MODEL, Server, serve

from chatcontract.checks import CHECKS, CheckContext, Report, SuiteOptions, render_json, run_suite
from chatcontract.contract import Contract, ErrorRule, load_preset
from chatcontract.target import Target

#: Checks judged elsewhere (the deadline and stream-interruption checks need the fault relay).
ELSEWHERE = {"client_timeout", "stream_interruption"}
JUDGED = tuple(spec.id for spec in CHECKS if not spec.opt_in and spec.id not in ELSEWHERE)
QUICK = {"canary_runs": 4, "latency_samples": 2}


#: OpenAI's error table by status and code only, pinned here: a gateway that rewrites codes is
#: judged by status, whatever message or type rules the presets gain for gateways.
RULES = (
    ErrorRule(name="invalid_api_key", category="auth", code="invalid_api_key"),
    ErrorRule(name="model_not_found", category="model", code="model_not_found"),
    ErrorRule(name="context_length", category="validation", code="context_length_exceeded"),
    ErrorRule(name="unauthorized", category="auth", status=(401, 403)),
    ErrorRule(name="not_found", category="endpoint", status=(404,)),
    ErrorRule(name="rate_limited", category="rate_limit", status=(429,)),
    ErrorRule(name="server_error", category="upstream", status=(500, 502, 503)),
    ErrorRule(name="invalid_request", category="validation", status=(400, 409, 413, 422)),
)


def _contract(base_url: str, *, extra_rules: tuple[ErrorRule, ...] = ()) -> Contract:
    """The openai preset against ``base_url`` with the pinned ``RULES`` (``extra_rules``
    first), and short timeouts so a hung server cannot hang the test."""
    preset = load_preset("openai")
    timeouts = replace(
        preset.policy.timeouts,
        connect_ms=2_000,
        first_byte_ms=5_000,
        first_token_ms=5_000,
        total_ms=5_000,
    )
    return replace(
        preset,
        endpoint=replace(preset.endpoint, base_url=base_url),
        model=MODEL,
        errors=replace(preset.errors, rules=extra_rules + RULES),
        policy=replace(preset.policy, timeouts=timeouts, fallback_reserve_ms=1_000),
    )


def _target(base_url: str, *, extra_rules: tuple[ErrorRule, ...] = ()) -> Target:
    return Target(
        contract=_contract(base_url, extra_rules=extra_rules),
        contract_path=None,
        secret=KEY,
        secret_source="test",
        model=MODEL,
        simulated=False,
    )


def _run(server: Server, *, extra_rules: tuple[ErrorRule, ...] = (), only=JUDGED) -> Report:
    with serve(server) as running:
        target = _target(running.base_url, extra_rules=extra_rules)
        return run_suite(target, SuiteOptions(only=tuple(only), **QUICK))


def _checks(report: Report) -> dict[str, dict]:
    """The JSON form of every check (what CI reads), by id."""
    return {check["id"]: check for check in json.loads(render_json(report))["checks"]}


#: The statuses of a healthy run (contract_lint warns: these runs have no contract file).
HEALTHY = dict.fromkeys(JUDGED, "pass") | {"contract_lint": "warn"}


def _statuses(report: Report) -> dict[str, str]:
    return {check.id: check.status for check in report.checks}


# ------------------------------------------------------------------------------- one red each


@pytest.fixture(scope="module")
def reports() -> dict[str, Report]:
    """Each server judged once by the whole suite (the runs take a second or two each)."""
    return {}


def _report(reports: dict[str, Report], name: str) -> Report:
    if name not in reports:
        reports[name] = _run(getattr(misbehaving, name)())
    return reports[name]


@pytest.mark.parametrize(
    ("server", "red", "observed"),
    [
        ("Server", set(), {}),
        (
            "NoAuth",
            {"missing_auth", "invalid_auth"},
            {
                "missing_auth": "a request without the key was accepted (HTTP 200)",
                "invalid_auth": "a wrong key was accepted (HTTP 200)",
            },
        ),
        (
            "AcceptsMissingField",
            {"malformed_request"},
            {"malformed_request": "a request without 'messages' was accepted (HTTP 200)"},
        ),
        (
            "UsageOverMaxTokens",
            {"usage_consistency"},
            {"usage_consistency": "completion_tokens 20 > max_tokens 16"},
        ),
        (
            "DropsKeepAliveAfterBadJson",
            {"malformed_json"},
            {"malformed_json": "a body that is not JSON got HTTP 500, not a validation error"},
        ),
        ("NoStreamUsage", {"usage_consistency"}, {"usage_consistency": "usage missing x1"}),
        (
            "LiteLLMCodes",
            {"invalid_auth", "unsupported_model"},
            {
                "invalid_auth": "a wrong key got HTTP 400 no_db_connection, not an auth error",
                "unsupported_model": "an unknown model got HTTP 400, not a model error",
            },
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_only_the_broken_clause_is_red_and_it_names_the_defect(reports, server, red, observed):
    report = _report(reports, server)
    statuses = _statuses(report)
    assert {check for check, status in statuses.items() if status == "fail"} == red
    assert statuses == {**HEALTHY, **dict.fromkeys(red, "fail")}
    checks = _checks(report)
    for check, words in observed.items():
        assert words in checks[check]["observed"], checks[check]["observed"]
    assert report.exit_code == (1 if red else 0)


def test_a_fast_healthy_server_has_no_note_but_the_missing_contract_file(reports):
    report = _report(reports, "Server")
    assert all(not check.notes for check in report.checks), [c.notes for c in report.checks]


@pytest.mark.parametrize(
    ("check", "category", "owner"),
    [("missing_auth", "auth", "secrets"), ("invalid_auth", "auth", "secrets")],
    ids=["missing_auth", "invalid_auth"],
)
def test_an_accepted_negative_request_carries_the_expected_categorys_action(
    reports, check, category, owner
):
    failure = _checks(_report(reports, "NoAuth"))[check]["failure"]
    assert (failure["category"], failure["owner"]) == (category, owner)
    assert failure["code"] == f"{check}_accepted"
    assert failure["retry"] == "none"


def test_a_wrongly_rejected_negative_request_carries_the_expected_categorys_action(reports):
    checks = _checks(_report(reports, "LiteLLMCodes"))
    assert checks["invalid_auth"]["failure"]["owner"] == "secrets"
    assert checks["invalid_auth"]["failure"]["kind"] == "api_error"
    assert checks["unsupported_model"]["failure"]["category"] == "model"
    assert "Invalid model name passed in model=" in checks["unsupported_model"]["observed"]


def test_usage_over_max_tokens_is_a_note_everywhere_but_usage_consistency(reports):
    checks = _checks(_report(reports, "UsageOverMaxTokens"))
    note = "usage: completion_tokens 20 > max_tokens 16 (usage_consistency counts it)"
    for check in ("canary", "canary_repeat", "streaming", "latency_by_prompt_size"):
        assert any(n.startswith(note) for n in checks[check]["notes"]), (check, checks[check])
    usage = checks["usage_consistency"]
    assert usage["failure"]["category"] == "usage"
    assert usage["failure"]["code"] == "usage_exceeds_max_tokens"


def test_usage_consistency_judges_the_answers_of_negative_checks_too():
    """A server whose only usage defect shows in an answer to a negative request."""

    class OverOnlyWithoutMessages(misbehaving.AcceptsMissingField):
        def handle(self, request):
            reply = super().handle(request)
            body = request.json() if request.body.startswith(b"{") else {}
            if reply.status == 200 and "messages" not in body:
                doc = json.loads(reply.body)
                doc["usage"] = {"prompt_tokens": 3, "completion_tokens": 40, "total_tokens": 43}
                reply.body = json.dumps(doc).encode()
            return reply

    checks = _checks(_run(OverOnlyWithoutMessages()))
    assert checks["malformed_request"]["status"] == "fail"
    assert checks["malformed_request"]["notes"] == [
        "usage: completion_tokens 40 > max_tokens 16 (usage_consistency counts it)"
    ]
    assert checks["usage_consistency"]["status"] == "fail"
    assert "completion_tokens 40 > max_tokens 16 x1" in checks["usage_consistency"]["observed"]


def test_a_stream_without_usage_is_shown_by_parity_and_counted_once(reports):
    checks = _checks(_report(reports, "NoStreamUsage"))
    parity = checks["stream_parity"]
    assert "usage present in non-streaming, absent in streaming" in parity["observed"]
    assert "in both" not in parity["observed"]
    assert parity["evidence"]["streaming"]["usage"] is False
    assert checks["streaming"]["notes"] == ["usage missing (usage_consistency counts it)"]
    failure = checks["usage_consistency"]["failure"]
    assert (failure["category"], failure["code"]) == ("usage", "missing_usage")


def test_a_dropped_keep_alive_reproduces_the_real_servers_reset():
    """The fixture is faithful: on one pooled connection, the request after the bad JSON
    gets no answer (so the suite's verdicts above prove the fresh connections)."""
    with serve(misbehaving.DropsKeepAliveAfterBadJson()) as running, httpx2.Client() as client:
        url = running.base_url + "/chat/completions"
        headers = {"Authorization": f"Bearer {KEY}"}
        assert client.post(url, content=b"{", headers=headers).status_code == 500
        with pytest.raises(httpx2.RemoteProtocolError):
            client.post(url, json={"model": MODEL, "messages": []}, headers=headers)


def test_verdicts_do_not_depend_on_which_checks_ran_before(reports):
    """Each check run alone gives the verdict it gets inside the whole suite."""
    whole = _statuses(_report(reports, "DropsKeepAliveAfterBadJson"))
    for check in JUDGED:
        alone = _run(misbehaving.DropsKeepAliveAfterBadJson(), only=(check,))
        assert _statuses(alone) == {check: whole[check]}, check


def test_a_mid_run_429_is_a_note_after_retry_after_is_honoured(reports):
    repeat = _checks(_report(reports, "LiteLLMCodes"))["canary_repeat"]
    assert repeat["status"] == "pass"
    assert repeat["observed"].startswith("3/3 parsed (1 rate-limited, not judged)")
    assert repeat["evidence"]["failures"] == {}
    assert "1 x HTTP 429 rate limited; waited 1.0 s as retry-after asked" in repeat["notes"]
    assert any("without a retry-after" in note for note in repeat["notes"])


def test_a_litellm_call_id_is_the_canary_request_id(reports):
    canary = _checks(_report(reports, "LiteLLMCodes"))["canary"]
    assert canary["status"] == "pass"
    assert canary["evidence"]["request_id"]
    assert not any(note.startswith("no request id") for note in canary["notes"])


def test_a_message_rule_makes_the_rewritten_unknown_model_a_model_error():
    rule = ErrorRule(name="litellm_invalid_model", category="model", message="Invalid model name")
    report = _run(misbehaving.LiteLLMCodes(), extra_rules=(rule,), only=("unsupported_model",))
    [result] = report.checks
    assert result.status == "pass", result.observed
    assert result.observed.startswith("HTTP 400 model/litellm_invalid_model")


def test_latency_names_the_context_window_the_large_prompt_exceeded():
    report = _run(misbehaving.SmallContextWindow())
    statuses = _statuses(report)
    assert statuses == {**HEALTHY, "latency_by_prompt_size": "warn"}
    latency = _checks(report)["latency_by_prompt_size"]
    assert (
        "the large prompt exceeded the context window (HTTP 400 context_length_exceeded) x2"
        in latency["observed"]
    )
    assert report.verdict == "pass"  # latency is not required


@pytest.mark.parametrize(
    "server", ["DropsKeepAliveAfterBadJson", "NoAuth", "UsageOverMaxTokens", "NoStreamUsage"]
)
def test_verdicts_do_not_depend_on_the_order_the_checks_run_in(reports, server):
    """The checks run backwards on one context give the suite's verdicts. (LiteLLMCodes is
    left out: its scripted 429s fall on whichever call comes third and sixth.)"""
    whole = _statuses(_report(reports, server))
    with serve(getattr(misbehaving, server)()) as running:
        target = _target(running.base_url)
        ctx = CheckContext.open(target, SuiteOptions(**QUICK))
        try:
            backwards = {
                spec.id: spec.fn(ctx).status for spec in reversed(CHECKS) if spec.id in JUDGED
            }
        finally:
            ctx.close()
    assert backwards == whole
