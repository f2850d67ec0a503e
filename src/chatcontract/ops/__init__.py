"""Operations assets generated from a contract: alert rules, a Grafana dashboard, a checklist.

- ``alerts``: Prometheus alerting rules on the ``llm_*`` / ``probe_*`` metrics, one group per
  contract, owner and first action per alert from the failure taxonomy.
- ``grafana``: a Grafana dashboard with a contract-health row on the same metrics.
- ``checklist``: the rollout checklist, evaluated from the contract and the last validate run.
"""

from __future__ import annotations

from .alerts import (
    ALERTS_DEFAULT_PATH,
    AlertRule,
    AlertThresholds,
    alert_group_name,
    alert_rules_document,
    build_alert_rules,
    render_alert_rules,
)
from .checklist import (
    CHECKLIST_IDS,
    LAST_VALIDATE_PATH,
    Artifact,
    ChecklistInputs,
    ChecklistItem,
    checklist_exit_code,
    evaluate_checklist,
    inspect_alerts,
    inspect_dashboard,
    read_validate_report,
    render_checklist_text,
    secret_paths,
)
from .grafana import DASHBOARD_DEFAULT_PATH, build_dashboard, dashboard_uid, render_dashboard

__all__ = [
    "ALERTS_DEFAULT_PATH",
    "CHECKLIST_IDS",
    "DASHBOARD_DEFAULT_PATH",
    "LAST_VALIDATE_PATH",
    "AlertRule",
    "AlertThresholds",
    "Artifact",
    "ChecklistInputs",
    "ChecklistItem",
    "alert_group_name",
    "alert_rules_document",
    "build_alert_rules",
    "build_dashboard",
    "checklist_exit_code",
    "dashboard_uid",
    "evaluate_checklist",
    "inspect_alerts",
    "inspect_dashboard",
    "read_validate_report",
    "render_alert_rules",
    "render_checklist_text",
    "render_dashboard",
    "secret_paths",
]
