"""A Grafana dashboard for one contract: the dependency's health, not its traffic.

The JSON model (``schemaVersion`` 39) has a ``${datasource}`` Prometheus variable, ``model`` and
``route`` variables read from ``llm_request_total``, and an open "Contract health" row built on
the same metrics as the alert rules (``chatcontract.ops.alerts``). The uid is derived from the
contract name, so re-importing a regenerated dashboard replaces the previous one.

Example::

    contract = chatcontract.contract.load("chatcontract.yaml")
    Path("chatcontract-dashboard.json").write_text(render_dashboard(contract))
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any, Literal

from chatcontract.contract import Contract

__all__ = [
    "DASHBOARD_DEFAULT_PATH",
    "SCHEMA_VERSION",
    "build_dashboard",
    "dashboard_uid",
    "render_dashboard",
]

#: Where ``chatcontract dashboards`` writes by default (and where ``checklist`` looks).
DASHBOARD_DEFAULT_PATH = "chatcontract-dashboard.json"

#: The Grafana dashboard JSON schema version written (Grafana 10.4 / 11).
SCHEMA_VERSION = 39

_DATASOURCE = {"type": "prometheus", "uid": "${datasource}"}
_UID_MAX = 40  # Grafana rejects longer uids
_RATE = "[$__rate_interval]"

PanelType = Literal["timeseries", "stat"]


def dashboard_uid(contract_name: str) -> str:
    """A stable Grafana uid for the contract: a readable slug plus a short hash, <= 40 chars.

    The hash keeps two names that slug alike (``Chat API`` and ``chat-api``) apart.
    """
    slug = re.sub(r"[^a-z0-9]+", "-", contract_name.lower()).strip("-") or "contract"
    digest = hashlib.sha256(contract_name.encode("utf-8")).hexdigest()[:8]
    prefix = "cc-"
    room = _UID_MAX - len(prefix) - len(digest) - 1
    return f"{prefix}{slug[:room].rstrip('-')}-{digest}"


@dataclass(frozen=True, slots=True, kw_only=True)
class _Query:
    expr: str
    legend: str


@dataclass(frozen=True, slots=True, kw_only=True)
class _Panel:
    title: str
    description: str
    queries: tuple[_Query, ...]
    unit: str
    type: PanelType = "timeseries"
    stacked: bool = False
    width: int = 8
    height: int = 8
    thresholds: tuple[tuple[str, float | None], ...] = ()
    threshold_line: bool = False
    decimals: int | None = None


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _panels(contract: Contract) -> tuple[_Panel, ...]:
    provider = f"provider={_quote(contract.provider)}"
    sel = f'{provider}, model=~"$model", route=~"$route"'
    requests = f"sum(rate(llm_request_total{{{sel}}}{_RATE}))"
    timeouts = contract.policy.timeouts

    def per_second(metric: str, by: str, legend: str, extra: str = "") -> _Query:
        labels = f"{sel}, {extra}" if extra else sel
        return _Query(expr=f"sum by ({by}) (rate({metric}{{{labels}}}{_RATE}))", legend=legend)

    def quantile(q: float, metric: str) -> _Query:
        return _Query(
            expr=f"histogram_quantile({q}, sum by (le) (rate({metric}_bucket{{{sel}}}{_RATE})))",
            legend=f"p{round(q * 100)}",
        )

    return (
        _Panel(
            title="Schema-valid rate",
            description="Share of requests whose response the contract parser accepted.",
            queries=(
                _Query(
                    expr=f"sum(rate(llm_response_schema_valid_total{{{sel}}}{_RATE})) / {requests}",
                    legend="schema-valid",
                ),
            ),
            unit="percentunit",
            thresholds=(("red", None), ("orange", 0.95), ("green", 0.99)),
        ),
        _Panel(
            title="Failures by kind",
            description="Where calls failed: transport, http, api_error, parser, semantic, budget.",
            queries=(per_second("llm_error_total", "kind", "{{kind}}"),),
            unit="ops",
            stacked=True,
        ),
        _Panel(
            title="Auth, rate-limit and quota errors",
            description="Auth goes to secrets; rate_limit is capacity; quota is billing.",
            queries=(
                per_second(
                    "llm_error_total",
                    "category",
                    "{{category}}",
                    'category=~"auth|rate_limit|quota"',
                ),
            ),
            unit="ops",
        ),
        _Panel(
            title="Client timeout rate",
            description=f"Share of requests that hit the client deadline "
            f"(policy.timeouts.total_ms = {timeouts.total_ms} ms).",
            queries=(
                _Query(
                    expr=f"sum(rate(llm_client_timeout_total{{{sel}}}{_RATE})) / {requests}",
                    legend="timed out",
                ),
            ),
            unit="percentunit",
        ),
        _Panel(
            title="Fallback activations by category",
            description="Why traffic left a route, by the failure category that moved it.",
            queries=(
                # This family names the route it left (from_route) and the one it took.
                _Query(
                    expr="sum by (category) (rate(llm_fallback_activation_total"
                    f'{{{provider}, model=~"$model", from_route=~"$route"}}{_RATE}))',
                    legend="{{category}}",
                ),
            ),
            unit="ops",
            stacked=True,
        ),
        _Panel(
            title="Retries and retry success",
            description="Retry decisions taken, and calls that succeeded after a retry.",
            queries=(
                per_second("llm_retry_total", "decision", "decision {{decision}}"),
                _Query(
                    expr=f"sum(rate(llm_retry_success_total{{{sel}}}{_RATE}))",
                    legend="succeeded after retry",
                ),
            ),
            unit="ops",
        ),
        _Panel(
            title="Missing usage",
            description="Responses without the usage the contract relies on (never zero tokens).",
            queries=(per_second("llm_response_missing_usage_total", "model", "{{model}}"),),
            unit="ops",
        ),
        _Panel(
            title="Stream incomplete by verdict",
            description="Streams that ended without proof of completion (cut, stall, in-band "
            "error, [DONE] without finish_reason).",
            queries=(per_second("llm_stream_incomplete_total", "verdict", "{{verdict}}"),),
            unit="ops",
            stacked=True,
        ),
        _Panel(
            title="Latency p50 / p95",
            description=f"Whole-call latency; the line is the deadline "
            f"(policy.timeouts.total_ms = {timeouts.total_ms} ms).",
            queries=(quantile(0.5, "llm_latency_ms"), quantile(0.95, "llm_latency_ms")),
            unit="ms",
            thresholds=(("green", None), ("red", float(timeouts.total_ms))),
            threshold_line=True,
        ),
        _Panel(
            title="Time to first token p95",
            description=f"The line is policy.timeouts.first_token_ms "
            f"({timeouts.first_token_ms} ms).",
            queries=(quantile(0.95, "llm_time_to_first_token_ms"),),
            unit="ms",
            thresholds=(("green", None), ("red", float(timeouts.first_token_ms))),
            threshold_line=True,
        ),
        _Panel(
            title="Drift events",
            description="Responses that differ from the accepted baseline, by kind, per hour.",
            queries=(
                _Query(
                    # The probe's drift series has no model or route label: filtering on
                    # them emptied the panel as soon as a model was picked.
                    expr=f"sum by (kind) (increase(llm_contract_drift_total{{{provider}}}[1h]))",
                    legend="{{kind}}",
                ),
            ),
            unit="short",
            stacked=True,
        ),
        _Panel(
            title="Probe success",
            description="1 when the last synthetic probe held its contract clause.",
            queries=(
                _Query(expr=f"min by (probe) (probe_success{{{provider}}})", legend="{{probe}}"),
            ),
            unit="short",
            type="stat",
            width=6,
            thresholds=(("red", None), ("green", 1.0)),
        ),
        _Panel(
            title="Days until contract review",
            description="Days left before reviewed_on is too old; negative means overdue.",
            queries=(
                _Query(
                    expr=f"(llm_contract_review_due_timestamp_seconds{{{provider}}} - time()) "
                    "/ 86400",
                    legend="days",
                ),
            ),
            unit="none",
            type="stat",
            width=6,
            thresholds=(("red", None), ("orange", 0.0), ("green", 14.0)),
            decimals=0,
        ),
    )


def _thresholds(steps: tuple[tuple[str, float | None], ...]) -> dict[str, Any]:
    chosen = steps or (("green", None),)
    return {
        "mode": "absolute",
        "steps": [{"color": color, "value": value} for color, value in chosen],
    }


def _panel_json(panel: _Panel, *, panel_id: int, x: int, y: int) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": panel.unit, "thresholds": _thresholds(panel.thresholds)}
    if panel.decimals is not None:
        defaults["decimals"] = panel.decimals
    options: dict[str, Any]
    if panel.type == "timeseries":
        defaults["custom"] = {
            "drawStyle": "line",
            "fillOpacity": 20 if panel.stacked else 0,
            "stacking": {"mode": "normal" if panel.stacked else "none", "group": "A"},
            "thresholdsStyle": {"mode": "line" if panel.threshold_line else "off"},
        }
        defaults["color"] = {"mode": "palette-classic"}
        options = {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
    else:
        defaults["color"] = {"mode": "thresholds"}
        options = {
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
            "colorMode": "background",
            "graphMode": "none",
            "textMode": "auto",
        }
    return {
        "id": panel_id,
        "type": panel.type,
        "title": panel.title,
        "description": panel.description,
        "datasource": dict(_DATASOURCE),
        "gridPos": {"h": panel.height, "w": panel.width, "x": x, "y": y},
        "fieldConfig": {"defaults": defaults, "overrides": []},
        "options": options,
        "targets": [
            {
                "refId": chr(ord("A") + index),
                "datasource": dict(_DATASOURCE),
                "expr": query.expr,
                "legendFormat": query.legend,
                "range": True,
            }
            for index, query in enumerate(panel.queries)
        ],
    }


def _variables(contract: Contract) -> list[dict[str, Any]]:
    provider = f"provider={_quote(contract.provider)}"
    variables: list[dict[str, Any]] = [
        {
            "name": "datasource",
            "label": "Prometheus",
            "type": "datasource",
            "query": "prometheus",
            "current": {},
            "hide": 0,
            "refresh": 1,
            "regex": "",
            "options": [],
        }
    ]
    for label in ("model", "route"):
        query = f"label_values(llm_request_total{{{provider}}}, {label})"
        variables.append(
            {
                "name": label,
                "label": label,
                "type": "query",
                "datasource": dict(_DATASOURCE),
                "query": query,
                "definition": query,
                "includeAll": True,
                "multi": True,
                "allValue": ".*",
                "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
                "refresh": 2,
                "sort": 1,
                "hide": 0,
                "options": [],
            }
        )
    return variables


def build_dashboard(contract: Contract) -> dict[str, Any]:
    """The dashboard JSON model for ``contract`` (importable as is)."""
    panels: list[dict[str, Any]] = [
        {
            "id": 1,
            "type": "row",
            "title": "Contract health",
            "collapsed": False,
            "gridPos": {"h": 1, "w": 24, "x": 0, "y": 0},
            "panels": [],
        }
    ]
    x, y, row_height = 0, 1, 0
    for index, panel in enumerate(_panels(contract), start=2):
        if x + panel.width > 24:
            x, y, row_height = 0, y + row_height, 0
        panels.append(_panel_json(panel, panel_id=index, x=x, y=y))
        x += panel.width
        row_height = max(row_height, panel.height)
    owner = f", owner {contract.owner}" if contract.owner.strip() else ""
    return {
        "uid": dashboard_uid(contract.name),
        "title": f"chatcontract: {contract.name}",
        "description": f"Contract health of {contract.name} ({contract.provider}, "
        f"{contract.endpoint.url}{owner}). Generated by 'chatcontract dashboards'.",
        "tags": ["chatcontract", contract.provider],
        "editable": True,
        "graphTooltip": 1,
        "schemaVersion": SCHEMA_VERSION,
        "version": 1,
        "refresh": "1m",
        "time": {"from": "now-6h", "to": "now"},
        "timezone": "browser",
        "annotations": {
            "list": [
                {
                    "builtIn": 1,
                    "datasource": {"type": "grafana", "uid": "-- Grafana --"},
                    "enable": True,
                    "hide": True,
                    "iconColor": "rgba(0, 211, 255, 1)",
                    "name": "Annotations & Alerts",
                    "type": "dashboard",
                }
            ]
        },
        "templating": {"list": _variables(contract)},
        "links": [],
        "panels": panels,
    }


def render_dashboard(contract: Contract) -> str:
    """The dashboard as indented JSON text, ending with a newline."""
    return json.dumps(build_dashboard(contract), indent=2, ensure_ascii=False) + "\n"
