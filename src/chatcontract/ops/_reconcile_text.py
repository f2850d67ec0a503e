"""The reconcile report for a terminal."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["render_text"]

COMPARED = ("requests", "prompt_tokens", "completion_tokens", "total_tokens", "cost_usd")


def _num(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6f}"
    return str(value)


def _pct(diff: Mapping[str, Any] | None) -> str:
    if diff is None:
        return ""
    pct = diff["diff_pct"]
    sign = "+" if diff["diff"] > 0 else ""
    shown = "new" if pct is None else f"{sign}{pct:g}%"
    return f"{sign}{_num(diff['diff'])} ({shown})"


def render_text(data: Mapping[str, Any]) -> str:
    """The report for a terminal: summary, one block per model and day, totals, verdict."""
    lines: list[str] = []
    export = data.get("export", {})
    period = data["period"]
    lines.append(
        f"Reconciling {len(data['ledger']['files'])} ledger file(s) ({data['ledger']['records']} "
        f"records) with {export.get('file', 'the export')} ({export.get('mapping', '?')}, "
        f"{export.get('rows', 0)} rows)"
    )
    lines.append(
        f"period {period['start'] or 'all'} .. {period['end'] or 'all'}; tolerance "
        f"{data['tolerance_pct']:g}%; clock skew allowed {data['max_skew_s']:g}s"
    )
    if export.get("ignored_columns"):
        lines.append(f"ignored export columns: {', '.join(export['ignored_columns'])}")
    lines.extend(
        f"ledger line skipped: {issue['file']}:{issue['line']} {issue['kind']}: {issue['detail']}"
        for issue in data["ledger"]["skipped_lines"]
    )
    matched = data["matched"]
    lines.append(f"matched: {matched['calls']} calls, {matched['buckets']} buckets")
    lines.append(f"only in the ledger: {data['only_in_ledger']['calls']} calls")
    lines.extend(
        f"  {item['request_id'] or '(no id)'} {item['time']} {item['model']}"
        for item in data["only_in_ledger"]["sample"]
    )
    only = data["only_in_export"]
    lines.append(
        f"only in the export: {only['calls']} calls, {only['buckets']} buckets "
        f"({only['rows_without_request_id']} rows without a request id)"
    )
    lines.extend(
        f"  {item['request_id'] or '(no id)'} {item['time'] or ''} {item['model'] or ''} "
        f"(line {item['line']})"
        for item in only["sample"]
    )
    dup = data["duplicates"]
    lines.extend(
        f"duplicated id in the {side}: {item['id']} x{item['count']} (counted once)"
        for side in ("ledger", "export")
        for item in dup[side]
    )
    missing = data["usage_missing"]
    lines.append(f"usage missing on our side: {missing['calls']} calls")
    for item in missing["sample"]:
        billed = ""
        prompt, completion = item["export_prompt_tokens"], item["export_completion_tokens"]
        if prompt is not None or completion is not None:
            billed = f" export: {_num(prompt)}+{_num(completion)} tokens"
        lines.append(f"  {item['request_id'] or '(no id)'} {item['time']} {item['model']}{billed}")
    mism = data["token_mismatches"]
    if mism["calls"]:
        lines.append(f"matched calls with different tokens: {mism['calls']}")
        for item in mism["sample"]:
            parts = [
                f"{name} {item[name]['ledger']} vs {item[name]['export']}"
                for name in ("prompt_tokens", "completion_tokens", "total_tokens")
                if name in item
            ]
            lines.append(f"  {item['request_id']}: {', '.join(parts)}")
    lines.append("")
    lines.append("by model and day (ledger / export / difference):")
    for row in [*data["by_model_day"], {**data["totals"], "day": "TOTAL", "model": ""}]:
        flag = "  EXCEEDS" if row["exceeds"] else ""
        lines.append(f"{row['day']} {row['model']}{flag}")
        for name in COMPARED:
            mine, theirs = row["ledger"][name], row["export"][name]
            if theirs is None and mine is None:
                continue
            lines.append(
                f"  {name:<18} {_num(mine):>14} {_num(theirs):>14}  {_pct(row['diff'][name])}"
            )
    lines.append("")
    if data["exceeded"]:
        lines.append(
            f"FAIL: {len(data['exceeded'])} difference(s) above {data['tolerance_pct']:g}%"
        )
    else:
        lines.append(f"OK: every difference within {data['tolerance_pct']:g}%")
    return "\n".join(_one_line(line) for line in lines) + "\n"


# Control characters other than the tab, DEL, and C1 controls (a CSI starts a terminal escape).
_CONTROL = {code: f"\\x{code:02x}" for code in (*range(0x09), *range(0x0A, 0x20), 0x7F)}
_CONTROL.update({code: f"\\x{code:02x}" for code in range(0x80, 0xA0)})


def _one_line(line: str) -> str:
    """``line`` as one terminal line: a request id or model holding a line break or an escape
    sequence (they come from the files) is shown escaped, not obeyed."""
    return line.translate(_CONTROL)
