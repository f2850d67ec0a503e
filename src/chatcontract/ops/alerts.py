"""Prometheus alerting rules for one contract, built on the ``llm_*`` and ``probe_*`` metrics.

One rule group, ``chatcontract-<contract name>``, with an alert per failure the seed runbooks
name: schema-invalid rate, required paths missing after a 200, auth failures, rate limits and
quota (separately: quota is billing, not capacity), client timeouts, latency near the deadline,
missing usage (only when the contract relies on usage), failing probes, a probe store that
refuses writes, drift, and an overdue contract review. Every ``llm_*`` selector is scoped to
``provider="<contract provider>"``.

Each alert carries the labels ``owner`` and ``category`` (owner from the failure taxonomy's
``CATEGORY_TABLE``; the probe store alert, about the probe itself, has the category
``probe_store`` of :data:`PROBE_CATEGORIES`, owner ``sre``), ``severity`` and ``contract``, and
the annotations ``summary``, ``description`` and ``runbook_action`` (the taxonomy's first action
for the category; the review-date and the probe store alerts, which are not failures of a call,
name their own).

Thresholds are starting points to tune against your own traffic, not measured truths
(``AlertThresholds`` holds the defaults; the rule file repeats them in its header):

- ratio window: 10m (``window``);
- schema-invalid responses: above 1 % of requests for 5m (``schema_invalid_ratio``);
- rate-limited requests: above 5 % for 10m (``rate_limit_ratio``);
- client timeouts: above 2 % for 10m (``client_timeout_ratio``);
- p95 latency: above 80 % of the contract's ``policy.timeouts.total_ms`` for 15m
  (``latency_budget_fraction``);
- probe failing: for 3 of the contract's ``policy.probe.interval_s``, at least 5m
  (``probe_failure_intervals``);
- drift: any in 1h (``drift_window``);
- the probe store refusing writes (``probe_store_writable`` 0): for 5m
  (``store_unwritable_for``); the probe still probes, but records nothing.

Auth failures, quota refusals, required paths missing after a 200, missing contracted usage
and drift fire on any increase in the window: each one is a broken promise, not noise. "Any
increase" includes a series first seen in the window with a value above zero (a new pod's
first 401 after a deploy, which ``increase()`` alone cannot see); a target Prometheus starts
scraping with failures already counted therefore fires once.

The probe alert is scoped by provider too (``probe_success`` and ``probe_paused`` carry the
contract's provider): one Prometheus scraping the probes of several contracts pages for the
contract whose probe fails, and a pause of one contract's probe silences only its own.

Example::

    contract = chatcontract.contract.load("chatcontract.yaml")
    Path("chatcontract-alerts.yml").write_text(render_alert_rules(contract))
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import yaml

from chatcontract.contract import Contract
from chatcontract.errors import ConfigError
from chatcontract.failures.taxonomy import CATEGORY_TABLE

__all__ = [
    "ALERTS_DEFAULT_PATH",
    "PROBE_CATEGORIES",
    "AlertRule",
    "AlertThresholds",
    "Severity",
    "alert_group_name",
    "alert_rules_document",
    "build_alert_rules",
    "render_alert_rules",
]

#: Where ``chatcontract alerts`` writes by default (and where ``checklist`` looks).
ALERTS_DEFAULT_PATH = "chatcontract-alerts.yml"

Severity = Literal["critical", "warning", "info"]

#: Categories of alerts about the probe itself, not about a call (so not in the failure
#: taxonomy), with their owner; such a rule names its own action.
PROBE_CATEGORIES: dict[str, str] = {"probe_store": "sre"}

_DURATION_UNITS = ("ms", "s", "m", "h", "d", "w", "y")


def _require_duration(name: str, value: str) -> None:
    number = value.rstrip("".join(_DURATION_UNITS))
    unit = value[len(number) :]
    if not number.isdigit() or unit not in _DURATION_UNITS or int(number) == 0:
        raise ConfigError(f"{name}: {value!r} is not a Prometheus duration; write e.g. 10m or 1h")


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertThresholds:
    """Starting points for the alert thresholds; tune them against your own traffic.

    Ratios are fractions of ``llm_request_total`` over ``window``; ``latency_budget_fraction``
    is applied to the contract's ``policy.timeouts.total_ms``; the probe alert waits
    ``probe_failure_intervals`` probe intervals (``policy.probe.interval_s``), at least 5m.
    """

    window: str = "10m"
    schema_invalid_ratio: float = 0.01
    rate_limit_ratio: float = 0.05
    client_timeout_ratio: float = 0.02
    latency_budget_fraction: float = 0.8
    probe_failure_intervals: int = 3
    drift_window: str = "1h"
    store_unwritable_for: str = "5m"

    def __post_init__(self) -> None:
        _require_duration("window", self.window)
        _require_duration("drift_window", self.drift_window)
        _require_duration("store_unwritable_for", self.store_unwritable_for)
        for name in (
            "schema_invalid_ratio",
            "rate_limit_ratio",
            "client_timeout_ratio",
            "latency_budget_fraction",
        ):
            value = getattr(self, name)
            if not 0 < value <= 1:
                raise ConfigError(f"{name}: must be a fraction in (0, 1], got {value}")
        if self.probe_failure_intervals < 1:
            raise ConfigError("probe_failure_intervals: must be >= 1")


@dataclass(frozen=True, slots=True, kw_only=True)
class AlertRule:
    """One alerting rule; ``owner`` and ``runbook_action`` come from the failure taxonomy.

    ``action`` replaces the taxonomy's first action only for an alert that is not a failure
    (the review date passing), where the category's action would mislead the reader.
    """

    name: str
    category: str
    severity: Severity
    expr: str
    for_: str
    summary: str
    description: str
    action: str | None = None

    def __post_init__(self) -> None:
        if self.category not in CATEGORY_TABLE and self.category not in PROBE_CATEGORIES:
            raise ConfigError(f"alert {self.name}: unknown category {self.category!r}")
        if self.category in PROBE_CATEGORIES and self.action is None:
            raise ConfigError(f"alert {self.name}: category {self.category!r} needs an action")

    @property
    def owner(self) -> str:
        if self.category in PROBE_CATEGORIES:
            return PROBE_CATEGORIES[self.category]
        return CATEGORY_TABLE[self.category].owner

    @property
    def runbook_action(self) -> str:
        """The taxonomy's first action for the category, unless the rule names its own."""
        return self.action or CATEGORY_TABLE[self.category].action

    def to_dict(self, contract: Contract) -> dict[str, Any]:
        """The rule as Prometheus writes it in a rule file."""
        labels = {
            "severity": self.severity,
            "owner": self.owner,
            "category": self.category,
            "contract": contract.name,
        }
        if contract.owner.strip():
            labels["team"] = contract.owner.strip()
        rule: dict[str, Any] = {"alert": self.name, "expr": self.expr}
        if self.for_ != "0m":
            rule["for"] = self.for_
        rule["labels"] = labels
        rule["annotations"] = {
            "summary": self.summary,
            "description": self.description,
            "runbook_action": self.runbook_action,
        }
        return rule


def _quote(value: str) -> str:
    """A PromQL double-quoted string literal."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _percent(fraction: float) -> str:
    """``0.01`` -> ``1%``, ``0.002`` -> ``0.2%``."""
    return f"{fraction * 100:g}%"


def alert_group_name(contract: Contract) -> str:
    """``chatcontract-<contract name>``: the rule group, one per contract."""
    return f"chatcontract-{contract.name}"


def _probe_for(contract: Contract, intervals: int) -> str:
    minutes = max(5, math.ceil(intervals * contract.policy.probe.interval_s / 60))
    return f"{minutes}m"


def _probe_for_why(contract: Contract, intervals: int) -> str:
    """Why the probe alert waits as long as it does, in the words of the numbers used."""
    interval_s = contract.policy.probe.interval_s
    if intervals * interval_s >= 300:
        return f"{intervals} probe intervals of {interval_s:g} s"
    return f"at least 5m, more than {intervals} probe intervals of {interval_s:g} s"


def _any_increase(series: str, *, labels: str, window: str) -> str:
    """PromQL firing on any increase of ``series`` in ``window``, summed by ``labels``.

    ``increase()`` needs two samples of a series, so the first event of a series born with a
    non-zero value (a new pod after a deploy, a first 401) is invisible to it; the second
    term catches series that did not exist ``window`` ago.
    """
    return (
        f"sum by ({labels}) (increase({series}[{window}])) > 0\n"
        f"or  # a series born in the window, already above zero\n"
        f"sum by ({labels}) ({series} unless {series} offset {window}) > 0"
    )


def _usage_contracted(contract: Contract) -> bool:
    usage_paths = any(
        path == "usage" or path.startswith("usage.") for path in contract.response.required_paths
    )
    return contract.streaming.include_usage or usage_paths


def build_alert_rules(
    contract: Contract, thresholds: AlertThresholds | None = None
) -> tuple[AlertRule, ...]:
    """The alerting rules for ``contract``, in the order they are written."""
    t = thresholds or AlertThresholds()
    sel = f"provider={_quote(contract.provider)}"
    per_route = "provider, model, route"
    by = f"sum by ({per_route})"
    w = t.window

    def ratio(numerator: str, limit: float) -> str:
        return (
            f"{by} (rate({numerator}[{w}]))\n"
            f"/\n"
            f"{by} (rate(llm_request_total{{{sel}}}[{w}]))\n"
            f"> {limit:g}"
        )

    def any_increase(series: str, labels: str = per_route, window: str = w) -> str:
        return _any_increase(series, labels=labels, window=window)

    where = "{{ $labels.model }} via route {{ $labels.route }}"
    timeouts = contract.policy.timeouts
    total_ms = timeouts.total_ms
    latency_limit = round(total_ms * t.latency_budget_fraction)
    rules = [
        AlertRule(
            name="LLMResponseSchemaInvalidRate",
            category="contract",
            severity="critical",
            expr=ratio(f"llm_response_schema_invalid_total{{{sel}}}", t.schema_invalid_ratio),
            for_="5m",
            summary=f"{contract.provider}: schema-invalid responses above "
            f"{_percent(t.schema_invalid_ratio)} of requests",
            description=f"{{{{ $value | humanizePercentage }}}} of requests to {where} got a "
            f"response the contract parser rejects over {w} (threshold "
            f"{_percent(t.schema_invalid_ratio)}). The application is reading broken bodies.",
        ),
        AlertRule(
            name="LLMRequiredPathMissingAfter200",
            category="contract",
            severity="warning",
            expr="\nor\n".join(
                any_increase(f"{name}{{{sel}}}")
                for name in (
                    "llm_response_missing_choices_total",
                    "llm_response_empty_content_total",
                    "llm_response_schema_invalid_total",
                )
            ),
            for_="0m",
            summary=f"{contract.provider}: a 200 without a path the application reads",
            description=f"{where} answered 200 with missing choices, empty content or a "
            f"schema-invalid body in the last {w}: other tools count these as successes.",
        ),
        AlertRule(
            name="LLMAuthFailures",
            category="auth",
            severity="critical",
            expr=any_increase(
                f'llm_error_total{{{sel}, category="auth"}}', f"{per_route}, status_code"
            ),
            for_="0m",
            summary=f"{contract.provider}: authentication failures",
            description=f"{where} answered HTTP {{{{ $labels.status_code }}}} classified auth in "
            f"the last {w}. Usually a deploy or a key rotation: the secret is read from "
            f"{', '.join('$' + name for name in contract.auth.env)}.",
        ),
        AlertRule(
            name="LLMRateLimited",
            category="rate_limit",
            severity="warning",
            expr=ratio(f'llm_error_total{{{sel}, category="rate_limit"}}', t.rate_limit_ratio),
            for_="10m",
            summary=f"{contract.provider}: rate-limited above "
            f"{_percent(t.rate_limit_ratio)} of requests",
            description=f"{{{{ $value | humanizePercentage }}}} of requests to {where} were "
            f"refused with a rate limit (429) over {w}. Capacity, not billing: quota "
            "refusals alert separately.",
        ),
        AlertRule(
            name="LLMQuotaExhausted",
            category="quota",
            severity="critical",
            expr=any_increase(f'llm_error_total{{{sel}, category="quota"}}'),
            for_="0m",
            summary=f"{contract.provider}: quota or balance exhausted",
            description=f"{where} refused calls for quota in the last {w}. This is billing, not "
            "capacity: retrying does not help, top up or raise the key's quota.",
        ),
        AlertRule(
            name="LLMClientTimeoutRate",
            category="timeout",
            severity="warning",
            expr=ratio(f"llm_client_timeout_total{{{sel}}}", t.client_timeout_ratio),
            for_="10m",
            summary=f"{contract.provider}: client timeouts above "
            f"{_percent(t.client_timeout_ratio)} of requests",
            description=f"{{{{ $value | humanizePercentage }}}} of requests to {where} timed "
            f"out on our side over {w}: a connect, first byte (first_byte_ms = "
            f"{timeouts.first_byte_ms} ms), first token (first_token_ms = "
            f"{timeouts.first_token_ms} ms) or stall (idle_ms = {timeouts.idle_ms} ms) limit, or "
            f"the call's deadline (total_ms = {total_ms} ms). The code label of "
            "llm_client_timeout_total says which.",
        ),
        AlertRule(
            name="LLMLatencyNearDeadline",
            category="timeout",
            severity="warning",
            expr=f"histogram_quantile(0.95,\n"
            f"  sum by (le, provider, model, route) "
            f"(rate(llm_latency_ms_bucket{{{sel}}}[{w}]))\n"
            f") > {latency_limit}",
            for_="15m",
            summary=f"{contract.provider}: p95 latency near the {total_ms} ms deadline",
            description=f"p95 latency of {where} is {{{{ $value | humanize }}}} ms, above "
            f"{_percent(t.latency_budget_fraction)} of policy.timeouts.total_ms ({total_ms} ms): "
            "timeouts follow.",
        ),
    ]
    if _usage_contracted(contract):
        rules.append(
            AlertRule(
                name="LLMUsageMissing",
                category="usage",
                severity="warning",
                expr=any_increase(f"llm_response_missing_usage_total{{{sel}}}"),
                for_="0m",
                summary=f"{contract.provider}: responses without the contracted usage",
                description=f"{where} returned responses without usage in the last {w}, though "
                "the contract requires it (streaming.include_usage or usage.* paths). "
                "Missing usage must not be recorded as zero tokens.",
            )
        )
    rules += [
        AlertRule(
            name="LLMProbeFailing",
            category="upstream",
            severity="critical",
            # A paused probe (cost cap, kill switch) keeps its last value: do not page on it.
            expr=f"min by (provider, probe) (probe_success{{{sel}}}) == 0\n"
            f"unless on (provider)\n(max by (provider) (probe_paused{{{sel}}}) > 0)",
            for_=_probe_for(contract, t.probe_failure_intervals),
            summary=f"{contract.provider}: synthetic probe {{{{ $labels.probe }}}} failing",
            description=f"probe {{{{ $labels.probe }}}} has failed on every run for "
            f"{_probe_for(contract, t.probe_failure_intervals)} "
            f"({_probe_for_why(contract, t.probe_failure_intervals)}): "
            "the contract clause it asserts does not hold.",
        ),
        AlertRule(
            name="LLMProbeStoreNotWritable",
            category="probe_store",
            severity="critical",
            expr=f"probe_store_writable{{{sel}}} == 0",
            for_=t.store_unwritable_for,
            summary=f"{contract.provider}: the probe cannot record its results",
            description=f"the probe's store has refused writes for "
            f"{t.store_unwritable_for} (the alert's instance label names the probe): probes "
            "still run and probe_success still moves, but "
            "nothing is recorded (the page, /api/summary, drift events, the cost ledger). "
            "probe_store_write_errors_total{reason} and /healthz say why.",
            action="by reason: disk_full, free disk space under the probe's --db file; "
            "read_only, make the file and its directory writable by the probe; locked, stop "
            "the other process holding the database; io_error, check the disk. Writes resume "
            "by themselves",
        ),
        AlertRule(
            name="LLMContractDrift",
            category="contract",
            severity="warning",
            expr=any_increase(
                # The probe's series carries provider and kind only (no model label).
                f"llm_contract_drift_total{{{sel}}}",
                "provider, kind",
                t.drift_window,
            ),
            for_="0m",
            summary=f"{contract.provider}: responses drifted from the accepted baseline",
            description="drift of kind {{ $labels.kind }} from the accepted baseline in the "
            f"last {t.drift_window}: see 'chatcontract drift --from probe', re-run "
            "'chatcontract validate' and review the contract.",
        ),
        AlertRule(
            name="LLMContractReviewOverdue",
            category="contract",
            severity="info",
            expr=f"time() > llm_contract_review_due_timestamp_seconds{{{sel}}}",
            for_="0m",
            summary=f"{contract.provider}: contract review date passed",
            description=f"contract {contract.name} is due for review (reviewed_on "
            f"{contract.reviewed_on.isoformat() if contract.reviewed_on else 'never'}): check "
            f"it against {contract.reference_url or 'the API reference'} and update reviewed_on.",
            action="re-check the contract file against the provider's reference, run "
            "'chatcontract validate', then update reviewed_on",
        ),
    ]
    return tuple(rules)


def alert_rules_document(
    contract: Contract, thresholds: AlertThresholds | None = None
) -> dict[str, Any]:
    """The Prometheus rule file document: one group named by ``alert_group_name``."""
    rules = build_alert_rules(contract, thresholds)
    return {
        "groups": [
            {
                "name": alert_group_name(contract),
                "rules": [rule.to_dict(contract) for rule in rules],
            }
        ]
    }


class _RulesDumper(yaml.SafeDumper):
    """Writes multi-line strings (PromQL) as literal blocks so the file stays readable."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_RulesDumper.add_representer(str, _represent_str)


def _header(contract: Contract, t: AlertThresholds) -> str:
    total_ms = contract.policy.timeouts.total_ms
    lines = [
        f"Prometheus alerting rules for contract {contract.name!r} (provider {contract.provider}).",
        "Generated by 'chatcontract alerts'; regenerate after changing the contract.",
        "Check with: promtool check rules <this file>",
        "",
        "Thresholds are STARTING POINTS: tune them against your own traffic.",
        f"  ratio window .................. {t.window}",
        f"  schema-invalid ratio .......... {t.schema_invalid_ratio:g} of requests",
        f"  rate-limited ratio ............ {t.rate_limit_ratio:g} of requests",
        f"  client-timeout ratio .......... {t.client_timeout_ratio:g} of requests",
        f"  p95 latency limit ............. {round(total_ms * t.latency_budget_fraction)} ms "
        f"({t.latency_budget_fraction:g} x policy.timeouts.total_ms {total_ms})",
        f"  probe failing for ............. {_probe_for(contract, t.probe_failure_intervals)} "
        f"({t.probe_failure_intervals} x policy.probe.interval_s "
        f"{contract.policy.probe.interval_s} s, at least 5m)",
        f"  drift window .................. {t.drift_window}",
        f"  probe store not writable for .. {t.store_unwritable_for}",
        "Auth, quota, missing paths after a 200, missing contracted usage and drift fire on",
        "any increase, including a series first seen in the window (a new pod's first 401).",
        "Every selector, LLMProbeFailing's included, is scoped to this contract's provider.",
    ]
    return "".join(f"# {line}".rstrip() + "\n" for line in lines)


def render_alert_rules(contract: Contract, thresholds: AlertThresholds | None = None) -> str:
    """The rule file text: a commented header, then the YAML document."""
    t = thresholds or AlertThresholds()
    body = yaml.dump(
        alert_rules_document(contract, t),
        Dumper=_RulesDumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=1000,
    )
    return _header(contract, t) + body
