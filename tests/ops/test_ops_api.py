import chatcontract.ops as ops


def _isort_key(name):
    # ruff's RUF022 order: CONSTANTS, then Classes, then functions.
    kind = 0 if name.isupper() else 1 if name[0].isupper() else 2
    return kind, name


def test_ops_public_api_is_sorted_and_importable():
    assert ops.__all__ == sorted(ops.__all__, key=_isort_key)
    assert all(hasattr(ops, name) for name in ops.__all__)


def test_ops_public_api_is_deliberate():
    assert set(ops.__all__) == {
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
    }
