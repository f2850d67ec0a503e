"""JUnit XML for CI: one ``<testcase>`` per check, escaped for XML 1.0."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from chatcontract.checks.model import CheckResult, Report

from ._common import _failure_type, _one_line, _plain, _truncate

_ATTRIBUTE_WIDTH = 500  # characters of a JUnit attribute (CI tools show it on one line)

# Characters XML 1.0 cannot carry even escaped (C0 controls except tab/newline/CR, surrogates,
# U+FFFE/U+FFFF). A provider message can contain them; ElementTree would write them as-is.
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff\ufffe\uffff]")


def render_junit(report: Report) -> str:
    """JUnit XML for CI (Jenkins, GitLab): one ``<testcase>`` per check, times in seconds.

    A required check that failed is a ``<failure>`` whose body lists expected, observed, the
    classification and the evidence. A failed check that is *not* required does not fail the
    run (``Report.verdict``), so it is written as a passing test case with its failure in
    ``<system-out>``: the CI status then agrees with the exit code. A skip is ``<skipped>``; a
    warning passes with ``WARN: ...`` in ``<system-out>``. A check's notes (what it saw that is
    another clause's) are ``note:`` lines in its ``<system-out>`` or failure body.
    """
    suite_attributes = {
        "name": f"chatcontract: {report.contract_name}",
        "tests": str(len(report.checks)),
        "failures": str(sum(1 for check in report.checks if _junit_fails(check))),
        "errors": "0",
        "skipped": str(sum(1 for check in report.checks if check.status == "skip")),
        "time": _seconds(report.duration_ms),
    }
    root = ET.Element("testsuites", suite_attributes)
    suite = ET.SubElement(root, "testsuite", {**suite_attributes, "timestamp": report.started_at})
    properties = ET.SubElement(suite, "properties")
    for name, value in _junit_properties(report):
        ET.SubElement(properties, "property", {"name": name, "value": value})

    classname = f"chatcontract.{report.provider}"
    for check in report.checks:
        _junit_testcase(suite, check, classname=classname)

    ET.indent(root)
    # ElementTree escapes markup but writes control characters as they are: clean them once here.
    body = _xml_text(ET.tostring(root, encoding="unicode"))
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + body + "\n"


def _junit_fails(check: CheckResult) -> bool:
    return check.status == "fail" and check.required


def _junit_properties(report: Report) -> list[tuple[str, str]]:
    target = report.target
    properties = [
        ("chatcontract.version", report.version),
        ("contract.name", report.contract_name),
        ("contract.provider", report.provider),
        ("contract.path", report.contract_path or ""),
        ("contract.reviewed_on", report.reviewed_on or ""),
        ("contract.owner", report.owner),
        ("target.base_url", target.base_url),
        ("target.simulated", "true" if target.simulated else "false"),
        ("target.model", target.model),
        ("verdict", report.verdict),
    ]
    if target.scenario is not None:
        properties.append(("target.scenario", target.scenario))
    return properties


def _junit_testcase(suite: ET.Element, check: CheckResult, *, classname: str) -> None:
    case = ET.SubElement(
        suite,
        "testcase",
        {
            "classname": classname,
            "name": f"{check.id}: {check.title}",
            "time": _seconds(check.duration_ms),
        },
    )
    message = _xml_attribute(check.observed)
    if _junit_fails(check):
        failure = ET.SubElement(
            case, "failure", {"message": message, "type": _failure_type(check.failure)}
        )
        failure.text = _details(check)
    elif check.status == "fail":
        out = ET.SubElement(case, "system-out")
        out.text = "FAIL (not required, does not fail the run)\n" + _details(check)
    elif check.status == "skip":
        ET.SubElement(case, "skipped", {"message": message})
    elif check.status == "warn":
        out = ET.SubElement(case, "system-out")
        out.text = f"WARN: {check.observed}\n" + _details(check)
    elif check.notes:
        out = ET.SubElement(case, "system-out")
        out.text = _note_lines(check)


def _details(check: CheckResult) -> str:
    """The body of a JUnit failure: ``key: value`` lines a CI log shows as they are."""
    lines = [f"expected: {check.expected}", f"observed: {check.observed}"]
    if check.failure is not None:
        lines += [f"{key}: {_plain(value)}" for key, value in check.failure.to_dict().items()]
    if check.evidence:
        lines.append("evidence:")
        lines += [f"  {key}: {_plain(value)}" for key, value in check.evidence.items()]
    text = "\n".join(lines) + "\n"
    return text + _note_lines(check)


def _note_lines(check: CheckResult) -> str:
    return "".join(f"note: {_one_line(note)}\n" for note in check.notes)


def _seconds(ms: float) -> str:
    return f"{max(ms, 0.0) / 1000:.3f}"


def _xml_text(text: str) -> str:
    """``text`` with the characters XML 1.0 cannot represent replaced by U+FFFD."""
    return _XML_INVALID.sub("\ufffd", text)


def _xml_attribute(text: str) -> str:
    """A one-line attribute value: whitespace collapsed, bounded."""
    return _truncate(_one_line(text), _ATTRIBUTE_WIDTH)
