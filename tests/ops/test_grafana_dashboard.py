import json
import re

import pytest
from prometheus_client import CollectorRegistry

from chatcontract.ops import build_dashboard, dashboard_uid, render_dashboard
from chatcontract.probe import ProbeMetrics


@pytest.fixture
def dashboard(contract):
    return json.loads(render_dashboard(contract))


def _panels(dashboard):
    return [panel for panel in dashboard["panels"] if panel["type"] != "row"]


def test_renders_valid_json_equal_to_the_model(contract, dashboard):
    assert dashboard == build_dashboard(contract)
    assert render_dashboard(contract).endswith("}\n")


def test_schema_version_and_uid_from_the_contract_name(contract, dashboard):
    assert dashboard["schemaVersion"] == 39
    assert dashboard["uid"] == dashboard_uid(contract.name)
    assert contract.name in dashboard["title"]


def test_datasource_is_a_prometheus_templating_variable_used_by_every_panel(dashboard):
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    for panel in _panels(dashboard):
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"


def test_contract_health_row_comes_first_and_is_open(dashboard):
    row = dashboard["panels"][0]
    assert row["type"] == "row"
    assert row["title"] == "Contract health"
    assert row["collapsed"] is False
    assert all(panel["gridPos"]["y"] > row["gridPos"]["y"] for panel in _panels(dashboard))


def test_every_panel_queries_only_published_metric_names(dashboard, known_metrics, metric_names):
    for panel in _panels(dashboard):
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            used = metric_names(target["expr"])
            assert used, (panel["title"], target["expr"])
            assert used <= known_metrics, (panel["title"], used - known_metrics)


def test_templating_queries_use_published_metric_names(dashboard, known_metrics, metric_names):
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            inner = re.fullmatch(r"label_values\((.*), \w+\)", variable["query"]).group(1)
            assert metric_names(inner) <= known_metrics


def test_panel_ids_are_unique_and_every_panel_has_a_grid_position(dashboard):
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert set(grid) == {"h", "w", "x", "y"}
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24


def test_panels_do_not_overlap(dashboard):
    cells = set()
    for panel in dashboard["panels"]:
        g = panel["gridPos"]
        area = {
            (x, y) for x in range(g["x"], g["x"] + g["w"]) for y in range(g["y"], g["y"] + g["h"])
        }
        assert not cells & area, panel["title"]
        cells |= area


def test_the_issue_panels_are_all_there(dashboard):
    titles = {panel["title"] for panel in _panels(dashboard)}
    assert titles == {
        "Schema-valid rate",
        "Failures by kind",
        "Auth, rate-limit and quota errors",
        "Client timeout rate",
        "Fallback activations by category",
        "Retries and retry success",
        "Missing usage",
        "Stream incomplete by verdict",
        "Latency p50 / p95",
        "Time to first token p95",
        "Drift events",
        "Probe success",
        "Days until contract review",
    }


def test_failures_by_kind_is_stacked(dashboard):
    panel = next(p for p in _panels(dashboard) if p["title"] == "Failures by kind")
    assert panel["fieldConfig"]["defaults"]["custom"]["stacking"]["mode"] == "normal"
    assert "sum by (kind)" in panel["targets"][0]["expr"]


def test_latency_quantiles_come_from_the_histogram_buckets(dashboard, contract):
    panel = next(p for p in _panels(dashboard) if p["title"] == "Latency p50 / p95")
    exprs = [t["expr"] for t in panel["targets"]]
    assert [e.split(",")[0] for e in exprs] == ["histogram_quantile(0.5", "histogram_quantile(0.95"]
    assert all("llm_latency_ms_bucket" in e and "sum by (le)" in e for e in exprs)
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert steps[-1]["value"] == contract.policy.timeouts.total_ms


def test_every_series_queried_is_scoped_to_the_provider(dashboard):
    # llm_* and probe_* alike: one Prometheus may scrape several contracts' processes.
    seen = set()
    for panel in _panels(dashboard):
        for target in panel["targets"]:
            for name, selector in re.findall(r"\b((?:llm|probe)_\w+)(\{[^}]*\})?", target["expr"]):
                assert 'provider="cometapi"' in selector, target["expr"]
                seen.add(name.split("_")[0])
    assert seen == {"llm", "probe"}


@pytest.mark.parametrize(
    "name",
    ["cometapi-chat-completions", "Chat API (prod) / EU", "x" * 120, "ünïcode"],
    ids=["plain", "punctuation", "long", "non-ascii"],
)
def test_uid_is_a_valid_grafana_uid_and_stable(name):
    uid = dashboard_uid(name)
    assert re.fullmatch(r"[a-z0-9-]{1,40}", uid)
    assert uid == dashboard_uid(name)


def test_names_that_slug_alike_get_different_uids():
    assert dashboard_uid("Chat API") != dashboard_uid("chat-api")


def _probe_series_labels(contract):
    """Label names of every series the probe process exports by itself (not the llm_* calls)."""
    registry = CollectorRegistry()
    metrics = ProbeMetrics(registry, contract=contract)
    metrics.probe_result("non_streaming", ok=True, at=1.0)
    labels = {}
    for family in registry.collect():
        for sample in family.samples:
            labels.setdefault(sample.name, set()).update(sample.labels)
    return {name: names for name, names in labels.items() if not name.startswith("llm_request")}


def test_probe_series_are_filtered_only_on_labels_they_have(contract, dashboard):
    # llm_contract_drift_total has provider and kind: a model=~"$model" filter emptied the
    # "Drift events" panel as soon as a model was picked, drift or not.
    known = _probe_series_labels(contract)
    checked = set()
    for panel in _panels(dashboard):
        for target in panel["targets"]:
            for name, matchers in re.findall(r"([a-zA-Z_:][\w:]*)\{([^}]*)\}", target["expr"]):
                if name not in known:
                    continue
                checked.add(name)
                used = set(re.findall(r"(\w+)\s*!?=~?", matchers))
                assert used <= known[name], (panel["title"], name, used - known[name])
    assert {"llm_contract_drift_total", "probe_success"} <= checked
